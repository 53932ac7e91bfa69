// Loss-weighting (uw, gradnorm, dwa, famo, rlw, db-mtl) and gradient-surgery (pcgrad, gradvac)
// aggregators: the contract on random and adversarial inputs, each method's defining behaviour,
// and checkpoint round trips.
//
// Tolerances. Methods compute weights in double precision and form d with one weightedSum,
// which rounds each output entry to float32 once per group of four rows: a relative error of
// 2⁻²⁴ ≈ 6e-8 of at most Σᵢ |wᵢ gᵢⱼ| per rounding, so for T ≤ 8 (two roundings) 1e-6 × that
// sum is an 8× margin. It scales with the data, so it holds for rows of 1e-20 and 1e20 alike.
// Comparisons of two runs that differ only in the order of floating-point sums (task
// permutations) allow 1e-5 relative: the learned logits live in float32.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AggregationInputError } from '../../common/errors.js';
import { Rng } from '../../common/random.js';
import { gramian, weightedSum } from '../../coordinator/aggregation/gramian.js';
import { dbMtl } from '../../coordinator/aggregation/methods/db-mtl.js';
import { dwa } from '../../coordinator/aggregation/methods/dwa.js';
import { famo } from '../../coordinator/aggregation/methods/famo.js';
import { gradnorm } from '../../coordinator/aggregation/methods/gradnorm.js';
import { gradvac, raiseCosines } from '../../coordinator/aggregation/methods/gradvac.js';
import { pcgrad, projectConflicting, shuffledOthers } from '../../coordinator/aggregation/methods/pcgrad.js';
import { rlw } from '../../coordinator/aggregation/methods/rlw.js';
import { uw } from '../../coordinator/aggregation/methods/uw.js';
import { decodeFloat32 } from '../../coordinator/aggregation/state-codec.js';
import type { AggregationResult, Aggregator, AggregatorDefinition } from '../../coordinator/aggregation/types.js';

function make<O extends Record<string, unknown>>(definition: AggregatorDefinition<O>, options: Record<string, unknown> = {}, seed = 7): Aggregator {
  return definition.create(definition.options.parse(options), { seed });
}

interface Method {
  name: string;
  make: (options?: Record<string, unknown>) => Aggregator;
  /** Returns loss weights. */
  weighting: boolean;
  /** Loss weights sum to T (LibMTL normalises them to 1). */
  sumsToT: boolean;
  /**
   * d and the weights are a function of the (permuted) tasks, not of their positions. Not so for
   * pcgrad, gradvac and rlw, whose random draws are keyed by task position.
   */
  orderFree: boolean;
}

const methods: Method[] = [
  { name: 'uw', make: (o) => make(uw, o), weighting: true, sumsToT: false, orderFree: true },
  { name: 'gradnorm', make: (o) => make(gradnorm, o), weighting: true, sumsToT: true, orderFree: true },
  // A short window so the weights move within a few steps.
  { name: 'dwa', make: (o) => make(dwa, { window: 2, ...o }), weighting: true, sumsToT: true, orderFree: true },
  { name: 'famo', make: (o) => make(famo, o), weighting: true, sumsToT: true, orderFree: true },
  { name: 'rlw', make: (o) => make(rlw, o), weighting: true, sumsToT: true, orderFree: false },
  { name: 'db-mtl', make: (o) => make(dbMtl, o), weighting: true, sumsToT: false, orderFree: true },
  { name: 'pcgrad', make: (o) => make(pcgrad, o), weighting: false, sumsToT: false, orderFree: false },
  { name: 'gradvac', make: (o) => make(gradvac, o), weighting: false, sumsToT: false, orderFree: false },
];

const f32 = (rows: number[][]): Float32Array[] => rows.map((r) => Float32Array.from(r));
const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
};
const norm = (a: ArrayLike<number>): number => Math.sqrt(dot(a, a));

/** Σ cₖ gₖ in double precision. */
function combine(rows: readonly Float32Array[], c: readonly number[]): Float64Array {
  const out = new Float64Array(rows[0]!.length);
  rows.forEach((r, k) => r.forEach((v, j) => (out[j]! += c[k]! * v)));
  return out;
}

/** d = Σ wᵢ gᵢ within 1e-6 of Σ |wᵢ gᵢⱼ| per entry (see the tolerance note at the top). */
function assertSpans(rows: readonly Float32Array[], r: AggregationResult, what: string): void {
  const expected = combine(rows, r.weights);
  const scale = combine(
    rows.map((row) => row.map(Math.abs)),
    r.weights.map(Math.abs),
  );
  r.direction.forEach((v, j) => {
    assert.ok(Math.abs(v - expected[j]!) <= 1e-6 * scale[j]! + 1e-44, `${what}: d[${j}] = ${v}, Σ wᵢgᵢ = ${expected[j]}`);
  });
}

