import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OptimizerSpec } from '../../common/job-schema.js';
import { Rng } from '../../common/random.js';
import { createOptimizer } from '../../common/optimizers.js';

const SIZE = 24;
const STEPS = 8;

/** Parameters away from zero (relative comparison stays meaningful) and gradients of mixed sign, with exact zeros. */
function problem(seed: number): { params: Float32Array; grads: Float32Array[] } {
  const rng = new Rng(seed);
  const params = Float32Array.from({ length: SIZE }, () => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.5, 2));
  const grads = Array.from({ length: STEPS + 4 }, () =>
    Float32Array.from({ length: SIZE }, (_, i) => (i === 3 ? 0 : rng.uniform(-3, 3))),
  );
  return { params, grads };
}

/** The textbook update rules, in float64 throughout, written out independently of the product code. */
function reference(spec: OptimizerSpec, initial: Float32Array, grads: readonly Float32Array[]): Float64Array {
  const p = Float64Array.from(initial);
  const a = new Float64Array(p.length); // momentum buffer, or Adam's first moment
  const b = new Float64Array(p.length); // Adam's second moment
  grads.forEach((g, step) => {
    const t = step + 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]!;
      switch (spec.name) {
        case 'sgd':
          p[i] = p[i]! - spec.learningRate * gi;
          break;
        case 'momentum': {
          a[i] = spec.momentum * a[i]! + gi;
          const update = spec.nesterov ? gi + spec.momentum * a[i]! : a[i]!;
          p[i] = p[i]! - spec.learningRate * update;
          break;
        }
        case 'adam': {
          a[i] = spec.beta1 * a[i]! + (1 - spec.beta1) * gi;
          b[i] = spec.beta2 * b[i]! + (1 - spec.beta2) * gi * gi;
          const mHat = a[i]! / (1 - Math.pow(spec.beta1, t));
          const vHat = b[i]! / (1 - Math.pow(spec.beta2, t));
          p[i] = p[i]! - (spec.learningRate * mHat) / (Math.sqrt(vHat) + spec.epsilon);
          break;
        }
      }
    }
  });
  return p;
}

function assertClose(actual: Float32Array, expected: Float64Array, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i]!;
    const err = Math.abs(actual[i]! - e);
    assert.ok(err <= 1e-6 * Math.abs(e) + 1e-9, `${what}[${i}]: got ${actual[i]}, expected ${e} (error ${err})`);
  }
}

const SPECS: OptimizerSpec[] = [
  { name: 'sgd', learningRate: 0.05 },
  { name: 'momentum', learningRate: 0.02, momentum: 0.9, nesterov: false },
  { name: 'momentum', learningRate: 0.02, momentum: 0.7, nesterov: true },
  { name: 'adam', learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  { name: 'adam', learningRate: 0.03, beta1: 0.5, beta2: 0.9, epsilon: 1e-3 },
];

function label(spec: OptimizerSpec): string {
  return JSON.stringify(spec);
}

void describe('optimizers follow the textbook formulas', () => {
  for (const spec of SPECS) {
    void it(`${label(spec)} over ${STEPS} steps`, () => {
      const { params, grads } = problem(1);
      const initial = params.slice();
      const opt = createOptimizer(spec, SIZE);
      assert.equal(opt.name, spec.name);
      const used = grads.slice(0, STEPS);
      const expectedAfter: Float64Array[] = [];
      for (let s = 1; s <= STEPS; s++) expectedAfter.push(reference(spec, initial, used.slice(0, s)));
      used.forEach((g, s) => {
        opt.step(params, g);
        assertClose(params, expectedAfter[s]!, `${spec.name} step ${s + 1}`);
      });
      // The comparison is only meaningful if the parameters actually moved.
      const moved = params.reduce((m, v, i) => Math.max(m, Math.abs(v - initial[i]!)), 0);
      assert.ok(moved > 1e-3, `parameters moved (${moved})`);
    });
  }

  void it('adam takes a first step of about lr in the direction opposite to the gradient', () => {
    const params = new Float32Array([1, 1, 1]);
    const opt = createOptimizer({ name: 'adam', learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 3);
    opt.step(params, new Float32Array([2, -0.5, 0]));
    assertClose(params, Float64Array.from([0.9, 1.1, 1]), 'adam first step');
  });
});

void describe('optimizer state', () => {
  for (const spec of SPECS) {
    void it(`${label(spec)}: state() then restore() continues bitwise like an uninterrupted run`, () => {
      const { params, grads } = problem(2);
      const uninterrupted = createOptimizer(spec, SIZE);
      for (const g of grads.slice(0, 3)) uninterrupted.step(params, g);
      const saved = uninterrupted.state();
      const savedParams = params.slice();
      // The original keeps going after state() was taken: the snapshot must not follow it.
      for (const g of grads.slice(3)) uninterrupted.step(params, g);

      const resumed = createOptimizer(spec, SIZE);
      resumed.restore(saved);
      for (const g of grads.slice(3)) resumed.step(savedParams, g);
      assert.ok(
        Buffer.from(savedParams.buffer).equals(Buffer.from(params.buffer)),
        'resumed parameters are bitwise equal to the uninterrupted ones',
      );
      assert.equal(saved.name, spec.name);
    });
  }

  void it('restore rejects state of the wrong size', () => {
    const small = createOptimizer({ name: 'adam', learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 2);
    const big = createOptimizer({ name: 'adam', learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }, 3);
    assert.throws(() => big.restore(small.state()), RangeError);
    const m2 = createOptimizer({ name: 'momentum', learningRate: 0.1, momentum: 0.9, nesterov: false }, 2);
    const m3 = createOptimizer({ name: 'momentum', learningRate: 0.1, momentum: 0.9, nesterov: false }, 3);
    assert.throws(() => m3.restore(m2.state()), RangeError);
  });
});

void describe('length checks', () => {
  for (const spec of SPECS) {
    void it(`${label(spec)} throws on a gradient of the wrong length and leaves params alone`, () => {
      const opt = createOptimizer(spec, 4);
      const params = new Float32Array([1, 2, 3, 4]);
      assert.throws(() => opt.step(params, new Float32Array(3)), RangeError);
      assert.throws(() => opt.step(params, new Float32Array(5)), RangeError);
      assert.deepEqual(params, new Float32Array([1, 2, 3, 4]));
    });
  }
});
