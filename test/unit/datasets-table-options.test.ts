// The table options beyond the columns: categorical features as vocabulary ids (for Embedding
// layers; 0 for a value only the test rows have), missing values (an error naming file, line
// and column by default, or drop, or fill), and a test split given by its own file.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import type { CsvSpec } from '../../common/job-schema.js';
import { tempDir } from '../helpers/temp-dirs.js';

const REQUESTS: TargetRequest[] = [{ column: 'y', kind: 'regression' }];

function csv(dir: string, name: string, rows: string[]): string {
  writeFileSync(path.join(dir, name), ['x,city,y', ...rows].join('\n'));
  return name;
}

function spec(file: string, extra: Partial<CsvSpec> = {}): CsvSpec {
  return { dataset: 'csv', path: file, features: ['x', 'city'], target: 'y', normalize: true, seed: 1, categorical: ['city'], ...extra };
}

function all(split: Split, width: number): number[][] {
  const out = new Float32Array(split.size * width);
  split.inputs(Array.from({ length: split.size }, (_, i) => i), out);
  return Array.from({ length: split.size }, (_, i) => Array.from(out.subarray(i * width, i * width + width)));
}

void describe('table options', () => {
  const dir = tempDir('mtl-table-options-');
  const train = csv(dir, 'train.csv', ['1,oslo,1', '2,rome,2', '3,oslo,3', '4,lima,4']);
  const test = csv(dir, 'test.csv', ['5,rome,5', '6,paris,6']);

  void it('a test file is the test split; categories get ids from the train rows only (unknown: 0)', () => {
    const ds = loadTable(spec(train, { test }), dir, REQUESTS);
    assert.equal(ds.train.size, 4);
    assert.equal(ds.test.size, 2);
    const city = ds.columns![1]!;
    assert.deepEqual(city, { column: 'city', kind: 'categorical', vocabulary: ['lima', 'oslo', 'rome'] });
    // Train rows in file order; x standardised with the train rows' statistics, city left as its id.
    const mean = 2.5;
    const std = Math.sqrt(1.25);
    assert.deepEqual(all(ds.train, 2), [[(1 - mean) / std, 2], [(2 - mean) / std, 3], [(3 - mean) / std, 2], [(4 - mean) / std, 1]].map((r) => r.map(Math.fround)));
    assert.deepEqual(all(ds.test, 2).map((r) => r[1]), [3, 0], 'paris is not in the train rows: id 0');
    assert.deepEqual(ds.columns![0], { column: 'x', kind: 'numeric', mean, std });
    assert.match(ds.description, /city: 3 categories \(ids 1\.\.3, 0 unknown\)/);
    assert.throws(() => loadTable(spec(train, { test, testFraction: 0.5 }), dir, REQUESTS), /either test .* or testFraction, not both/);
    assert.throws(() => loadTable(spec(train, { categorical: ['town'] }), dir, REQUESTS), /categorical column "town" is not one of the features/);
  });

  void it('missing values: an error naming file, line and column; or the row dropped; or filled', () => {
    const holes = csv(dir, 'holes.csv', ['1,oslo,1', ',rome,2', '3,,3', '4,lima,', '5,oslo,5', '6,rome,6']);
    assert.throws(() => loadTable(spec(holes), dir, REQUESTS), new RegExp(`holes\\.csv: line 3, column "x": expected a number, got an empty cell`));
    const dropped = loadTable(spec(holes, { missing: 'drop', testFraction: 0.34 }), dir, REQUESTS);
    assert.equal(dropped.train.size + dropped.test.size, 3);
    assert.match(dropped.description, /3 rows with missing values dropped/);
    const filled = loadTable(spec(holes, { missing: { fill: 0 }, normalize: false, testFraction: 0.34 }), dir, REQUESTS);
    assert.equal(filled.train.size + filled.test.size, 6);
    const rows = [...all(filled.train, 2), ...all(filled.test, 2)];
    assert.ok(rows.some((r) => r[0] === 0), 'the empty x became 0');
    // The empty city became the category "0", which the train rows may or may not hold: it is one of the values.
    assert.ok(filled.columns![1]!.kind === 'categorical');
    const text = loadTable(spec(holes, { missing: { fill: 'none' }, features: ['city'], categorical: ['city'], testFraction: 0.34 }), dir, [{ column: 'x', kind: 'classification' }]);
    assert.ok((text.columns![0] as { readonly vocabulary: readonly string[] }).vocabulary.includes('none'));
    assert.throws(() => loadTable(spec(holes, { missing: { fill: 'none' } }), dir, REQUESTS), /line 3, column "x": missing, and the fill value "none" is not a number/);
  });
});