function assertClose(actual: number, expected: number, relative: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= relative * Math.max(Math.abs(expected), Math.abs(actual)) + 1e-300, `${what}: ${actual} vs ${expected}`);
}

// ---- inputs -------------------------------------------------------------------------------

const KINDS = ['random', 'collinear', 'opposite', 'duplicate', 'tiny', 'huge', 'mixed-scale', 'zero-rows', 'all-zero'] as const;
type Kind = (typeof KINDS)[number];

function shapeRows(kind: Kind, base: number[][], noise: number, pick: boolean[]): number[][] {
  const first = base[0]!;
  switch (kind) {
    case 'random':
      return base;
    case 'collinear': // ±(1+i)·g₀ plus a relative perturbation of `noise`
      return base.map((r, i) => r.map((v, j) => (i % 2 ? -1 : 1) * (1 + i) * first[j]! + noise * v));
    case 'opposite':
      return base.map((r, i) => (i % 2 ? first.map((v) => -v) : first.slice()));
    case 'duplicate':
      return base.map((r, i) => (pick[i] ? first.slice() : r));
    case 'tiny':
      return base.map((r) => r.map((v) => v * 1e-20));
    case 'huge':
      return base.map((r) => r.map((v) => v * 1e20));
    case 'mixed-scale':
      return base.map((r, i) => r.map((v) => v * (pick[i] ? 1e-20 : 1e20)));
    case 'zero-rows':
      return base.map((r, i) => (pick[i] ? r.map(() => 0) : r));
    case 'all-zero':
      return base.map((r) => r.map(() => 0));
  }
}

const value = fc.double({ min: -1e3, max: 1e3, noNaN: true });
const lossValue = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: 1e-3, max: 1e3, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1e-30, 1e-12, 1e30) },
  { weight: 1, arbitrary: fc.double({ min: -10, max: 0, noNaN: true }) },
);

interface Scenario {
  kind: Kind;
  /** Several steps of T × P gradients of one shape, with their losses. */
  steps: { rows: Float32Array[]; losses: number[] }[];
}

