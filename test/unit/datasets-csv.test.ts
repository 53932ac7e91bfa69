import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { bindTasks, sourceKey, targetName } from '../../common/datasets/index.js';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { CsvSpec, DataSpec } from '../../common/job-schema.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-csv-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  fs.writeFileSync(path.join(dir, name), text);
  return name;
}

function spec(file: string, overrides: Partial<CsvSpec> = {}): CsvSpec {
  return { dataset: 'csv', path: file, features: ['a', 'b'], target: 'y', testFraction: 0.25, normalize: false, seed: 0, ...overrides };
}

const regression = (column: string): TargetRequest => ({ column, kind: 'regression' });
const classification = (column: string): TargetRequest => ({ column, kind: 'classification' });
const all = (split: Split): Uint32Array => Uint32Array.from({ length: split.size }, (_, i) => i);

function read(split: Split, width: number, target: string): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(all(split), x);
  split.targets(target, all(split), y);
  return { x, y };
}

/** Rows id,a,b,y with a = id, b = id², y = 10·id; `rows` data rows. */
function table(name: string, rows: number): string {
  const lines = ['id,a,b,y'];
  for (let i = 0; i < rows; i++) lines.push(`${i},${i},${i * i},${10 * i}`);
  return write(name, lines.join('\n') + '\n');
}

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

