// Targets of several table columns (a vector regression target, or multi-label), the test split
// by a column's values, and the job-file errors around them (each naming its path).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bindTasks, loadNpy, type TaskDataSpec } from '../../common/datasets/index.js';
import type { Split } from '../../common/datasets/types.js';
import { JobSpecError } from '../../common/errors.js';
import { loadJobFile, validateJob } from '../../common/job-spec.js';
import type { DataSpec, LossName } from '../../common/job-schema.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

function write(dir: string, name: string, lines: string[]): string {
  writeFileSync(path.join(dir, name), lines.join('\n') + '\n');
  return name;
}

/** Every example's targets of `target`, `width` per example. */
function targets(split: Split, target: string, width: number): number[][] {
  const out = new Float32Array(split.size * width);
  split.targets(target, Array.from({ length: split.size }, (_, i) => i), out);
  return Array.from({ length: split.size }, (_, i) => Array.from(out.subarray(i * width, (i + 1) * width)));
}

function inputs(split: Split): number[] {
  const out = new Float32Array(split.size);
  split.inputs(Array.from({ length: split.size }, (_, i) => i), out);
  return Array.from(out);
}

const table = (file: string, extra: Record<string, unknown> = {}): DataSpec =>
  ({ dataset: 'csv', path: file, features: ['x'], target: 'y1', normalize: false, seed: 0, ...extra });
const task = (loss: LossName, data: DataSpec): TaskDataSpec => ({ loss, data });

function job(data: Record<string, unknown>, loss = 'meanSquaredError', units = 2): Record<string, unknown> {
  return {
    name: 'targets',
    model: { trunk: [{ dense: { units: 4 } }], heads: { t: [{ dense: { units } }] } },
    tasks: { t: { loss, data: { dataset: 'csv', path: 'data.csv', features: ['x'], ...data } } },
    training: { steps: 2, batchSize: 2, optimizer: { name: 'sgd', learningRate: 0.1 } },
  };
}

function issues(doc: Record<string, unknown>): Array<{ path: string; message: string }> {
  try {
    validateJob(doc, 'job.yaml');
  } catch (err) {
    assert.ok(err instanceof JobSpecError, String(err));
    return err.issues.map((i) => ({ path: i.path, message: i.message }));
  }
  assert.fail('expected a JobSpecError');
}

void describe('job file: several target columns and a column split', () => {
  void it('accepts a list of distinct columns and a column split; names the path of each mistake', () => {
    const ok = validateJob(job({ target: ['a', 'b'], split: { column: 'set', test: 'test' } }), 'job.yaml');
    assert.deepEqual(ok.tasks.t!.data.target, ['a', 'b']);
    assert.deepEqual((ok.tasks.t!.data as { split?: unknown }).split, { column: 'set', test: ['test'] }, 'one value is a list of one');
    const numbers = validateJob(job({ target: 'a', split: { column: 'fold', test: [4, true] } }), 'job.yaml');
    assert.deepEqual((numbers.tasks.t!.data as { split?: { test: string[] } }).split?.test, ['4', 'true'], 'compared as label text');

    const twice = issues(job({ target: ['a', 'b', 'a'] }));
    assert.deepEqual(twice.map((i) => i.path), ['tasks.t.data.target[2]']);
    assert.match(twice[0]!.message, /column "a" is listed twice/);
    assert.deepEqual(issues(job({ target: [] })).map((i) => i.path), ['tasks.t.data.target']);

    const both = issues(job({ target: 'a', split: { column: 'set', test: ['test'] }, testFraction: 0.3 }));
    assert.deepEqual(both.map((i) => i.path), ['tasks.t.data.testFraction']);
    assert.match(both[0]!.message, /only one of split, test and testFraction \(got split and testFraction\)/);
    assert.deepEqual(issues(job({ target: 'a', split: { column: 'set', test: ['x'] }, test: 'test.csv' })).map((i) => i.path), ['tasks.t.data.test']);
    assert.deepEqual(issues(job({ target: 'a', split: { column: 'set', test: [] } })).map((i) => i.path), ['tasks.t.data.split.test']);

    const sparse = issues(job({ target: ['a', 'b'] }, 'sparseCategoricalCrossentropy'));
    assert.deepEqual(sparse.map((i) => i.path), ['tasks.t.data.target']);
    assert.match(sparse[0]!.message, /2 target columns need a regression loss .* or binaryCrossentropy/);
  });

  void it('a head whose units differ from the target columns is an error naming the head and tasks.T.data.target', () => {
    const dir = tempDir('mtl-targets-head-');
    write(dir, 'data.csv', ['x,a,b,c', '1,1,2,3', '2,2,3,4', '3,3,4,5', '4,4,5,6', '5,5,6,7']);
    const file = writeJob(job({ target: ['a', 'b', 'c'] }, 'meanSquaredError', 2), dir);
    let err: unknown;
    try {
      prepareRun(loadJobFile(file));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof JobSpecError, String(err));
    assert.equal(err.issues[0]!.path, 'model.heads.t');
    assert.match(err.issues[0]!.message, /the head outputs 2 values but tasks\.t\.data\.target has 3 columns \(a, b, c\).*3 units/);
    assert.doesNotThrow(() => prepareRun(loadJobFile(writeJob(job({ target: ['a', 'b', 'c'] }, 'meanSquaredError', 3), dir, 'three.yaml'))));
  });
});