function scenario(minT: number, maxT: number, kinds: readonly Kind[] = KINDS): fc.Arbitrary<Scenario> {
  return fc
    .record({ t: fc.integer({ min: minT, max: maxT }), p: fc.integer({ min: 1, max: 12 }), kind: fc.constantFrom(...kinds) })
    .chain(({ t, p, kind }) =>
      fc.record({
        kind: fc.constant(kind),
        steps: fc.array(
          fc.record({
            base: fc.array(fc.array(value, { minLength: p, maxLength: p }), { minLength: t, maxLength: t }),
            noise: fc.double({ min: 1e-7, max: 1e-3, noNaN: true }),
            pick: fc.array(fc.boolean(), { minLength: t, maxLength: t }),
            losses: fc.array(lossValue, { minLength: t, maxLength: t }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
      }),
    )
    .map(({ kind, steps }) => ({
      kind,
      steps: steps.map((s) => ({ rows: f32(shapeRows(kind, s.base, s.noise, s.pick)), losses: s.losses })),
    }));
}

const FAST = { numRuns: 150 };

// ---- the contract, every method ---------------------------------------------------------

void describe('weighting and surgery aggregators: contract', () => {
  for (const method of methods) {
    void it(`${method.name}: d = Σ wᵢgᵢ, finite weights and loss weights, on random and adversarial inputs`, () => {
      fc.assert(
        fc.property(scenario(1, 8), ({ kind, steps }) => {
          const agg = method.make();
          steps.forEach(({ rows, losses }, step) => {
            const r = agg.aggregate({ grads: rows, losses, step });
            const t = rows.length;
            assert.equal(r.direction.length, rows[0]!.length);
            assert.ok(r.direction.every(Number.isFinite), `${kind}: finite direction`);
            assert.ok(r.weights.every(Number.isFinite), `${kind}: finite weights`);
            if (method.name === 'db-mtl' && t > 1) assert.deepEqual(r.weights, []);
            else {
              assert.equal(r.weights.length, t);
              assertSpans(rows, r, `${method.name} ${kind} step ${step}`);
            }
            if (method.weighting) {
              assert.equal(r.lossWeights?.length, t);
              assert.ok(r.lossWeights.every((l) => Number.isFinite(l) && l >= 0), `${kind}: loss weights ${r.lossWeights.join()}`);
              if (method.sumsToT) assertClose(r.lossWeights.reduce((s, l) => s + l, 0), t, 1e-12, 'Σλ = T');
            } else {
              assert.equal(r.lossWeights, undefined);
            }
          });
        }),
        FAST,
      );
    });

    void it(`${method.name}: T = 1 returns g₁ bitwise`, () => {
      const g1 = Float32Array.from([0.1, -7.25, 3e-7, 123456.79, 0]);
      const agg = method.make();
      for (const [step, loss] of [0.3, 0, 1e-30, 2].entries()) {
        const r = agg.aggregate({ grads: [g1], losses: [loss], step });
        assert.ok(bytesOf(r.direction).equals(bytesOf(g1)));
        assert.deepEqual(r.weights, [1]);
        if (method.weighting) assert.deepEqual(r.lossWeights, [1]);
      }
    });

    void it(`${method.name}: all-zero gradients give a zero direction, also after history`, () => {
      const agg = method.make();
      agg.aggregate({ grads: f32([[1, -2, 3], [-3, 1, 0.5]]), losses: [1, 2], step: 0 });
      for (const t of [2, 5]) {
        const fresh = method.make();
        const zeros = Array.from({ length: t }, () => new Float32Array(4));
        const losses = Array.from({ length: t }, (_, i) => 0.5 + i);
        assert.ok(fresh.aggregate({ grads: zeros, losses, step: 0 }).direction.every((v) => v === 0));
      }
      const zeros = [new Float32Array(3), new Float32Array(3)];
      assert.ok(agg.aggregate({ grads: zeros, losses: [1, 2], step: 1 }).direction.every((v) => v === 0));
    });

    void it(`${method.name}: non-finite gradients or losses throw AggregationInputError`, () => {
      const agg = method.make();
      for (const bad of [NaN, Infinity, -Infinity]) {
        assert.throws(() => agg.aggregate({ grads: f32([[1, 2], [3, bad]]), losses: [1, 1], step: 0 }), AggregationInputError);
        assert.throws(() => agg.aggregate({ grads: f32([[1, 2], [3, 4]]), losses: [1, bad], step: 0 }), AggregationInputError);
      }
      assert.throws(() => agg.aggregate({ grads: f32([[1, 2], [3]]), losses: [1, 1], step: 0 }), AggregationInputError);
      assert.throws(() => agg.aggregate({ grads: [], losses: [], step: 0 }), AggregationInputError);
      const needsLosses = method.weighting && method.name !== 'rlw';
      if (needsLosses) assert.throws(() => agg.aggregate({ grads: f32([[1, 2], [3, 4]]), losses: [], step: 0 }), AggregationInputError);
      else assert.ok(agg.aggregate({ grads: f32([[1, 2], [3, 4]]), losses: [], step: 0 }).direction.every(Number.isFinite));
    });

    void it(`${method.name}: a change in the number of tasks restarts its state with a note, not an error`, () => {
      const agg = method.make();
      agg.aggregate({ grads: f32([[1, 2], [-3, 4]]), losses: [1, 2], step: 0 });
      const r = agg.aggregate({ grads: f32([[1, 2], [-3, 4], [0.5, -1]]), losses: [1, 2, 3], step: 1 });
      assert.equal(r.weights.length, method.name === 'db-mtl' ? 0 : 3);
      if (agg.state() !== null) assert.match(r.notes?.join() ?? '', /changed/);
    });

    void it(`${method.name}: state() → JSON → restore() into a fresh instance continues bitwise`, () => {
      fc.assert(
        fc.property(scenario(1, 6), fc.array(fc.array(value, { minLength: 12, maxLength: 12 }), { minLength: 6, maxLength: 6 }), ({ steps }, next) => {
          const original = method.make();
          steps.forEach(({ rows, losses }, step) => original.aggregate({ grads: rows, losses, step }));
          const restored = method.make();
          restored.restore(JSON.parse(JSON.stringify(original.state())));
          const t = steps[0]!.rows.length;
          const p = steps[0]!.rows[0]!.length;
          const input = { grads: f32(next.slice(0, t).map((r) => r.slice(0, p))), losses: steps[0]!.losses.map((l) => l * 0.9 + 0.01), step: steps.length };
          const a = original.aggregate(input);
          const b = restored.aggregate(input);
          assert.ok(bytesOf(a.direction).equals(bytesOf(b.direction)), 'direction bitwise');
          assert.deepEqual(b.weights, a.weights);
          assert.deepEqual(b.lossWeights, a.lossWeights);
          assert.deepEqual(b.notes, a.notes);
          assert.deepEqual(restored.state(), original.state());
        }),
        { numRuns: 60 },
      );
    });

    void it(`${method.name}: a malformed state is rejected with AggregationInputError`, () => {
      const agg = method.make();
      agg.aggregate({ grads: f32([[1, 2], [3, 4]]), losses: [1, 2], step: 0 });
      const state = agg.state();
      if (state === null) return; // stateless: nothing to validate
      for (const bad of [7, 'x', [], { ...(state as object), logits: 5, targets: 'no', complete: 3, rows: [1], logVariance: 1 }]) {
        assert.throws(() => method.make().restore(bad), AggregationInputError, JSON.stringify(bad));
      }
    });

    if (method.orderFree) {
      void it(`${method.name}: permuting the tasks permutes the weights and leaves d unchanged`, () => {
        fc.assert(
          fc.property(
            scenario(2, 6, ['random']).filter(({ steps }) => steps.every((s) => s.losses.every((l) => l > 1e-3))),
            fc.nat(),
            ({ steps }, shuffleSeed) => {
              const t = steps[0]!.rows.length;
              // perm[k] = the original task at position k.
              const perm = Array.from(Rng.fromKey(shuffleSeed, 'permutation').permutation(t));
              const a = method.make();
              const b = method.make();
              // db-mtl reports no weights; its rows are bounded by Σ over steps of max ‖gᵢ‖/Lᵢ.
              let rowBound = 0;
              steps.forEach(({ rows, losses }, step) => {
                rowBound += Math.max(...rows.map((r, i) => norm(r) / (losses[i]! + 1e-8)));
                const ra = a.aggregate({ grads: rows, losses, step });
                const rb = b.aggregate({ grads: perm.map((k) => rows[k]!), losses: perm.map((k) => losses[k]!), step });
                perm.forEach((k, pos) => {
                  if (ra.weights.length) assertClose(rb.weights[pos]!, ra.weights[k]!, 1e-5, `weight of task ${k}`);
                  assertClose(rb.lossWeights![pos]!, ra.lossWeights![k]!, 1e-5, `loss weight of task ${k}`);
                });
                const scale = ra.weights.length
                  ? combine(
                      rows.map((r) => r.map(Math.abs)),
                      ra.weights.map(Math.abs),
                    )
                  : new Float64Array(rows[0]!.length).fill(rowBound);
                ra.direction.forEach((v, j) => assert.ok(Math.abs(v - rb.direction[j]!) <= 1e-5 * scale[j]! + 1e-30, `d[${j}]`));
              });
            },
          ),
          { numRuns: 80 },
        );
      });
    }
  }
});

// ---- pcgrad and gradvac -------------------------------------------------------------------

void describe('pcgrad', () => {
  void it('equals the mean when no pair of task gradients conflicts', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.double({ min: 0, max: 1e3, noNaN: true }), { minLength: 5, maxLength: 5 }), { minLength: 2, maxLength: 8 }), (raw) => {
        const rows = f32(raw);
        const r = make(pcgrad).aggregate({ grads: rows, losses: [], step: 3 });
        assert.deepEqual(r.weights, rows.map(() => 1 / rows.length));
        assert.ok(bytesOf(r.direction).equals(bytesOf(weightedSum(rows, r.weights, 5))));
      }),
      FAST,
    );
  });

  void it('two tasks with opposite gradients give d = 0, at any scale', () => {
    for (const scale of [1, 1e-20, 1e20]) {
      const g = Float32Array.from([3, -1, 0.25, 7].map((v) => v * scale));
      const r = make(pcgrad).aggregate({ grads: [g, g.map((v) => -v)], losses: [], step: 0 });
      assert.ok(r.direction.every((v) => v === 0), `scale ${scale}: ${r.direction.join()}`);
    }
  });

  void it("guarantee: right after gᵢ' is checked against gⱼ, ⟨gᵢ', gⱼ⟩ ≥ 0 (for every prefix of every order)", () => {
    fc.assert(
      fc.property(scenario(2, 8), fc.nat(), ({ steps }, seed) => {
        const rows = steps[0]!.rows;
        const t = rows.length;
        const h = gramian(rows);
        for (let i = 0; i < t; i++) {
          const order = shuffledOthers(seed, 'guarantee', 0, i, t);
          for (let len = 1; len <= order.length; len++) {
            const c = projectConflicting(h, (k) => (k === i ? order.slice(0, len) : []))[i]!;
            const j = order[len - 1]!;
            const projected = combine(rows, c);
            // Rounding of H and of the projection: relative to the magnitudes combined.
            const magnitude = c.reduce((s, ck, k) => s + Math.abs(ck) * norm(rows[k]!), 0) * norm(rows[j]!);
            assert.ok(dot(projected, rows[j]!) >= -1e-9 * magnitude, `row ${i} after ${order.slice(0, len).join(',')}`);
          }
        }
      }),
      FAST,
    );
  });

  void it('…and no more: a later projection can turn gᵢ\' against an earlier gⱼ again', () => {
    const rows = f32([[1, 0], [-1, 1], [0.2, -1]]);
    const c = projectConflicting(gramian(rows), (i) => (i === 0 ? [1, 2] : []))[0]!;
    const g1 = combine(rows, c);
    assert.ok(dot(g1, rows[2]!) >= -1e-12, 'not against the last row');
    assert.ok(dot(g1, rows[1]!) < -0.1, 'against the first row again');
  });

  void it('the order is seeded: same seed and step → same result; the seed option overrides the run seed', () => {
    const rows = f32([[1, 0.2, -1], [-1, 1, 0.3], [0.2, -1, 1], [-0.5, -0.5, -0.5]]);
    const input = { grads: rows, losses: [], step: 11 };
    assert.deepEqual(make(pcgrad).aggregate(input).weights, make(pcgrad).aggregate(input).weights);
    const seeds = new Set([1, 2, 3, 4, 5, 6].map((s) => make(pcgrad, { seed: s }, 99).aggregate(input).weights.join()));
    assert.ok(seeds.size > 1, 'different seeds give different orders');
  });
});