void describe('csv tables (loadTable)', () => {
  void it('reads the features and targets, and splits every row into exactly one side', () => {
    const ds = loadTable(spec(table('basic.csv', 20)), dir, [regression('y'), regression('id')]);
    assert.deepEqual(ds.inputShape, [2]);
    assert.deepEqual(ds.targets, { y: { kind: 'regression' }, id: { kind: 'regression' } });
    assert.equal(ds.train.size, 15);
    assert.equal(ds.test.size, 5);
    const ids: number[] = [];
    for (const split of [ds.train, ds.test]) {
      const { x, y } = read(split, 2, 'id');
      const { y: target } = read(split, 2, 'y');
      for (let i = 0; i < split.size; i++) {
        const id = y[i]!;
        ids.push(id);
        assert.deepEqual([x[2 * i], x[2 * i + 1], target[i]], [id, id * id, 10 * id]);
      }
    }
    assert.deepEqual(ids.sort((p, q) => p - q), Array.from({ length: 20 }, (_, i) => i));
  });

  void it('splits as a pure function of the seed and the row count, not of the path that names the file', () => {
    const file = table('seeded.csv', 40);
    const testIds = (s: CsvSpec, base = dir): number[] => Array.from(read(loadTable(s, base, [regression('id')]).test, 2, 'id').y);
    assert.deepEqual(testIds(spec(file, { seed: 3 })), testIds(spec(file, { seed: 3 })));
    assert.notDeepEqual(testIds(spec(file, { seed: 3 })), testIds(spec(file, { seed: 4 })));
    // An absolute path stays as it is; baseDir is then irrelevant.
    const absolute = spec(path.join(dir, file), { seed: 3 });
    assert.deepEqual(testIds(absolute, '/elsewhere'), testIds(absolute, dir));
    // The same bytes elsewhere, named through another relative path: the same split and statistics.
    const moved = path.join(dir, 'mount', 'deeper');
    fs.mkdirSync(moved, { recursive: true });
    fs.copyFileSync(path.join(dir, file), path.join(moved, 'renamed.csv'));
    assert.deepEqual(testIds(spec('mount/deeper/renamed.csv', { seed: 3 })), testIds(spec(file, { seed: 3 })));
    assert.deepEqual(testIds(spec('../renamed.csv', { seed: 3 }), path.join(moved, 'x')), testIds(spec(file, { seed: 3 })));
    const stats = (s: CsvSpec): unknown => loadTable({ ...s, normalize: true }, dir, [regression('id')]).normalization;
    assert.deepEqual(stats(spec('mount/deeper/renamed.csv', { seed: 3 })), stats(spec(file, { seed: 3 })));
  });

  void it('standardises with the statistics of the train split only', () => {
    // A huge value in some rows: whichever split it lands in, only train rows may shape the stats.
    const lines = ['id,a,b,y'];
    for (let i = 0; i < 40; i++) lines.push(`${i},${i % 7 === 0 ? 1000 + i : i},5,0`);
    const ds = loadTable(spec(write('norm.csv', lines.join('\n')), { normalize: true }), dir, [regression('id')]);
    const raw = (id: number): number => (id % 7 === 0 ? 1000 + id : id);
    const train = read(ds.train, 2, 'id');
    const trainA = Array.from(train.y, raw);
    const mean = trainA.reduce((s, v) => s + v, 0) / trainA.length;
    const std = Math.sqrt(trainA.reduce((s, v) => s + (v - mean) ** 2, 0) / trainA.length);
    const allMean = Array.from({ length: 40 }, (_, i) => raw(i)).reduce((s, v) => s + v, 0) / 40;
    assert.ok(Math.abs(mean - allMean) > 1, 'the fixture distinguishes train from full-data statistics');
    assert.ok(Math.abs(ds.normalization!.mean[0]! - mean) < 1e-9);
    assert.ok(Math.abs(ds.normalization!.std[0]! - std) < 1e-9);
    for (const split of [ds.train, ds.test]) {
      const { x, y } = read(split, 2, 'id');
      for (let i = 0; i < split.size; i++) {
        assert.equal(x[2 * i], Math.fround((raw(y[i]!) - mean) / std), `feature a of row ${y[i]}`);
        assert.equal(x[2 * i + 1], 0, 'a constant feature is centred, not divided by 0');
      }
    }
    const trainX = train.x.filter((_, k) => k % 2 === 0);
    assert.ok(Math.abs(trainX.reduce((s, v) => s + v, 0) / trainX.length) < 1e-6, 'train features have mean 0');
  });

  void it('keeps raw values when normalize is off', () => {
    const ds = loadTable(spec(table('raw.csv', 8)), dir, [regression('id')]);
    assert.equal(ds.normalization, undefined);
    const { x, y } = read(ds.test, 2, 'id');
    assert.deepEqual([x[0], x[1]], [y[0], y[0]! * y[0]!]);
  });

  void it('turns a classification column into sorted class indices, numbers sorted by value', () => {
    const cells = ['10', '9', '2', '9', '10', '2', '10', '9'];
    const numeric = write('classes-num.csv', ['id,a,b,y', ...cells.map((c, i) => `${i},${i},${i},${c}`)].join('\n'));
    const ds = loadTable(spec(numeric), dir, [classification('y'), regression('id')]);
    assert.deepEqual(ds.targets.y, { kind: 'classification', classes: ['2', '9', '10'] });
    for (const split of [ds.train, ds.test]) {
      const { y } = read(split, 2, 'y');
      const { y: id } = read(split, 2, 'id');
      for (let i = 0; i < split.size; i++) assert.equal(y[i], ['2', '9', '10'].indexOf(cells[id[i]!]!));
    }
    const text = write('classes-text.csv', 'a,b,y\n1,1,dog\n2,2,cat\n3,3,Zebra\n4,4,cat\n');
    assert.deepEqual(loadTable(spec(text), dir, [classification('y')]).targets.y?.classes, ['Zebra', 'cat', 'dog']);
  });

  void it('names the file when it is missing, empty or has no data rows', () => {
    assertDatasetError(() => loadTable(spec('absent.csv'), dir, [regression('y')]), path.join(dir, 'absent.csv'), 'no such file');
    assertDatasetError(() => loadTable(spec(write('empty.csv', '')), dir, [regression('y')]), 'empty.csv', 'empty');
    assertDatasetError(() => loadTable(spec(write('blank.csv', '\n \n')), dir, [regression('y')]), 'blank.csv', 'empty');
    assertDatasetError(() => loadTable(spec(write('header.csv', 'a,b,y\n')), dir, [regression('y')]), 'header.csv', 'no data rows');
  });

  void it('names the file, the column and the available columns when a column is missing', () => {
    const file = table('columns.csv', 8);
    assertDatasetError(() => loadTable(spec(file, { features: ['a', 'c'] }), dir, [regression('y')]), 'columns.csv', '"c"', 'id, a, b, y');
    assertDatasetError(() => loadTable(spec(file), dir, [regression('z')]), 'columns.csv', 'target column "z"', 'id, a, b, y');
    assertDatasetError(() => loadTable(spec(file), dir, [regression('a')]), 'columns.csv', '"a"', 'both a feature and a target');
  });

  void it('names file, line and column of a bad feature cell, counting the header as line 1', () => {
    // Line 4 is blank and the record on line 5 spans two lines: the bad cell is on line 7.
    const text = 'a,b,y\n1,2,3\n4,5,6\n\n7,8,"multi\nline"\n1,x2,3\n';
    assertDatasetError(() => loadTable(spec(write('cell.csv', text)), dir, [classification('y')]), 'cell.csv', 'line 7', 'column "b"', '"x2"');
    // A bad cell in a record that spans lines 3-4 is reported at the line where the record starts.
    const spanning = 'a,b,y\n1,2,3\nbad,5,"two\nlines"\n7,8,9\n';
    assertDatasetError(() => loadTable(spec(write('span.csv', spanning)), dir, [classification('y')]), 'span.csv', 'line 3', 'column "a"');
    const empty = 'a,b,y\n1,2,3\n4,,6\n7,8,9\n';
    assertDatasetError(() => loadTable(spec(write('empty-cell.csv', empty)), dir, [regression('y')]), 'empty-cell.csv', 'line 3', 'column "b"', 'empty cell');
    for (const bad of ['NaN', 'Infinity', '0x10', '1,5']) {
      const file = write('odd.csv', `a,b,y\n1,2,3\n"${bad}",5,6\n7,8,9\n`);
      assertDatasetError(() => loadTable(spec(file), dir, [regression('y')]), 'odd.csv', 'line 3', 'column "a"');
    }
  });

  void it('names file, line and column of a bad regression or classification target cell', () => {
    const text = 'a,b,y\n1,2,3\n4,5,6\n7,8,high\n';
    assertDatasetError(() => loadTable(spec(write('target.csv', text)), dir, [regression('y')]), 'target.csv', 'line 4', 'column "y"', '"high"');
    assert.deepEqual(loadTable(spec('target.csv'), dir, [classification('y')]).targets.y?.classes, ['3', '6', 'high']);
    const blank = write('target-blank.csv', 'a,b,y\n1,2,x\n4,5,\n7,8,x\n');
    assertDatasetError(() => loadTable(spec(blank), dir, [classification('y')]), 'target-blank.csv', 'line 3', 'column "y"');
  });

  void it('reports malformed CSV with the file name', () => {
    const file = write('ragged.csv', 'a,b,y\n1,2,3\n4,5\n');
    assertDatasetError(() => loadTable(spec(file), dir, [regression('y')]), 'ragged.csv', 'line 3');
  });

  void it('needs at least one row in each split', () => {
    assertDatasetError(() => loadTable(spec(table('tiny.csv', 1)), dir, [regression('y')]), 'tiny.csv', '1 data rows');
    assertDatasetError(() => loadTable(spec(table('small.csv', 3), { testFraction: 0.1 }), dir, [regression('y')]), 'small.csv');
  });

  void it('tolerates a BOM, CRLF line ends and spaces around cells', () => {
    const ds = loadTable(spec(write('crlf.csv', '\uFEFFa , b,y\r\n 1, 2 ,3\r\n4,5,6\r\n7,8,9\r\n10,11,12\r\n')), dir, [regression('y')]);
    assert.equal(ds.train.size + ds.test.size, 4);
  });
});

