import fc from 'fast-check';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeCheckpoint, encodeCheckpoint, zeroCounters, type CheckpointData } from '../../coordinator/checkpoints.js';
import { gramian } from '../../coordinator/step-math.js';
import { AffinityTracker, affinityRecord, firstOrderAffinity } from '../../coordinator/task-affinity.js';
import { bestGrouping, EXHAUSTIVE_MAX_TASKS, partitionScore } from '../../coordinator/task-grouping.js';
import { Rng } from '../../common/random.js';

// Task j's loss on a shared parameter vector θ: L_j(θ) = ½‖θ − c_j‖² + 1, gradient θ − c_j.
const loss = (theta: Float64Array, c: Float64Array): number => 0.5 * theta.reduce((s, v, k) => s + (v - c[k]!) ** 2, 0) + 1;
const grad = (theta: Float64Array, c: Float64Array): Float32Array => Float32Array.from(theta, (v, k) => v - c[k]!);

function normalVector(rng: Rng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal());
}

void describe('first-order task affinity', () => {
  void it('matches the exact lookahead 1 − L_j(θ − η g_i)/L_j(θ) to first order in η', () => {
    const rng = Rng.fromKey(3, 'affinity');
    const theta = normalVector(rng, 50);
    const centres = [0, 1, 2].map(() => normalVector(rng, 50));
    const g = centres.map((c) => grad(theta, c));
    const losses = centres.map((c) => loss(theta, c));
    for (const eta of [1e-2, 1e-3]) {
      const z = firstOrderAffinity(gramian(g), losses, eta);
      for (let i = 0; i < 3; i++) {
        const stepped = theta.map((v, k) => v - eta * g[i]![k]!);
        for (let j = 0; j < 3; j++) {
          const exact = 1 - loss(stepped, centres[j]!) / losses[j]!;
          // L_j's Hessian is the identity here, so the remainder is ½η²‖g_i‖²/L_j (see the next test for curvature).
          const remainder = (0.5 * eta * eta * gramian([g[i]!])[0]![0]!) / losses[j]!;
          assert.ok(Math.abs(z[i]![j]! - exact - remainder) < 1e-6 * Math.abs(exact) + 1e-9, `eta ${eta}, ${i}→${j}: first-order ${z[i]![j]}, exact ${exact}`);
        }
      }
    }
  });

  void it('differs from the exact lookahead by −½η²·g_iᵀ∇²L_j g_i / L_j: the curvature of L_j along g_i', () => {
    // L_j(θ) = ½(θ − c_j)ᵀ A_j (θ − c_j) + 1 with a diagonal A_j ≠ I: the expansion to second
    // order is exact, and ½η²‖g_i‖²/L_j (true only for A_j = I) would be off.
    const rng = Rng.fromKey(4, 'affinity-curvature');
    const n = 40;
    const theta = normalVector(rng, n);
    const centres = [0, 1, 2].map(() => normalVector(rng, n));
    const curvature = [0, 1, 2].map(() => Float64Array.from({ length: n }, () => 0.1 + 5 * Math.abs(rng.normal())));
    const lossA = (t: Float64Array, j: number) => 0.5 * t.reduce((s, v, k) => s + curvature[j]![k]! * (v - centres[j]![k]!) ** 2, 0) + 1;
    const g = centres.map((c, j) => Float32Array.from(theta, (v, k) => curvature[j]![k]! * (v - c[k]!)));
    const losses = [0, 1, 2].map((j) => lossA(theta, j));
    const eta = 1e-2;
    const z = firstOrderAffinity(gramian(g), losses, eta);
    let identityWouldMiss = 0;
    for (let i = 0; i < 3; i++) {
      const stepped = theta.map((v, k) => v - eta * g[i]![k]!);
      for (let j = 0; j < 3; j++) {
        const exact = 1 - lossA(stepped, j) / losses[j]!;
        const curvatureTerm = (0.5 * eta * eta * g[i]!.reduce((s, v, k) => s + v * curvature[j]![k]! * v, 0)) / losses[j]!;
        assert.ok(Math.abs(exact - z[i]![j]! + curvatureTerm) < 1e-6 * Math.abs(exact) + 1e-9, `${i}→${j}: exact ${exact}, first-order ${z[i]![j]}, −curvature term ${-curvatureTerm}`);
        const identityTerm = (0.5 * eta * eta * gramian([g[i]!])[0]![0]!) / losses[j]!;
        identityWouldMiss = Math.max(identityWouldMiss, Math.abs(exact - z[i]![j]! + identityTerm) / Math.abs(exact));
      }
    }
    assert.ok(identityWouldMiss > 1e-3, `the identity-Hessian remainder should not fit here (${identityWouldMiss})`);
  });

  void it('is positive between aligned tasks, negative between opposed ones, and 0 where a loss is 0', () => {
    const g = [Float32Array.of(1, 0), Float32Array.of(1, 0.1), Float32Array.of(-1, 0)];
    const z = firstOrderAffinity(gramian(g), [2, 1, 0], 0.1);
    assert.ok(z[0]![1]! > 0 && z[1]![0]! > 0);
    assert.ok(z[0]![2] === 0 && z[1]![2] === 0, 'L_2 = 0: no relative change is defined');
    const z2 = firstOrderAffinity(gramian(g), [2, 1, 4], 0.1);
    assert.ok(z2[0]![2]! < 0 && z2[2]![0]! < 0);
  });

  void it('averages over steps, skips non-finite steps, and restores its state exactly', () => {
    const t = new AffinityTracker(2, 0.5);
    t.observe([[4, 2], [2, 1]], [1, 2]);
    t.observe([[0, -2], [-2, 4]], [2, 1]);
    const nan = t.observe([[Infinity, 0], [0, 1]], [1, 1]);
    assert.ok(!Number.isFinite(nan[0]![0]!));
    assert.equal(t.observedSteps, 2);
    assert.deepEqual(t.mean(), [
      [(0.5 * 4 + 0) / 2, (0.5 * 2 / 2 + (0.5 * -2) / 1) / 2],
      [(0.5 * 2 + (0.5 * -2) / 2) / 2, (0.5 * 1 / 2 + 0.5 * 4) / 2],
    ]);
    const copy = new AffinityTracker(2, 0.5);
    copy.restore(JSON.parse(JSON.stringify(t.state())) as ReturnType<AffinityTracker['state']>);
    assert.deepEqual(copy.mean(), t.mean());
    assert.throws(() => new AffinityTracker(3, 0.5).restore(t.state()), RangeError);
    assert.deepEqual(affinityRecord(['a', 'b'], [[1, 2], [3, 4]]), { a: { a: 1, b: 2 }, b: { a: 3, b: 4 } });
  });

  void it('travels in checkpoints (and checkpoints without it still load)', () => {
    const base: CheckpointData = {
      runId: 'r', jobHash: 'h', jobDir: '/', step: 3, version: 3, params: Float32Array.of(1, 2),
      optimizer: { name: 'sgd', t: 3, slots: {} }, aggregator: null, samples: 9, trainMs: 1,
      counters: zeroCounters(),
      createdAt: 'now',
    };
    const affinity = { steps: 3, sums: [[0.1, -0.2], [0.3, 0.4]] };
    assert.deepEqual(decodeCheckpoint(encodeCheckpoint({ ...base, affinity })).affinity, affinity);
    assert.equal(decodeCheckpoint(encodeCheckpoint(base)).affinity, undefined);
  });
});