/**
 * PCGrad / GradVac as LibMTL writes them, on materialised float64 rows (no Gramian): row i is
 * adjusted against the original rows in `order(i)`; targets (T × T) are updated in place.
 * targets === undefined is PCGrad.
 */
function materialisedSurgery(rows: readonly Float32Array[], order: (i: number) => number[], targets?: number[], beta = 0): Float64Array {
  const t = rows.length;
  const mean = new Float64Array(rows[0]!.length);
  for (let i = 0; i < t; i++) {
    const gi = Float64Array.from(rows[i]!);
    for (const j of order(i)) {
      const gj = rows[j]!;
      if (norm(gj) === 0 || norm(gi) === 0) continue;
      const phi = dot(gi, gj) / norm(gi) / norm(gj);
      const target = targets?.[i * t + j] ?? 0;
      let w = 0;
      if (!targets) w = phi < 0 ? -dot(gi, gj) / dot(gj, gj) : 0;
      else if (phi < target) w = (norm(gi) * (target * Math.sqrt(1 - phi * phi) - phi * Math.sqrt(1 - target * target))) / (norm(gj) * Math.sqrt(1 - target * target));
      gi.forEach((v, k) => (gi[k] = v + w * gj[k]!));
      if (targets) targets[i * t + j] = (1 - beta) * target + beta * phi;
    }
    gi.forEach((v, k) => (mean[k]! += v / t));
  }
  return mean;
}

