// The npy and npz datasets, against fixtures written by numpy (scripts/make-npy-fixtures.py):
// every dtype and byte order reads as numpy reads it, Fortran order is transposed, bad files are
// errors naming the file, and the splits, targets and shared sources behave as for csv.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TaskTargetRequest } from '../../common/datasets/class-labels.js';
import { bindTasks, sourceKey } from '../../common/datasets/index.js';
import { npyToFloat32, parseNpy } from '../../common/datasets/npy-format.js';
import { loadNpy, loadNpz } from '../../common/datasets/npy.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { NpySpec, NpzSpec } from '../../common/job-schema.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'npy');
const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as Record<string, { shape: number[]; values: number[] }>;
const fixture = (name: string): Buffer => fs.readFileSync(path.join(FIXTURES, name));

const regression = (name: string): TaskTargetRequest => ({ name, kind: 'regression' });
const classification = (name: string, testTarget?: string): TaskTargetRequest => ({ name, kind: 'classification', ...(testTarget ? { testTarget } : {}) });
const npy = (overrides: Partial<NpySpec> = {}): NpySpec => ({ dataset: 'npy', inputs: 'x.npy', target: 'y-int.npy', seed: 0, ...overrides });
const npz = (overrides: Partial<NpzSpec> = {}): NpzSpec => ({ dataset: 'npz', path: 'data.npz', inputs: 'x', target: 'y', seed: 0, ...overrides });

function read(split: Split, width: number, target: string): { x: Float32Array; y: Float32Array } {
  const all = Uint32Array.from({ length: split.size }, (_, i) => i);
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(all, x);
  split.targets(target, all, y);
  return { x, y };
}

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

/** A copy of fixture `name` in a temporary folder, changed by `edit`. */
function edited(name: string, edit: (bytes: Buffer) => Buffer): { dir: string; file: string } {
  const dir = tempDir('mtl-npy-');
  const file = path.join(dir, name);
  fs.writeFileSync(file, edit(Buffer.from(fixture(name))));
  return { dir, file };
}

void describe('.npy reader', () => {
  const typed = Object.keys(expected).filter((k) => /^(le|be)-|^bool|^fortran|^vector|^v[23]/.test(k));

  void it('reads every dtype, both byte orders, Fortran order and header versions 1–3 as numpy does', () => {
    assert.ok(typed.length >= 23, `fixtures: ${typed.join(', ')}`);
    for (const name of typed) {
      const array = parseNpy(fixture(name), name);
      const want = expected[name]!;
      assert.deepEqual(array.shape, want.shape, name);
      assert.deepEqual(Array.from(npyToFloat32(array)), want.values.map(Math.fround), name);
    }
  });

  void it('reads data at any alignment of the bytes in memory', () => {
    for (const name of ['le-f4.npy', 'le-f8.npy', 'le-i2.npy', 'be-u4.npy', 'le-i8.npy']) {
      const bytes = fixture(name);
      for (const shift of [1, 2, 3, 5]) {
        const shifted = Buffer.alloc(bytes.length + shift);
        bytes.copy(shifted, shift);
        assert.deepEqual(Array.from(npyToFloat32(parseNpy(shifted.subarray(shift), name))), expected[name]!.values.map(Math.fround), `${name} at +${shift}`);
      }
    }
  });

  void it('records the dtype and order of the header', () => {
    const be = parseNpy(fixture('be-i8.npy'), 'be-i8.npy');
    assert.deepEqual(be.dtype, { descr: '>i8', kind: 'i', size: 8, littleEndian: false });
    assert.equal(parseNpy(fixture('fortran.npy'), 'f').fortranOrder, true);
    assert.equal(parseNpy(fixture('bool.npy'), 'b').dtype.descr, '|b1');
  });

  void it('rejects bad magic, bad or truncated headers, truncated data, trailing bytes and unsupported dtypes, naming the file', () => {
    const good = fixture('le-f4.npy');
    const header = (text: string): Buffer => {
      const h = Buffer.from(text.padEnd(118) + '\n', 'latin1');
      const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
      return Buffer.concat([prefix, h, Buffer.alloc(48)]);
    };
    assertDatasetError(() => parseNpy(Buffer.from('PK\u0003\u0004 not numpy'), 'a.npy'), 'a.npy', 'not a .npy file');
    assertDatasetError(() => parseNpy(good.subarray(0, 40), 'b.npy'), 'b.npy', 'truncated .npy header');
    assertDatasetError(() => parseNpy(good.subarray(0, good.length - 4), 'c.npy'), 'c.npy', 'truncated .npy data', 'needs 48 bytes', 'holds 44');
    assertDatasetError(() => parseNpy(Buffer.concat([good, Buffer.alloc(3)]), 'd.npy'), 'd.npy', '3 unexpected bytes');
    assertDatasetError(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3) "), 'e.npy'), 'e.npy', 'malformed .npy header');
    assertDatasetError(() => parseNpy(header("{'descr': '<f4', 'shape': (4, 3), }"), 'f.npy'), 'f.npy', "no 'fortran_order'");
    assertDatasetError(() => parseNpy(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4, -3), }"), 'g.npy'), 'g.npy', "'shape'");
    assertDatasetError(() => parseNpy(header("{'descr': '<f2', 'fortran_order': False, 'shape': (4, 3), }"), 'h.npy'), 'h.npy', "unsupported dtype '<f2'");
    const v9 = Buffer.from(good);
    v9[6] = 9;
    assertDatasetError(() => parseNpy(v9, 'i.npy'), 'i.npy', 'version 9.0');
    assertDatasetError(() => parseNpy(fixture('strings.npy'), 'strings.npy'), 'strings.npy', 'string arrays', 'integers');
    assertDatasetError(() => parseNpy(fixture('complex.npy'), 'complex.npy'), 'complex.npy', "'<c8'");
    assertDatasetError(() => parseNpy(fixture('structured.npy'), 'structured.npy'), 'structured.npy', 'structured arrays');
  });
});