/** A planted structure: affinity `inside` within blocks, `across` between them, plus noise. */
function planted(blocks: number[][], inside: number, across: number, noise: number, seed: number): number[][] {
  const n = blocks.flat().length;
  const block = new Map(blocks.flatMap((b, bi) => b.map((t) => [t, bi] as const)));
  const rng = Rng.fromKey(seed, 'planted');
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (block.get(i) === block.get(j) ? inside : across) + noise * rng.normal()));
}

void describe('bestGrouping', () => {
  void it('recovers planted groups, exhaustively up to 12 tasks and by local search beyond', () => {
    const small = [[0, 3, 5], [1, 2], [4, 6, 7]];
    const r = bestGrouping(planted(small, 1, -0.5, 0.05, 1), 3);
    assert.equal(r.method, 'exhaustive');
    assert.deepEqual(r.groups, [[0, 3, 5], [1, 2], [4, 6, 7]]);
    assert.equal(r.evaluated, 966, 'S(8, 3) partitions of 8 tasks into 3 groups');

    const large = [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10], [3, 7, 11]];
    assert.ok(large.flat().length > EXHAUSTIVE_MAX_TASKS);
    const l = bestGrouping(planted(large, 1, -0.5, 0.05, 2), 4);
    assert.equal(l.method, 'local-search');
    assert.deepEqual(l.groups, large);
  });

  void it('scores a partition as the sum over tasks of the mean affinity onto them from their group', () => {
    const z = [
      [9, 1, 2],
      [3, 9, 4],
      [5, 6, 9],
    ];
    assert.equal(partitionScore(z, [0, 0, 0]), (3 + 5) / 2 + (1 + 6) / 2 + (2 + 4) / 2);
    assert.equal(partitionScore(z, [0, 0, 1]), 3 + 1 + 0);
    assert.equal(partitionScore(z, [0, 1, 2]), 0);
  });

  void it('finds a partition no other one beats (exhaustive), with K groups each non-empty', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 7 }).chain((n) =>
          fc.tuple(
            fc.array(fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
            fc.integer({ min: 1, max: n }),
            fc.array(fc.nat(), { minLength: n, maxLength: n }),
          ),
        ),
        ([z, k, labels]) => {
          const r = bestGrouping(z, k);
          assert.equal(r.groups.length, k);
          assert.deepEqual(r.groups.flat().sort((a, b) => a - b), z.map((_, i) => i));
          const assignment = new Array<number>(z.length);
          r.groups.forEach((g, gi) => g.forEach((t) => (assignment[t] = gi)));
          assert.ok(Math.abs(partitionScore(z, assignment) - r.score) < 1e-12);
          // Any other labelling into k non-empty groups scores no higher.
          const other = labels.map((l) => l % k);
          if (new Set(other).size === k) assert.ok(partitionScore(z, other) <= r.score + 1e-12);
        },
      ),
      { numRuns: 300 },
    );
  });

  void it('rejects an impossible K or a non-square matrix', () => {
    assert.throws(() => bestGrouping([[1]], 2), RangeError);
    assert.throws(() => bestGrouping([[1, 2]], 1), RangeError);
    assert.throws(() => bestGrouping([[0, 1], [1, 0]], 0), RangeError);
  });
});