void describe('pcgrad and gradvac against the materialised algorithm', () => {
  for (const [name, beta] of [['pcgrad', 0], ['gradvac', 0.5]] as const) {
    // Generic rows (no zeros, no exact cancellations): where a projected row cancels to rounding
    // residue, LibMTL would feed the residue's meaningless cosine into its targets and we skip it.
    const generic = fc.integer({ min: 2, max: 6 }).chain((t) =>
      fc.array(fc.array(fc.array(fc.integer({ min: -999, max: 999 }), { minLength: 7, maxLength: 7 }), { minLength: t, maxLength: t }), {
        minLength: 1,
        maxLength: 4,
      }),
    );
    void it(`${name}: the coefficient representation gives the same d as projecting the rows themselves`, () => {
      fc.assert(
        fc.property(generic.map((steps) => ({ steps: steps.map((rows) => ({ rows: f32(rows.map((r) => r.map((v) => v / 7 + 0.01))) })) })), fc.nat(), ({ steps }, seed) => {
          const t = steps[0]!.rows.length;
          const agg = name === 'pcgrad' ? make(pcgrad, { seed }) : make(gradvac, { seed, beta });
          const targets = name === 'gradvac' ? new Array<number>(t * t).fill(0) : undefined;
          for (const [step, { rows }] of steps.entries()) {
            const r = agg.aggregate({ grads: rows, losses: [], step });
            const expected = materialisedSurgery(rows, (i) => shuffledOthers(seed, name, step, i, t), targets, beta);
            const scale = combine(rows.map((row) => row.map(Math.abs)), r.weights.map(Math.abs));
            r.direction.forEach((v, k) => assert.ok(Math.abs(v - expected[k]!) <= 1e-6 * scale[k]! + 1e-44, `step ${step} d[${k}]: ${v} vs ${expected[k]}`));
          }
        }),
        FAST,
      );
    });
  }
});

