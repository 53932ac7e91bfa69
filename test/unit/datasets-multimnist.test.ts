import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { DatasetError } from '../../common/errors.js';
import type { MultiMnistSpec } from '../../common/job-schema.js';
import { loadMultiMnist, type MultiMnistSplit } from '../../common/datasets/multimnist.js';

const PIXELS = 784;

function spec(overrides: Partial<MultiMnistSpec> = {}): MultiMnistSpec {
  return { dataset: 'multimnist', target: 'left', trainSize: 2000, testSize: 500, shift: 4, testFraction: 0.15, seed: 0, ...overrides };
}

// The package's files, read here independently of the loader: the reference for geometry and labels.
const digitsDir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
const raw: number[][] = Array.from({ length: 10 }, (_, d) => {
  const doc = JSON.parse(fs.readFileSync(path.join(digitsDir, `${d}.json`), 'utf8')) as { data: number[] };
  return doc.data;
});

function rawDigit(digit: number, index: number): number[] {
  return raw[digit]!.slice(index * PIXELS, (index + 1) * PIXELS);
}

/** An independent statement of the overlay: max of the left digit moved left, the right moved right. */
function expectedImage(left: number[], right: number[], shift: number): Float32Array {
  const moved = (img: number[], dx: number): number[] =>
    img.map((_, p) => {
      const row = Math.floor(p / 28);
      const srcCol = (p % 28) - dx;
      return srcCol >= 0 && srcCol < 28 ? img[row * 28 + srcCol]! : 0;
    });
  const a = moved(left, -shift);
  const b = moved(right, shift);
  return Float32Array.from(a, (v, p) => Math.max(v, b[p]!));
}

function allInputs(split: MultiMnistSplit): Float32Array {
  const out = new Float32Array(split.size * PIXELS);
  split.inputs(Uint32Array.from({ length: split.size }, (_, i) => i), out);
  return out;
}

function allTargets(split: MultiMnistSplit, target: string): Float32Array {
  const out = new Float32Array(split.size);
  split.targets(target, Uint32Array.from({ length: split.size }, (_, i) => i), out);
  return out;
}