void describe('targets of several columns', () => {
  const dir = tempDir('mtl-targets-');
  const file = write(dir, 'data.csv', ['x,y1,y2,l1,l2,l3', '1,10,-1,0,no,1', '2,20,-2,1,yes,1', '3,30,-3,0,yes,1', '4,40,-4,1,no,1', '5,50,-5,1,yes,1']);

  void it('a vector target writes its columns side by side, in the order given; tasks reading one of its columns share the source', () => {
    const data = table(file, { target: ['y2', 'y1'], testFraction: 0.4 });
    const bindings = bindTasks({ v: task('meanSquaredError', data), one: task('meanAbsoluteError', table(file, { testFraction: 0.4 })) }, dir);
    const v = bindings.get('v')!;
    assert.equal(v.target, '[y2, y1]');
    assert.deepEqual(v.dataset.targets[v.target], { kind: 'regression', width: 2, columns: ['y2', 'y1'] });
    assert.equal(bindings.get('one')!.dataset, v.dataset, 'one load for both tasks');
    assert.equal(bindings.get('one')!.source, v.source, 'one sampler source');
    for (const split of [v.dataset.train, v.dataset.test]) {
      const x = inputs(split);
      assert.deepEqual(targets(split, v.target, 2), x.map((xi) => [-xi, 10 * xi]));
      assert.deepEqual(targets(split, 'y1', 1), x.map((xi) => [10 * xi]), 'the single column is still one value per example');
    }
    assert.throws(() => targets(v.dataset.train, v.target, 1), /output holds 3 floats, expected 3 × 2/);
  });

  void it('multi-label: each column 0/1 or two labels (sorted), a column with only 1s is all 1; more labels are an error naming the column', () => {
    const bindings = bindTasks({ m: task('binaryCrossentropy', table(file, { target: ['l1', 'l2', 'l3'], testFraction: 0.4 })) }, dir);
    const m = bindings.get('m')!;
    const info = m.dataset.targets[m.target]!;
    assert.deepEqual(info.columnClasses, [['0', '1'], ['no', 'yes'], ['0', '1']]);
    const byX = new Map([[1, [0, 0, 1]], [2, [1, 1, 1]], [3, [0, 1, 1]], [4, [1, 0, 1]], [5, [1, 1, 1]]]);
    for (const split of [m.dataset.train, m.dataset.test]) assert.deepEqual(targets(split, m.target, 3), inputs(split).map((x) => byX.get(x)));

    const many = write(dir, 'many.csv', ['x,a,b', '1,0,red', '2,1,green', '3,0,blue', '4,1,red']);
    assert.throws(() => bindTasks({ m: task('binaryCrossentropy', table(many, { target: ['a', 'b'] })) }, dir), /multi-label column "b" has 3 label\(s\) \(blue, green, red\)/);
  });

  void it('missing values in target columns follow the missing policy, column by column', () => {
    const holes = write(dir, 'holes.csv', ['x,y1,y2', '1,10,-1', '2,,-2', '3,30,', '4,40,-4', '5,50,-5', '6,60,-6']);
    const data = (extra: Record<string, unknown>) => ({ v: task('meanSquaredError', table(holes, { target: ['y1', 'y2'], testFraction: 0.34, ...extra })) });
    assert.throws(() => bindTasks(data({}), dir), /holes\.csv: line 3, column "y1": expected a number, got an empty cell/);
    const dropped = bindTasks(data({ missing: 'drop' }), dir).get('v')!;
    assert.equal(dropped.dataset.train.size + dropped.dataset.test.size, 4);
    const filled = bindTasks(data({ missing: { fill: 0 } }), dir).get('v')!;
    const all = [...targets(filled.dataset.train, filled.target, 2), ...targets(filled.dataset.test, filled.target, 2)];
    assert.deepEqual(all.filter((r) => r.includes(0)).sort(), [[0, -2], [30, 0]]);
  });
});