void describe('gradvac', () => {
  void it('with beta = 0 (targets stay 0) it is pcgrad: two tasks end to end', () => {
    fc.assert(
      fc.property(scenario(2, 2, ['random', 'collinear', 'opposite', 'tiny', 'huge', 'mixed-scale']), ({ steps }) => {
        const vac = make(gradvac, { beta: 0 });
        for (const [step, { rows }] of steps.entries()) {
          const a = vac.aggregate({ grads: rows, losses: [], step });
          const b = make(pcgrad).aggregate({ grads: rows, losses: [], step });
          const scale = combine(rows.map((r) => r.map(Math.abs)), b.weights.map(Math.abs));
          a.direction.forEach((v, j) => assert.ok(Math.abs(v - b.direction[j]!) <= 1e-6 * scale[j]! + 1e-44, `d[${j}]: ${v} vs ${b.direction[j]}`));
        }
      }),
      FAST,
    );
  });

  void it('with zero targets and the same order, the adjusted rows are the pcgrad projections', () => {
    fc.assert(
      fc.property(scenario(2, 8, ['random', 'collinear', 'duplicate', 'tiny', 'zero-rows']), fc.nat(), ({ steps }, seed) => {
        const rows = steps[0]!.rows;
        const t = rows.length;
        const h = gramian(rows);
        const order = (i: number) => shuffledOthers(seed, 'same', 0, i, t);
        const projected = projectConflicting(h, order);
        const raised = raiseCosines(h, new Array<number>(t * t).fill(0), 0, order, new Set());
        for (let i = 0; i < t; i++) {
          const a = combine(rows, projected[i]!);
          const b = combine(rows, raised[i]!);
          const magnitude = projected[i]!.reduce((s, ck, k) => s + Math.abs(ck) * norm(rows[k]!), 0);
          a.forEach((v, j) => assert.ok(Math.abs(v - b[j]!) <= 1e-6 * magnitude + 1e-44, `row ${i}[${j}]`));
        }
      }),
      FAST,
    );
  });

  void it('raises a pair below its target to exactly the target cosine', () => {
    const rows = f32([[1, 0.1, 0], [0, 1, 0.2]]);
    const h = gramian(rows);
    const targets = [0, 0.5, 0.5, 0];
    const c = raiseCosines(h, targets, 0, (i) => [1 - i], new Set());
    for (const [i, j] of [[0, 1], [1, 0]] as const) {
      const gi = combine(rows, c[i]!);
      assertClose(dot(gi, rows[j]!) / norm(gi) / norm(rows[j]!), 0.5, 1e-9, `cos(g${i}', g${j})`);
    }
  });

  void it('targets follow the observed cosines by EMA, starting from 0', () => {
    const rows = f32([[1, 0.5], [0.2, 1]]);
    const cos = dot(rows[0]!, rows[1]!) / norm(rows[0]!) / norm(rows[1]!);
    const agg = make(gradvac, { beta: 0.5 });
    agg.aggregate({ grads: rows, losses: [], step: 0 });
    const { targets } = agg.state() as { targets: number[] };
    assertClose(targets[1]!, 0.5 * cos, 1e-12, 'φ̂₀₁');
    assertClose(targets[2]!, 0.5 * cos, 1e-12, 'φ̂₁₀');
    agg.aggregate({ grads: rows, losses: [], step: 1 });
    assertClose((agg.state() as { targets: number[] }).targets[1]!, 0.75 * cos, 1e-12, 'φ̂₀₁ after two steps');
  });
});

// ---- loss weighting -----------------------------------------------------------------------

void describe('rlw', () => {
  const rows = f32([[1, 2], [3, -1], [0, 5], [2, 2]]);
  void it('same seed and step → same weights; another step or seed → others; Σλ = T', () => {
    const at = (step: number, seed = 7) => make(rlw, {}, seed).aggregate({ grads: rows, losses: [], step }).lossWeights!;
    assert.deepEqual(at(5), at(5));
    assert.notDeepEqual(at(5), at(6));
    assert.notDeepEqual(at(5, 7), at(5, 8));
    assert.deepEqual(make(rlw, { seed: 8 }, 7).aggregate({ grads: rows, losses: [], step: 5 }).lossWeights, at(5, 8));
    for (let step = 0; step < 50; step++) assertClose(at(step).reduce((s, l) => s + l, 0), 4, 1e-12, 'Σλ');
  });
});

