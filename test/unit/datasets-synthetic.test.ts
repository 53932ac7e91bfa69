import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { loadSynthetic, type SyntheticDataset } from '../../common/datasets/synthetic.js';
import { inputSize, type Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { SyntheticSpec } from '../../common/job-schema.js';
import { validateJob } from '../../common/job-spec.js';

function spec(overrides: Partial<SyntheticSpec> = {}): SyntheticSpec {
  return { dataset: 'synthetic', target: 0, tasks: 2, dim: 20, rho: 0.5, samples: 1000, noise: 0.1, testFraction: 0.2, seed: 0, ...overrides };
}

const all = (split: Split): Uint32Array => Uint32Array.from({ length: split.size }, (_, i) => i);

function inputs(ds: SyntheticDataset, split: Split): Float32Array {
  const out = new Float32Array(split.size * inputSize(ds));
  split.inputs(all(split), out);
  return out;
}

function labels(split: Split, target: string): Float32Array {
  const out = new Float32Array(split.size);
  split.targets(target, all(split), out);
  return out;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
};
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  const mean = (v: ArrayLike<number>): number => Array.from(v).reduce((s, x) => s + x, 0) / n;
  const ma = mean(a);
  const mb = mean(b);
  const ca = Float64Array.from(a, (x) => x - ma);
  const cb = Float64Array.from(b, (x) => x - mb);
  return cosine(ca, cb);
}