void describe('npy dataset', () => {
  void it('serves examples of the inputs shape and class targets (sorted numerically) split by testFraction', () => {
    const ds = loadNpy(npy(), FIXTURES, [classification('y-int.npy'), regression('y-float.npy')]);
    assert.deepEqual(ds.inputShape, [2, 3]);
    assert.deepEqual(ds.targets['y-int.npy'], { kind: 'classification', classes: ['1', '2', '3', '10'] });
    assert.deepEqual(ds.targets['y-float.npy'], { kind: 'regression' });
    assert.equal(ds.train.size, 8);
    assert.equal(ds.test.size, 2);
    const x = expected['x.npy']!.values;
    const labels = expected['y-int.npy']!.values;
    const floats = expected['y-float.npy']!.values;
    const classes = [1, 2, 3, 10];
    const seen = new Set<number>();
    for (const split of [ds.train, ds.test]) {
      const { x: xs, y } = read(split, 6, 'y-int.npy');
      const { y: yf } = read(split, 6, 'y-float.npy');
      for (let j = 0; j < split.size; j++) {
        // Each served example is one example of x.npy, with its own label.
        const i = x.findIndex((v, k) => k % 6 === 0 && Math.fround(v) === xs[6 * j]);
        assert.ok(i >= 0);
        const example = i / 6;
        seen.add(example);
        assert.deepEqual(Array.from(xs.subarray(6 * j, 6 * j + 6)), x.slice(i, i + 6).map(Math.fround));
        assert.equal(classes[y[j]!], labels[example]);
        assert.equal(yf[j], Math.fround(floats[example]!));
      }
    }
    assert.equal(seen.size, 10, 'train and test together are every example once');
  });

  void it('keys the split by seed and example count, not by the path', () => {
    const testX = (dir: string, inputs: string, seed = 0): number[] => Array.from(read(loadNpy(npy({ inputs, seed }), dir, [regression('y-float.npy')]).test, 6, 'y-float.npy').y);
    const copy = tempDir('mtl-npy-moved-');
    for (const f of ['x.npy', 'y-float.npy']) fs.copyFileSync(path.join(FIXTURES, f), path.join(copy, f));
    fs.renameSync(path.join(copy, 'x.npy'), path.join(copy, 'inputs.npy'));
    assert.deepEqual(testX(copy, 'inputs.npy'), testX(FIXTURES, 'x.npy'));
    assert.notDeepEqual(testX(FIXTURES, 'x.npy', 3), testX(FIXTURES, 'x.npy'));
    // The sampler's key too: a digest of the inputs and the train order, not of the spec.
    const identity = (dir: string, inputs: string, seed = 0) => loadNpy(npy({ inputs, seed }), dir, [regression('y-float.npy')]).identity;
    assert.equal(identity(copy, 'inputs.npy'), identity(FIXTURES, 'x.npy'));
    assert.notEqual(identity(FIXTURES, 'x.npy', 3), identity(FIXTURES, 'x.npy'));
  });

  void it('reads (N, 1) and boolean targets; a 1-D inputs array is one value per example', () => {
    const ds = loadNpy(npy(), FIXTURES, [classification('y-col.npy'), classification('y-bool.npy')]);
    assert.deepEqual(ds.targets['y-col.npy']?.classes, ['1', '2', '3', '10']);
    assert.deepEqual(ds.targets['y-bool.npy']?.classes, ['false', 'true']);
    const vector = loadNpy(npy({ inputs: 'vector.npy', testFraction: 0.25 }), FIXTURES, []);
    assert.deepEqual(vector.inputShape, [1]);
    assert.equal(vector.train.size + vector.test.size, 4);
  });

  void it('takes an explicit test split, with classes over both splits', () => {
    const ds = loadNpy(npy({ test: { inputs: 'x-test.npy', target: 'y-test.npy' } }), FIXTURES, [classification('y-int.npy', 'y-test.npy')]);
    assert.equal(ds.train.size, 10);
    assert.equal(ds.test.size, 4);
    assert.deepEqual(ds.targets['y-int.npy']?.classes, ['1', '2', '3', '4', '10']);
    const { x, y } = read(ds.test, 6, 'y-int.npy');
    assert.deepEqual(Array.from(x), expected['x-test.npy']!.values.map(Math.fround), 'test examples in file order');
    assert.deepEqual(Array.from(y), [0, 1, 2, 3]);
    assertDatasetError(() => loadNpy(npy({ test: { inputs: 'x-test.npy', target: 'y-test.npy' }, testFraction: 0.5 }), FIXTURES, []), 'either test', 'testFraction');
    assertDatasetError(
      () => loadNpy(npy({ test: { inputs: 'vector.npy', target: 'y-test.npy' } }), FIXTURES, [classification('y-int.npy', 'y-test.npy')]),
      path.join(FIXTURES, 'vector.npy'),
      'shape (1)',
      '(2, 3)',
    );
  });

  void it('names both files and sizes when the example counts differ, and rejects bad shapes and values', () => {
    assertDatasetError(() => loadNpy(npy(), FIXTURES, [classification('y-short.npy')]), path.join(FIXTURES, 'y-short.npy'), '9 examples', path.join(FIXTURES, 'x.npy'), '10');
    assertDatasetError(() => loadNpy(npy(), FIXTURES, [classification('y-matrix.npy')]), 'y-matrix.npy', '(N,) or (N, 1)', '(10, 2)');
    assertDatasetError(() => loadNpy(npy({ inputs: 'x-nan.npy' }), FIXTURES, []), 'x-nan.npy', 'example 1', 'NaN');
    assertDatasetError(() => loadNpy(npy({ inputs: 'absent.npy' }), FIXTURES, []), path.join(FIXTURES, 'absent.npy'), 'no such file');
    assertDatasetError(() => loadNpy(npy({ inputs: 'vector.npy', testFraction: 0.1 }), FIXTURES, []), 'vector.npy', '4 examples', 'at least 1 of each');
  });
});