void describe('loadMultiMnist', () => {
  void it('has the documented shape and targets', () => {
    const ds = loadMultiMnist(spec());
    assert.deepEqual(ds.inputShape, [28, 28, 1]);
    assert.equal(ds.train.size, 2000);
    assert.equal(ds.test.size, 500);
    for (const name of ['left', 'right']) {
      assert.deepEqual(ds.targets[name], { kind: 'classification', classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    }
  });

  void it('is a pure function of the spec, and the seed matters', () => {
    const a = loadMultiMnist(spec({ seed: 3 }));
    const b = loadMultiMnist(spec({ seed: 3 }));
    const c = loadMultiMnist(spec({ seed: 4 }));
    assert.deepEqual(allInputs(a.train), allInputs(b.train));
    assert.deepEqual(allInputs(a.test), allInputs(b.test));
    assert.deepEqual(allTargets(a.train, 'right'), allTargets(b.train, 'right'));
    assert.notDeepEqual(allInputs(a.train), allInputs(c.train));
    assert.notDeepEqual(allTargets(a.train, 'left'), allTargets(c.train, 'left'));
  });

  void it('overlays max(left shifted left, right shifted right), exactly as the package stores the digits', () => {
    for (const shift of [0, 4, 8]) {
      const ds = loadMultiMnist(spec({ shift, seed: 11 }));
      for (const split of [ds.train, ds.test]) {
        const indices = [0, 1, 17, split.size - 1];
        const out = new Float32Array(indices.length * PIXELS);
        split.inputs(indices, out);
        indices.forEach((i, j) => {
          const { left, right } = split.digitPair(i);
          const expected = expectedImage(rawDigit(left.digit, left.index), rawDigit(right.digit, right.index), shift);
          assert.deepEqual(out.subarray(j * PIXELS, (j + 1) * PIXELS), expected, `image ${i}, shift ${shift}`);
        });
      }
    }
  });

  void it('labels each image with the classes of its two digits', () => {
    const ds = loadMultiMnist(spec({ seed: 5 }));
    const left = allTargets(ds.train, 'left');
    const right = allTargets(ds.train, 'right');
    const seen = new Set<number>();
    for (let i = 0; i < ds.train.size; i++) {
      const pair = ds.train.digitPair(i);
      assert.equal(left[i], pair.left.digit);
      assert.equal(right[i], pair.right.digit);
      seen.add(pair.left.digit);
    }
    assert.equal(seen.size, 10, 'all ten classes appear');
  });

  void it('never puts a test digit in a training image, and holds out testFraction of each class', () => {
    const testFraction = 0.2;
    const ds = loadMultiMnist(spec({ trainSize: 30000, testSize: 6000, testFraction, seed: 2 }));
    const used = (split: MultiMnistSplit): Set<string> => {
      const ids = new Set<string>();
      for (let i = 0; i < split.size; i++) {
        const { left, right } = split.digitPair(i);
        ids.add(`${left.digit}/${left.index}`).add(`${right.digit}/${right.index}`);
      }
      return ids;
    };
    const train = used(ds.train);
    const test = used(ds.test);
    for (const id of test) assert.ok(!train.has(id), `test digit ${id} also appears in training`);
    for (let d = 0; d < 10; d++) {
      const n = raw[d]!.length / PIXELS;
      const trainCount = [...train].filter((id) => id.startsWith(`${d}/`)).length;
      const testCount = [...test].filter((id) => id.startsWith(`${d}/`)).length;
      assert.ok(trainCount <= Math.round(n * (1 - testFraction)), `class ${d}: ${trainCount} train digits`);
      assert.ok(testCount <= n - Math.round(n * (1 - testFraction)), `class ${d}: ${testCount} test digits`);
      // 30 000 images draw 60 000 times from ~8 000 digits: nearly every train digit shows up
      // (each is missed with probability e^-7.5), so the pools really are that large.
      assert.ok(trainCount >= 0.99 * Math.round(n * (1 - testFraction)), `class ${d}: only ${trainCount} train digits used`);
    }
  });

  void it('produces pixel values in [0, 1]', () => {
    const ds = loadMultiMnist(spec({ shift: 8 }));
    const x = allInputs(ds.test);
    assert.ok(x.every((v) => v >= 0 && v <= 1));
    assert.ok(x.some((v) => v > 0.5));
  });

  void it('rejects out-of-range indices and mis-sized buffers', () => {
    const ds = loadMultiMnist(spec());
    assert.throws(() => ds.train.inputs([2000], new Float32Array(PIXELS)), RangeError);
    assert.throws(() => ds.train.inputs([0, 1], new Float32Array(PIXELS)), RangeError);
    assert.throws(() => ds.train.targets('left', [-1], new Float32Array(1)), RangeError);
    assert.throws(() => ds.train.targets('middle', [0], new Float32Array(1)), DatasetError);
  });

  void it('refuses a testFraction that leaves a class without test digits', () => {
    assert.throws(() => loadMultiMnist(spec({ testFraction: 0.0001 })), DatasetError);
  });
});

void describe('loadMultiMnist with broken digit files', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mtl-mnist-'));
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  function fixture(edit?: (dir: string) => void): string {
    const dir = fs.mkdtempSync(path.join(root, 'digits-'));
    for (let d = 0; d < 10; d++) {
      fs.writeFileSync(path.join(dir, `${d}.json`), JSON.stringify({ data: new Array<number>(2 * PIXELS).fill(d / 10) }));
    }
    edit?.(dir);
    return dir;
  }

  function assertFails(dir: string, file: string, pattern: RegExp): void {
    assert.throws(
      () => loadMultiMnist(spec({ trainSize: 4, testSize: 2, testFraction: 0.5 }), { digitsDir: dir }),
      (err: unknown) => err instanceof DatasetError && err.message.includes(path.join(dir, file)) && pattern.test(err.message),
    );
  }

  void it('loads a well-formed directory', () => {
    const ds = loadMultiMnist(spec({ trainSize: 4, testSize: 2, testFraction: 0.5, shift: 0 }), { digitsDir: fixture() });
    const x = new Float32Array(PIXELS);
    const y = new Float32Array(1);
    ds.test.inputs([1], x);
    ds.test.targets('right', [1], y);
    // Both digits of a class are constant images of value class/10: max picks the larger class.
    const { left, right } = ds.test.digitPair(1);
    assert.equal(x[400], Math.fround(Math.max(left.digit, right.digit) / 10));
    assert.equal(y[0], right.digit);
  });

  void it('names a missing file', () => {
    assertFails(fixture((dir) => fs.rmSync(path.join(dir, '7.json'))), '7.json', /no such file/);
  });

  void it('names a file that is not JSON', () => {
    assertFails(fixture((dir) => fs.writeFileSync(path.join(dir, '3.json'), '{"data": [0, 0')), '3.json', /malformed/);
  });

  void it('names a file without a data array, or with a partial image', () => {
    assertFails(fixture((dir) => fs.writeFileSync(path.join(dir, '0.json'), '{"pixels": []}')), '0.json', /"data"/);
    assertFails(fixture((dir) => fs.writeFileSync(path.join(dir, '9.json'), JSON.stringify({ data: [0, 0, 0] }))), '9.json', /784/);
  });

  void it('names a file holding a value outside [0, 1]', () => {
    const bad = new Array<number>(PIXELS).fill(0);
    bad[5] = 255;
    assertFails(fixture((dir) => fs.writeFileSync(path.join(dir, '4.json'), JSON.stringify({ data: bad }))), '4.json', /value 5 is 255/);
  });
});