void describe('a test split by a column', () => {
  const dir = tempDir('mtl-column-split-');
  const file = write(dir, 'data.csv', ['x,y1,set', '1,1,train', '2,2,test', '3,3,train', '4,4,val', '5,5,train', '6,6,train']);
  const bind = (f: string, split: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    bindTasks({ t: task('meanSquaredError', table(f, { split, ...extra })) }, dir).get('t')!;

  void it('rows whose column holds a test value are the test split, in file order; statistics come from the train rows', () => {
    const b = bind(file, { column: 'set', test: ['test', 'val'] }, { normalize: true });
    assert.equal(b.dataset.train.size, 4);
    assert.deepEqual(targets(b.dataset.test, 'y1', 1), [[2], [4]]);
    assert.deepEqual(targets(b.dataset.train, 'y1', 1), [[1], [3], [5], [6]]);
    const mean = (1 + 3 + 5 + 6) / 4;
    const t = b.dataset.columns![0]!;
    assert.ok(t.kind === 'numeric' && t.mean === mean, `train mean ${mean}, got ${JSON.stringify(t)}`);
  });

  void it('numbers and booleans are compared as label text (a JSON lines table)', () => {
    const jsonl = path.join(dir, 'data.jsonl');
    writeFileSync(jsonl, [1, 2, 3, 4, 5].map((x) => JSON.stringify({ x, y1: x, fold: x % 3, held: x === 5 })).join('\n'));
    const spec = (split: Record<string, unknown>) => ({ ...table('data.jsonl', { split }), dataset: 'jsonl' }) as DataSpec;
    const byFold = bindTasks({ t: task('meanSquaredError', spec({ column: 'fold', test: ['0'] })) }, dir).get('t')!;
    assert.deepEqual(targets(byFold.dataset.test, 'y1', 1), [[3]]);
    const byFlag = bindTasks({ t: task('meanSquaredError', spec({ column: 'held', test: ['true'] })) }, dir).get('t')!;
    assert.deepEqual(targets(byFlag.dataset.test, 'y1', 1), [[5]]);
  });

  void it('a missing split value is an error naming file, line and column, unless missing says drop; no train or no test rows is an error counting the values seen', () => {
    const holes = write(dir, 'holes.csv', ['x,y1,set', '1,1,train', '2,2,', '3,3,test', '4,4,train']);
    assert.throws(() => bind(holes, { column: 'set', test: ['test'] }), /holes\.csv: line 3, column "set": expected a split value, got an empty cell/);
    assert.equal(bind(holes, { column: 'set', test: ['test'] }, { missing: 'drop' }).dataset.train.size, 2);
    assert.throws(() => bind(file, { column: 'set', test: ['holdout'] }), /split column `set` in \[holdout\] leaves 6 train \/ 0 test rows .*"test" ×1, "train" ×4, "val" ×1/);
    assert.throws(() => bind(file, { column: 'set', test: ['train', 'test', 'val'] }), /leaves 0 train \/ 6 test rows/);
    assert.throws(() => bind(file, { column: 'fold', test: ['1'] }), /data\.csv: split column "fold" is not in the header/);
  });
});

/** A little-endian float32 .npy file (format 1.0) of `shape`. */
function writeNpy(file: string, shape: number[], values: number[]): void {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const prefix = Buffer.alloc(10);
  Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]).copy(prefix);
  prefix.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(Float32Array.from(values).buffer)]));
}

void describe('an npy target of shape (N, k)', () => {
  void it('is a regression target of k values per example; a class target must stay (N,) or (N, 1)', () => {
    const dir = tempDir('mtl-npy-vector-');
    writeNpy(path.join(dir, 'x.npy'), [5], [1, 2, 3, 4, 5]);
    writeNpy(path.join(dir, 'y.npy'), [5, 3], [1, 10, 100, 2, 20, 200, 3, 30, 300, 4, 40, 400, 5, 50, 500]);
    const ds = loadNpy({ dataset: 'npy', inputs: 'x.npy', target: 'y.npy', seed: 0, testFraction: 0.4 }, dir, [{ name: 'y.npy', kind: 'regression' }]);
    assert.deepEqual(ds.targets['y.npy'], { kind: 'regression', width: 3 });
    for (const split of [ds.train, ds.test]) assert.deepEqual(targets(split, 'y.npy', 3), inputs(split).map((x) => [x, 10 * x, 100 * x]));
    const npyJob = (units: number) => ({ ...job({}, 'meanSquaredError', units), tasks: { t: { loss: 'meanSquaredError', data: { dataset: 'npy', inputs: 'x.npy', target: 'y.npy' } } } });
    assert.doesNotThrow(() => prepareRun(loadJobFile(writeJob(npyJob(3), dir))));
    assert.throws(() => prepareRun(loadJobFile(writeJob(npyJob(1), dir, 'one.yaml'))), /model\.heads\.t: the head outputs 1 values but tasks\.t\.data\.target holds 3 values per example/);
    assert.throws(() => loadNpy({ dataset: 'npy', inputs: 'x.npy', target: 'y.npy', seed: 0 }, dir, [{ name: 'y.npy', kind: 'classification' }]), /a target must have shape \(N,\) or \(N, 1\) \(a class target\), got \(5, 3\)/);
  });
});