void describe('npz dataset', () => {
  void it('reads stored and deflated archives (numpy writes zip64 headers) the same', () => {
    for (const archive of ['data.npz', 'data-compressed.npz']) {
      const ds = loadNpz(npz({ path: archive, test: { inputs: 'x_test', target: 'y_test' } }), FIXTURES, [classification('y', 'y_test')]);
      assert.deepEqual(ds.targets.y?.classes, ['0', '1']);
      const train = read(ds.train, 6, 'y');
      assert.deepEqual(Array.from(train.x), expected['data.npz:x']!.values.map(Math.fround), archive);
      assert.deepEqual(Array.from(train.y), expected['data.npz:y']!.values, archive);
      assert.deepEqual(Array.from(read(ds.test, 6, 'y').y), expected['data.npz:y_test']!.values, archive);
    }
  });

  void it('names the archive and the missing array, and reports corrupt and truncated archives', () => {
    assertDatasetError(() => loadNpz(npz({ inputs: 'features' }), FIXTURES, []), 'data.npz', 'no array "features"', 'x, y, x_test, y_test');
    // A flipped byte inside a stored member fails its CRC-32.
    const stored = fixture('data.npz');
    const at = stored.indexOf(Buffer.from("'descr'")) + 200;
    const flipped = edited('data.npz', (b) => ((b[at] = b[at]! ^ 0xff), b));
    assertDatasetError(() => loadNpz(npz(), flipped.dir, []), flipped.file, 'array "x"', 'corrupt');
    const truncated = edited('data-compressed.npz', (b) => b.subarray(0, b.length - 30));
    assertDatasetError(() => loadNpz(npz({ path: 'data-compressed.npz' }), truncated.dir, []), truncated.file, 'not a readable .npz');
  });
});

void describe('array sources in a job', () => {
  void it('tasks reading one inputs array share a source (and its batches), each with its own target and test target', () => {
    const base = npy({ test: { inputs: 'x-test.npy', target: 'y-test.npy' } });
    const a = { ...base, target: 'y-int.npy' };
    const b = { ...base, target: 'y-col.npy', test: { inputs: 'x-test.npy', target: 'y-test.npy' } };
    assert.equal(sourceKey(a), sourceKey({ ...b, test: { inputs: 'x-test.npy', target: 'other.npy' } }));
    assert.notEqual(sourceKey(a), sourceKey({ ...a, test: { inputs: 'vector.npy', target: 'y-test.npy' } }));
    const bindings = bindTasks(
      { a: { loss: 'sparseCategoricalCrossentropy', data: a }, b: { loss: 'sparseCategoricalCrossentropy', data: b }, r: { loss: 'meanSquaredError', data: { ...a, target: 'y-float.npy', test: { inputs: 'x-test.npy', target: 'y-test.npy' } } } },
      FIXTURES,
    );
    assert.equal(bindings.get('a')!.dataset, bindings.get('b')!.dataset);
    assert.equal(bindings.get('a')!.source, bindings.get('r')!.source);
    assert.deepEqual(Object.keys(bindings.get('a')!.dataset.targets), ['y-int.npy', 'y-col.npy', 'y-float.npy']);
    assertDatasetError(
      () => bindTasks({ p: { loss: 'meanSquaredError', data: a }, q: { loss: 'sparseCategoricalCrossentropy', data: a } }, FIXTURES),
      '"p"',
      '"q"',
      'target "y-int.npy"',
    );
  });
});