void describe('uw', () => {
  void it('log σ² moves against the analytic gradient ½(1 − L e^(−s)): the smaller loss gains weight', () => {
    const agg = make(uw);
    const rows = f32([[1, 0], [0, 1]]);
    const losses = [0.1, 10];
    const first = agg.aggregate({ grads: rows, losses, step: 0 }).lossWeights!;
    assert.deepEqual(first, [0.5 * Math.exp(0.5), 0.5 * Math.exp(0.5)]);
    const s = decodeFloat32((agg.state() as { logVariance: string }).logVariance);
    losses.forEach((loss, i) => {
      const analytic = 0.5 * (1 - loss * Math.exp(0.5));
      assert.equal(Math.sign(s[i]! - -0.5), -Math.sign(analytic), `task ${i}`);
    });
    const second = agg.aggregate({ grads: rows, losses, step: 1 }).lossWeights!;
    assert.ok(second[0]! > first[0]! && second[1]! < first[1]!, `${first.join()} → ${second.join()}`);
  });

  void it('σ² converges towards the loss (the optimum of Σ λL + s/2)', () => {
    const agg = make(uw, { lr: 0.05 });
    const rows = f32([[1, 0], [0, 1]]);
    for (let step = 0; step < 400; step++) agg.aggregate({ grads: rows, losses: [0.2, 3], step });
    const s = decodeFloat32((agg.state() as { logVariance: string }).logVariance);
    assert.ok(Math.abs(s[0]! - Math.log(0.2)) < 0.1 && Math.abs(s[1]! - Math.log(3)) < 0.1, `s = ${Array.from(s).join()}`);
  });
});

void describe('gradnorm', () => {
  void it('a task whose weighted gradient norm is above target loses weight; Σλ stays T', () => {
    const agg = make(gradnorm);
    const rows = f32([[10, 0, 0], [0, 1, 0], [0, 0, 1]]);
    let previous = [1, 1, 1];
    for (let step = 0; step < 5; step++) {
      const { lossWeights } = agg.aggregate({ grads: rows, losses: [1, 1, 1], step });
      assertClose(lossWeights!.reduce((s, l) => s + l, 0), 3, 1e-12, 'Σλ');
      if (step > 0) assert.ok(lossWeights![0]! < previous[0]! && lossWeights![1]! > previous[1]!, `${previous.join()} → ${lossWeights!.join()}`);
      previous = lossWeights!;
    }
  });

  void it('a task that trains slower (larger L/L(0)) is pulled to a larger gradient share', () => {
    const agg = make(gradnorm, { lr: 0.01 });
    const rows = f32([[1, 0], [0, 1]]);
    agg.aggregate({ grads: rows, losses: [1, 1], step: 0 });
    let last: number[] = [];
    for (let step = 1; step < 30; step++) last = agg.aggregate({ grads: rows, losses: [0.2, 0.9], step }).lossWeights!;
    assert.ok(last[1]! > 1.05 && last[0]! < 0.95, last.join());
  });
});

void describe('dwa', () => {
  void it('λ = 1 during the first two windows, then T·softmax(r/temp), fixed within a window', () => {
    const agg = make(dwa, { window: 3, temp: 2 });
    const rows = f32([[1, 0], [0, 1]]);
    // Window means: task 0 4 → 2 (fell fast), task 1 4 → 3.9 (fell little).
    const losses = [[4, 4], [4, 4], [4, 4], [2, 3.9], [2, 3.9], [2, 3.9], [1, 1], [1, 1], [1, 1]];
    const seen = losses.map((l, step) => agg.aggregate({ grads: rows, losses: l, step }).lossWeights!);
    for (const w of seen.slice(0, 6)) assert.deepEqual(w, [1, 1]);
    const e0 = Math.exp(0.5 / 2);
    const e1 = Math.exp(0.975 / 2);
    for (const w of seen.slice(6)) {
      assertClose(w[0]!, (2 * e0) / (e0 + e1), 1e-12, 'λ₀');
      assertClose(w[1]!, (2 * e1) / (e0 + e1), 1e-12, 'λ₁');
      assert.ok(w[1]! > w[0]!);
    }
  });

  void it('a window mean of 0 gives rate 1 and a note, not a division by zero', () => {
    const agg = make(dwa, { window: 1 });
    const rows = f32([[1, 0], [0, 1]]);
    agg.aggregate({ grads: rows, losses: [0, 1], step: 0 });
    agg.aggregate({ grads: rows, losses: [0, 2], step: 1 });
    const r = agg.aggregate({ grads: rows, losses: [0, 2], step: 2 });
    assert.ok(r.lossWeights!.every(Number.isFinite));
    assert.match(r.notes?.join() ?? '', /undefined/);
  });
});