void describe('dataset registry', () => {
  const base: DataSpec = { dataset: 'csv', path: 'shared.csv', features: ['a', 'b'], target: 'y', testFraction: 0.25, normalize: true, seed: 0 };

  void it('keys a source by its spec without target, independent of key order', () => {
    const reordered = JSON.parse(JSON.stringify({ target: 'id', seed: 0, normalize: true, testFraction: 0.25, features: ['a', 'b'], path: 'shared.csv', dataset: 'csv' })) as DataSpec;
    assert.equal(sourceKey(base), sourceKey(reordered));
    assert.equal(sourceKey(base), sourceKey({ ...base, target: 'other' }));
    assert.notEqual(sourceKey(base), sourceKey({ ...base, features: ['b', 'a'] }));
    assert.notEqual(sourceKey(base), sourceKey({ ...base, seed: 1 }));
    assert.ok(!sourceKey(base).includes('"y"'));
    assert.equal(targetName({ dataset: 'synthetic', target: 3, tasks: 4, dim: 10, rho: 0, samples: 10, noise: 0, testFraction: 0.2, seed: 0 }), '3');
  });

  void it('loads a shared CSV once with every task target, each of the kind its loss needs', () => {
    const lines = ['id,a,b,y,label'];
    for (let i = 0; i < 12; i++) lines.push(`${i},${i},${i % 3},${i / 2},${i % 2 === 0 ? 'even' : 'odd'}`);
    write('shared.csv', lines.join('\n'));
    const bindings = bindTasks(
      {
        parity: { loss: 'binaryCrossentropy', data: { ...base, target: 'label' } },
        half: { loss: 'meanSquaredError', data: base },
        other: { loss: 'meanSquaredError', data: { ...base, target: 'id', seed: 9 } },
      },
      dir,
    );
    assert.deepEqual([...bindings.keys()], ['parity', 'half', 'other']);
    const parity = bindings.get('parity')!;
    const half = bindings.get('half')!;
    const other = bindings.get('other')!;
    assert.equal(parity.dataset, half.dataset);
    assert.notEqual(other.dataset, half.dataset);
    assert.deepEqual(parity.dataset.targets, { label: { kind: 'classification', classes: ['even', 'odd'] }, y: { kind: 'regression' } });
    assert.deepEqual(Object.keys(other.dataset.targets), ['id']);
  });

  void it('rejects tasks that read one column with incompatible losses, or too many classes for binaryCrossentropy', () => {
    assertDatasetError(
      () => bindTasks({ p: { loss: 'meanSquaredError', data: base }, q: { loss: 'sparseCategoricalCrossentropy', data: base } }, dir),
      '"p"',
      '"q"',
      'column "y"',
    );
    assertDatasetError(() => bindTasks({ bits: { loss: 'binaryCrossentropy', data: { ...base, target: 'id' } } }, dir), '"bits"', '12');
  });
});
