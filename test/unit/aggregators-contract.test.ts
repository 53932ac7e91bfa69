// The contract every registered method keeps, checked through the registry: the same result
// with or without a supplied Gramian and output buffer, typed errors for non-finite input
// that leave the state untouched, checkpoint round trips, T = 1, and d = Σ wᵢ gᵢ.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregationInputError } from '../../common/errors.js';
import { Rng } from '../../common/random.js';
import { gramian } from '../../coordinator/aggregation/gramian.js';
import { aggregatorNames, createAggregator } from '../../coordinator/aggregation/registry.js';
import type { AggregationInput } from '../../coordinator/aggregation/types.js';

function problem(t: number, p: number, seed: number): { grads: Float32Array[]; losses: number[] } {
  const rng = new Rng(seed);
  const common = Array.from({ length: p }, () => rng.normal());
  const grads = Array.from({ length: t }, (_, i) => Float32Array.from(common, (c) => (i % 2 ? -0.3 : 0.6) * c + rng.normal()));
  return { grads, losses: Array.from({ length: t }, () => 0.5 + rng.next()) };
}

/** Three steps of history, so that stateful methods have state. */
function history(name: string, steps = 3) {
  const agg = createAggregator(name, {}, { seed: 5 });
  for (let s = 0; s < steps; s++) agg.aggregate({ ...problem(4, 40, s), step: s });
  return agg;
}

void describe('every aggregation method', () => {
  void it('is registered (17 methods)', () => {
    assert.equal(aggregatorNames.length, 17);
  });

  for (const name of aggregatorNames) {
    void describe(name, () => {
      void it('gives the same result with a supplied Gramian and output buffer, written into that buffer', () => {
        const a = history(name);
        const b = history(name);
        const input = { ...problem(4, 40, 9), step: 3 };
        const plain = a.aggregate(input);
        const out = new Float32Array(40).fill(123);
        const supplied = b.aggregate({ ...input, gramian: gramian(input.grads), out });
        assert.equal(supplied.direction, out);
        assert.deepEqual(Array.from(supplied.direction), Array.from(plain.direction));
        assert.deepEqual(supplied.weights, plain.weights);
        assert.deepEqual(supplied.lossWeights, plain.lossWeights);
      });

      void it('rejects non-finite gradients (with or without a Gramian) and losses, and the rejection changes nothing', () => {
        const a = history(name);
        const b = history(name);
        const bad = problem(4, 40, 10);
        bad.grads[2]![7] = Number.NaN;
        assert.throws(() => a.aggregate({ ...bad, step: 3 }), AggregationInputError);
        assert.throws(() => a.aggregate({ ...bad, step: 3, gramian: gramian(bad.grads) }), AggregationInputError);
        const inf = problem(4, 40, 11);
        inf.grads[0]![0] = Number.POSITIVE_INFINITY;
        assert.throws(() => a.aggregate({ ...inf, step: 3, gramian: gramian(inf.grads) }), AggregationInputError);
        const badLoss = problem(4, 40, 12);
        badLoss.losses[1] = Number.NaN;
        assert.throws(() => a.aggregate({ ...badLoss, step: 3 }), AggregationInputError);
        // a saw three rejected calls, b none: their next outputs are the same.
        const next: AggregationInput = { ...problem(4, 40, 13), step: 3 };
        assert.deepEqual(Array.from(a.aggregate(next).direction), Array.from(b.aggregate(next).direction));
      });

      void it('round-trips through a checkpoint: restore(state()) gives the same next output', () => {
        const a = history(name, 4);
        const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
        const b = createAggregator(name, {}, { seed: 5 });
        b.restore(saved);
        const next = { ...problem(4, 40, 20), step: 4 };
        const ra = a.aggregate(next);
        const rb = b.aggregate(next);
        assert.deepEqual(Array.from(rb.direction), Array.from(ra.direction));
        assert.deepEqual(rb.weights, ra.weights);
        assert.deepEqual(rb.lossWeights, ra.lossWeights);
      });

      void it('returns g₁ for one task, and weights that reproduce the direction', () => {
        const one = problem(1, 30, 3);
        const r = createAggregator(name, {}, { seed: 1 }).aggregate({ ...one, step: 0 });
        assert.deepEqual(Array.from(r.direction), Array.from(one.grads[0]!));
        const many = problem(5, 30, 4);
        const m = createAggregator(name, {}, { seed: 1 }).aggregate({ ...many, step: 0 });
        assert.ok(m.direction.every(Number.isFinite));
        if (m.weights.length > 0) {
          assert.equal(m.weights.length, 5);
          for (let k = 0; k < 30; k++) {
            const sum = m.weights.reduce((s, w, i) => s + w * many.grads[i]![k]!, 0);
            const scale = m.weights.reduce((s, w, i) => s + Math.abs(w * many.grads[i]![k]!), 0);
            assert.ok(Math.abs(sum - m.direction[k]!) <= 1e-5 * (1 + scale), `${name}[${k}]: ${sum} vs ${m.direction[k]}`);
          }
        }
      });
    });
  }
});