void describe('loadSynthetic', () => {
  void it('has the documented shape, targets and split sizes', () => {
    const ds = loadSynthetic(spec({ tasks: 3, samples: 1000, testFraction: 0.25 }));
    assert.deepEqual(ds.inputShape, [20]);
    assert.deepEqual(ds.targets, { '0': { kind: 'regression' }, '1': { kind: 'regression' }, '2': { kind: 'regression' } });
    assert.equal(ds.train.size, 750);
    assert.equal(ds.test.size, 250);
  });

  void it('is a pure function of the spec, and the seed matters', () => {
    const a = loadSynthetic(spec({ seed: 7 }));
    const b = loadSynthetic(spec({ seed: 7 }));
    const c = loadSynthetic(spec({ seed: 8 }));
    assert.deepEqual(inputs(a, a.train), inputs(b, b.train));
    assert.deepEqual(labels(a.test, '1'), labels(b.test, '1'));
    assert.deepEqual(a.taskWeights, b.taskWeights);
    assert.notDeepEqual(inputs(a, a.train), inputs(c, c.train));
    assert.notDeepEqual(labels(a.train, '0'), labels(c.train, '0'));
  });

  void it('gives unit-norm task weights whose pairwise cosine is rho', () => {
    const cases: Array<[number, number]> = [[2, -0.7], [2, 0], [2, 0.5], [2, 1], [3, 0.3], [5, 0.9], [4, 0]];
    for (const [tasks, rho] of cases) {
      const { taskWeights } = loadSynthetic(spec({ tasks, rho, samples: 10 }));
      assert.equal(taskWeights.length, tasks);
      for (let s = 0; s < tasks; s++) {
        assert.ok(Math.abs(dot(taskWeights[s]!, taskWeights[s]!) - 1) < 1e-12, `|w_${s}| = 1`);
        for (let t = s + 1; t < tasks; t++) {
          const c = cosine(taskWeights[s]!, taskWeights[t]!);
          assert.ok(Math.abs(c - rho) < 1e-12, `T=${tasks} rho=${rho}: cos(w_${s}, w_${t}) = ${c}`);
        }
      }
    }
    assert.equal(loadSynthetic(spec({ tasks: 1, samples: 10 })).taskWeights.length, 1);
  });

  void it('with groups, gives cosine rho within a group and 0 across groups', () => {
    const groups = [[0, 2], [1], [3, 4]];
    const { taskWeights, description } = loadSynthetic(spec({ tasks: 5, rho: 0.8, groups, samples: 10 }));
    const groupOf = (t: number): number => groups.findIndex((g) => g.includes(t));
    for (let s = 0; s < 5; s++) {
      assert.ok(Math.abs(dot(taskWeights[s]!, taskWeights[s]!) - 1) < 1e-12, `|w_${s}| = 1`);
      for (let t = s + 1; t < 5; t++) {
        const expected = groupOf(s) === groupOf(t) ? 0.8 : 0;
        const c = cosine(taskWeights[s]!, taskWeights[t]!);
        assert.ok(Math.abs(c - expected) < 1e-12, `cos(w_${s}, w_${t}) = ${c}, expected ${expected}`);
      }
    }
    assert.match(description, /within groups \[\[0,2\],\[1\],\[3,4\]\]/);
  });

  void it('rejects groups that are not a partition of the tasks, or a negative rho with groups', () => {
    const bad = [[[0, 1], [1, 2]], [[0], [1]], [[0, 1, 2, 3]], [[0, 1, 2], []]];
    for (const groups of bad) {
      assert.throws(() => loadSynthetic(spec({ tasks: 3, groups, samples: 10 })), (e: unknown) => e instanceof DatasetError && /groups/.test(e.message), JSON.stringify(groups));
    }
    assert.throws(() => loadSynthetic(spec({ tasks: 2, rho: -0.5, groups: [[0, 1]], samples: 10 })), DatasetError);
    assert.throws(() => loadSynthetic(spec({ tasks: 4, dim: 5, groups: [[0, 1], [2, 3]], samples: 10 })), (e: unknown) => e instanceof DatasetError && /6 orthogonal/.test(e.message));
  });

  void it('computes y_t = w_tᵀx + Σ sin(α_j w_tᵀx + β_j) from the inputs it serves (noise 0)', () => {
    const ds = loadSynthetic(spec({ noise: 0, tasks: 3, rho: 0.4 }));
    const { alpha, beta } = ds.sinusoids;
    assert.equal(alpha.length, 10);
    assert.equal(beta.length, 10);
    for (const split of [ds.train, ds.test]) {
      const x = inputs(ds, split);
      for (let t = 0; t < 3; t++) {
        const y = labels(split, String(t));
        for (let i = 0; i < split.size; i++) {
          const z = dot(ds.taskWeights[t]!, x.subarray(i * 20, (i + 1) * 20));
          const expected = z + alpha.reduce((s, a, j) => s + Math.sin(a * z + beta[j]!), 0);
          assert.equal(y[i], Math.fround(expected), `task ${t}, example ${i}`);
        }
      }
    }
  });

  void it('adds Gaussian noise with the requested standard deviation', () => {
    const clean = loadSynthetic(spec({ noise: 0, samples: 5000 }));
    const noisy = loadSynthetic(spec({ noise: 0.5, samples: 5000 }));
    assert.deepEqual(inputs(clean, clean.train), inputs(noisy, noisy.train), 'the noise does not move the inputs');
    const a = labels(clean.train, '1');
    const b = labels(noisy.train, '1');
    const residual = Float64Array.from(b, (v, i) => v - a[i]!);
    const std = Math.sqrt(dot(residual, residual) / residual.length);
    assert.ok(Math.abs(std - 0.5) < 0.03, `noise std ${std}`);
  });

  void it('draws standard normal inputs', () => {
    const ds = loadSynthetic(spec({ samples: 5000 }));
    const x = inputs(ds, ds.train);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const variance = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
  });

  void it('makes the labels of strongly related tasks more correlated (rho 0.9 vs 0.1)', () => {
    const corr = (rho: number): number => {
      const ds = loadSynthetic(spec({ rho, samples: 4000, dim: 100 }));
      return pearson(labels(ds.train, '0'), labels(ds.train, '1'));
    };
    const high = corr(0.9);
    const low = corr(0.1);
    assert.ok(high > low + 0.3, `corr(rho 0.9) = ${high}, corr(rho 0.1) = ${low}`);
  });

  void it('keeps the inputs when only rho changes', () => {
    const a = loadSynthetic(spec({ rho: 0.1 }));
    const b = loadSynthetic(spec({ rho: 0.8 }));
    assert.deepEqual(inputs(a, a.test), inputs(b, b.test));
    assert.notDeepEqual(labels(a.test, '1'), labels(b.test, '1'));
  });

  void it('serves the requested examples in the requested order', () => {
    const ds = loadSynthetic(spec());
    const x = inputs(ds, ds.test);
    const y = labels(ds.test, '0');
    const pick = [5, 0, 5, 199];
    const xs = new Float32Array(pick.length * 20);
    const ys = new Float32Array(pick.length);
    ds.test.inputs(pick, xs);
    ds.test.targets('0', pick, ys);
    pick.forEach((i, j) => {
      assert.deepEqual(xs.subarray(j * 20, (j + 1) * 20), x.subarray(i * 20, (i + 1) * 20));
      assert.equal(ys[j], y[i]);
    });
    assert.throws(() => ds.test.inputs([200], new Float32Array(20)), RangeError);
    assert.throws(() => ds.test.targets('2', [0], new Float32Array(1)), DatasetError);
  });

  void it('rejects impossible specs with a DatasetError', () => {
    assert.throws(() => loadSynthetic(spec({ tasks: 4, dim: 4 })), (e: unknown) => e instanceof DatasetError && /dim 4/.test(e.message));
    assert.throws(() => loadSynthetic(spec({ samples: 10, testFraction: 0.01 })), DatasetError);
    assert.throws(() => loadSynthetic(spec({ samples: 10, testFraction: 0.99 })), DatasetError);
    assert.throws(() => loadSynthetic(spec({ tasks: 3, rho: -0.2 })), DatasetError);
  });
});