void describe('famo', () => {
  void it('the logit of a task whose log-loss stalls grows; λ stays finite and sums to T', () => {
    const agg = make(famo);
    const rows = f32([[1, 0], [0, 1]]);
    let ratio = 1;
    for (let step = 0; step < 20; step++) {
      const losses = [0.9 ** step, 1];
      const { lossWeights } = agg.aggregate({ grads: rows, losses, step });
      assertClose(lossWeights!.reduce((s, l) => s + l, 0), 2, 1e-12, 'Σλ');
      // λᵢ ∝ zᵢ / Dᵢ, so z₁/z₀ = (λ₁ D₁) / (λ₀ D₀).
      const zRatio = (lossWeights![1]! * (losses[1]! + 1e-8)) / (lossWeights![0]! * (losses[0]! + 1e-8));
      if (step > 1) assert.ok(zRatio > ratio, `step ${step}: z₁/z₀ ${ratio} → ${zRatio}`);
      ratio = zRatio;
    }
    assert.ok(ratio > 1.2);
  });
});

void describe('db-mtl', () => {
  void it('rescales every smoothed log-loss gradient to the largest norm (orthogonal rows show it)', () => {
    const agg = make(dbMtl);
    for (let step = 0; step < 4; step++) {
      // Disjoint supports: d restricted to task i's entries is (1/T)·(rescaled row i).
      const rows = f32([[3 + step, 4, 0, 0, 0], [0, 0, 0.01, 0, 0], [0, 0, 0, 200, -50 * step]]);
      const d = agg.aggregate({ grads: rows, losses: [0.5, 2e-3, 40], step }).direction;
      const parts = [norm(d.slice(0, 2)), norm(d.slice(2, 3)), norm(d.slice(3))];
      for (const part of parts) assertClose(part, parts[0]!, 1e-6, `equal norms ${parts.join()}`);
    }
  });

  void it('follows LibMTL: EMA of g/(L+1e-8) from a zero buffer, rescaled to the max norm, averaged; heads get 1/(L+1e-8)', () => {
    const nonNegativeLosses = ({ steps }: Scenario) => steps.every((s) => s.losses.every((l) => l >= 0));
    fc.assert(
      fc.property(scenario(2, 6, ['random', 'tiny', 'huge', 'collinear']).filter(nonNegativeLosses), ({ steps }) => {
        const beta = 0.9;
        const agg = make(dbMtl, { beta });
        const t = steps[0]!.rows.length;
        const p = steps[0]!.rows[0]!.length;
        const buffer = Array.from({ length: t }, () => new Float64Array(p));
        for (const [step, { rows, losses }] of steps.entries()) {
          const r = agg.aggregate({ grads: rows, losses, step });
          buffer.forEach((b, i) => b.forEach((v, k) => (b[k] = beta * v + ((1 - beta) * rows[i]![k]!) / (losses[i]! + 1e-8))));
          r.lossWeights!.forEach((l, i) => assertClose(l, 1 / (losses[i]! + 1e-8), 1e-15, 'λ'));
          if (rows.every((row) => row.every((v) => v === 0))) {
            assert.ok(r.direction.every((v) => v === 0), 'no gradient this step: no move');
            continue;
          }
          const norms = buffer.map(norm);
          const top = Math.max(...norms);
          const expected = new Float64Array(p);
          const scale = new Float64Array(p);
          buffer.forEach((b, i) => {
            if (norms[i]! > 0) b.forEach((v, k) => ((expected[k]! += (top / norms[i]! / t) * v), (scale[k]! += Math.abs((top / norms[i]! / t) * v))));
          });
          // The buffer is float32: a few roundings per step on top of the final sum.
          r.direction.forEach((v, k) => assert.ok(Math.abs(v - expected[k]!) <= 1e-5 * (scale[k]! + 1e-3 * top) + 1e-44, `d[${k}] ${v} vs ${expected[k]}`));
        }
      }),
      FAST,
    );
  });
});
