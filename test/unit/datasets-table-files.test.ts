// Table datasets named by a glob: which files, in which order, and the errors when the glob
// matches nothing or a file lacks a column. The order is that of the paths below the glob's
// static base, so a copy of the tree elsewhere reads the same rows in the same order.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { resolveTableFiles } from '../../common/datasets/table-files.js';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { CsvSpec } from '../../common/job-schema.js';
import { tempDir } from '../helpers/temp-dirs.js';

const root = tempDir('mtl-globs-');

function write(file: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  fs.writeFileSync(path.join(root, file), text);
}

/** A CSV of rows id,a,y for ids [from, to). */
function rows(from: number, to: number, header = 'id,a,y'): string {
  const lines = [header];
  for (let i = from; i < to; i++) lines.push(header === 'id,a,y' ? `${i},${i * 2},${i * 3}` : `${i},${i * 3}`);
  return lines.join('\n') + '\n';
}

// Created in an order unlike the reading order, with names whose code-unit order is not the natural one.
write('tree/data/part-2.csv', rows(20, 30));
write('tree/data/part-10.csv', rows(10, 20));
write('tree/data/B.csv', rows(0, 5));
write('tree/data/sub/part-1.csv', rows(30, 40));
write('tree/data/a.csv', rows(5, 10));
write('tree/data/notes.txt', 'not a table\n');

function spec(file: string, overrides: Partial<CsvSpec> = {}): CsvSpec {
  return { dataset: 'csv', path: file, features: ['a'], target: 'y', testFraction: 0.25, normalize: true, seed: 0, ...overrides };
}

const regression = (column: string): TargetRequest => ({ column, kind: 'regression' });

function ids(split: Split): number[] {
  const out = new Float32Array(split.size);
  split.targets('id', Uint32Array.from({ length: split.size }, (_, i) => i), out);
  return Array.from(out);
}

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

void describe('table file globs', () => {
  void it('reads the matches in code-unit order of their paths below the static base', () => {
    const base = path.join(root, 'tree', 'data');
    const got = resolveTableFiles('tree/data/**/*.csv', root, 'csv');
    assert.equal(got.glob, true);
    assert.deepEqual(got.files, ['B.csv', 'a.csv', 'part-10.csv', 'part-2.csv', 'sub/part-1.csv'].map((f) => path.join(base, f)));
    assert.deepEqual(resolveTableFiles('tree/data/part-*.csv', root, 'csv').files, ['part-10.csv', 'part-2.csv'].map((f) => path.join(base, f)));
    assert.deepEqual(resolveTableFiles('tree/data/{a,B}.csv', root, 'csv').files, ['B.csv', 'a.csv'].map((f) => path.join(base, f)));
    assert.deepEqual(resolveTableFiles('tree/data/a.csv', root, 'csv'), { shown: path.join(base, 'a.csv'), glob: false, files: [path.join(base, 'a.csv')] });
    // Rows follow file order: B (0-4), a (5-9), part-10 (10-19), part-2 (20-29), sub/part-1 (30-39).
    const ds = loadTable(spec('tree/data/**/*.csv'), root, [regression('id')]);
    assert.equal(ds.train.size + ds.test.size, 40);
    assert.deepEqual([...ids(ds.train), ...ids(ds.test)].sort((p, q) => p - q), Array.from({ length: 40 }, (_, i) => i));
    assert.match(ds.description, /\(5 files\)/);
  });

  void it('gives the same rows, split and statistics from a copy of the tree named through another path', () => {
    fs.cpSync(path.join(root, 'tree'), path.join(root, 'mounted', 'elsewhere'), { recursive: true });
    const here = loadTable(spec('tree/data/**/*.csv'), root, [regression('id'), regression('y')]);
    const jobDir = path.join(root, 'jobs', 'nested');
    fs.mkdirSync(jobDir, { recursive: true });
    const there = loadTable(spec('../../mounted/elsewhere/data/**/*.csv'), jobDir, [regression('id'), regression('y')]);
    assert.deepEqual(ids(there.train), ids(here.train));
    assert.deepEqual(ids(there.test), ids(here.test));
    assert.deepEqual(there.normalization, here.normalization);
    assert.equal(there.identity, here.identity);
    assert.notDeepEqual(there.files, here.files);
  });

  void it('names the pattern and the directory when a glob matches nothing', () => {
    assertDatasetError(() => loadTable(spec('tree/data/*.parquet'), root, [regression('id')]), '"tree/data/*.parquet"', path.join(root, 'tree', 'data'));
    assertDatasetError(() => loadTable(spec('nowhere/*.csv'), root, [regression('id')]), '"nowhere/*.csv"', path.join(root, 'nowhere'), 'not a directory');
  });

  void it('names a directory given as the path, and a file of a glob that lacks a column', () => {
    assertDatasetError(() => loadTable(spec('tree/data'), root, [regression('id')]), path.join(root, 'tree', 'data'), 'is a directory', 'tree/data/*.csv');
    write('gappy/one.csv', rows(0, 5));
    write('gappy/two.csv', rows(5, 10, 'id,y'));
    assertDatasetError(() => loadTable(spec('gappy/*.csv'), root, [regression('id')]), path.join(root, 'gappy', 'two.csv'), 'feature column "a"');
  });
});