void describe('bindTasks with synthetic tasks', () => {
  void it('loads one source for tasks that differ only in target, and checks the targets', () => {
    const data = spec({ samples: 100 });
    const bindings = bindTasks(
      {
        second: { loss: 'meanSquaredError', data: { ...data, target: 1 } },
        first: { loss: 'meanAbsoluteError', data: { ...data, target: 0 } },
      },
      '/nowhere',
    );
    assert.deepEqual([...bindings.keys()], ['second', 'first']);
    const second = bindings.get('second')!;
    const first = bindings.get('first')!;
    assert.equal(second.dataset, first.dataset, 'one dataset for the shared source');
    assert.equal(second.source, first.source);
    assert.deepEqual([second.target, first.target], ['1', '0']);

    assert.throws(
      () => bindTasks({ third: { loss: 'meanSquaredError', data: { ...data, target: 2 } } }, '/nowhere'),
      (e: unknown) => e instanceof DatasetError && e.message.includes('"third"') && e.message.includes('"2"'),
    );
    assert.throws(
      () => bindTasks({ cls: { loss: 'sparseCategoricalCrossentropy', data } }, '/nowhere'),
      (e: unknown) => e instanceof DatasetError && e.message.includes('"cls"'),
    );
  });
});

void describe('synthetic shape', () => {
  void it('gives the same rows and labels in the shape asked for, and refuses a shape that does not hold dim values', () => {
    const flat = loadSynthetic(spec({ dim: 12, samples: 50 }));
    const shaped = loadSynthetic(spec({ dim: 12, samples: 50, shape: [2, 2, 3] }));
    assert.deepEqual(flat.inputShape, [12]);
    assert.deepEqual(shaped.inputShape, [2, 2, 3]);
    assert.deepEqual(inputs(shaped, shaped.train), inputs(flat, flat.train));
    assert.deepEqual(labels(shaped.test, '1'), labels(flat.test, '1'));
    assert.match(shaped.description, /dim 12 as \[2, 2, 3\]/);

    const job = (shape: number[]) => ({
      name: 'shaped',
      tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0, dim: 12, shape } } },
      model: { heads: { a: [{ dense: { units: 1 } }] } },
      training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    });
    assert.deepEqual((validateJob(job([4, 3]), 'test').tasks.a!.data as SyntheticSpec).shape, [4, 3]);
    assert.throws(() => validateJob(job([2, 2, 2]), 'test'), /tasks\.a\.data\.shape: shape \[2, 2, 2\] holds 8 values per example, but dim is 12 \(set dim: 8\)/);
  });
});
