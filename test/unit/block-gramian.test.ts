// The Gramian accumulated block by block as results stream in (BlockGramian) against the
// reference, gramian(combineShards(…)): bitwise equal for any number of tasks, shards, parameters,
// bucket cuts and arrival orders, with backup copies that feed blocks and then lose, copies
// that are rejected halfway, and copies cut off and sent again.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BlockGramian } from '../../coordinator/aggregation/block-gramian.js';
import { gramian, GRAMIAN_BLOCK } from '../../coordinator/aggregation/gramian.js';
import { combineShards, type ShardResult } from '../../coordinator/step-math.js';
import { Rng } from '../../common/random.js';
import { sameFloatBits } from '../helpers/numeric.js';

/** Values with the awkward cases: zeros of both signs, tiny and large magnitudes. */
function values(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const r = rng.next();
    if (r < 0.05) return -0;
    if (r < 0.1) return 0;
    if (r < 0.15) return rng.normal() * 1e-30;
    if (r < 0.2) return rng.normal() * 1e20;
    return rng.normal();
  });
}

/** Random cuts of [0, n) into pieces: the buckets, in the order the backward makes them (last first). */
function buckets(rng: Rng, n: number): Array<[number, number]> {
  const cuts = new Set([0, n]);
  const k = Math.floor(rng.next() * 6);
  for (let i = 0; i < k; i++) cuts.add(Math.floor(rng.next() * n));
  const sorted = [...cuts].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 1 < sorted.length; i++) if (sorted[i]! < sorted[i + 1]!) out.push([sorted[i]!, sorted[i + 1]!]);
  return out.reverse();
}

function sameBits(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): boolean {
  return a.length === b.length && a.every((row, i) => row.length === b[i]!.length && row.every((v, j) => Object.is(v, b[i]![j])));
}


interface Scenario {
  tasks: number;
  shared: number;
  seed: number;
}

function play({ tasks, shared, seed }: Scenario): void {
  const rng = new Rng(seed);
  const shardCounts = Array.from({ length: tasks }, () => 1 + Math.floor(rng.next() * 3));
  const heads = Array.from({ length: tasks }, () => Math.floor(rng.next() * 50));
  const units = shardCounts.flatMap((n, task) => Array.from({ length: n }, () => ({ task, samples: 1 + Math.floor(rng.next() * 40) })));
  const accepted: ShardResult[] = units.map((u) => ({ sampleCount: u.samples, loss: rng.normal(), grads: values(rng, shared + heads[u.task]!) }));
  // Every copy's pieces, interleaved in a random order: the accepted copy, and sometimes a backup
  // (other numbers: a hostile or stale copy) that is rejected halfway, or left to lose the race.
  type Event = { kind: 'offer'; copy: object; unit: number; data: Float32Array; from: number; to: number } | { kind: 'drop'; copy: object };
  const streams: Event[][] = [];
  units.forEach((_, u) => {
    const data = accepted[u]!.grads;
    const honest = {};
    const honestStream: Event[] = buckets(rng, data.length).map(([from, to]) => ({ kind: 'offer', copy: honest, unit: u, data, from, to }));
    if (rng.next() < 0.3) {
      // The same copy cut off halfway (its transfer dropped), then sent again whole: a new buffer under the same key.
      const cut = values(rng, data.length);
      const first = buckets(rng, data.length);
      honestStream.unshift(...first.slice(0, Math.floor(rng.next() * (first.length + 1))).map(([from, to]): Event => ({ kind: 'offer', copy: honest, unit: u, data: cut, from, to })));
    }
    streams.push(honestStream);
    const r = rng.next();
    if (r < 0.4) {
      const other = {};
      const wrong = values(rng, data.length);
      const pieces: Event[] = buckets(rng, data.length).map(([from, to]) => ({ kind: 'offer', copy: other, unit: u, data: wrong, from, to }));
      // Rejected: nothing of it comes after (the session drops the rest of its transfer).
      if (r < 0.2) {
        const at = Math.floor(rng.next() * (pieces.length + 1));
        pieces.splice(at, pieces.length - at, { kind: 'drop', copy: other });
      }
      streams.push(pieces);
    }
  });
  const acc = new BlockGramian(units, tasks, shared);
  const copyOf = new Map<number, object>();
  while (streams.some((s) => s.length > 0)) {
    const open = streams.filter((s) => s.length > 0);
    const e = open[Math.floor(rng.next() * open.length)]!.shift()!;
    if (e.kind === 'drop') acc.drop(e.copy);
    else {
      acc.offer(e.copy, e.unit, e.data, e.from, e.to);
      if (e.data === accepted[e.unit]!.grads) copyOf.set(e.unit, e.copy);
    }
  }
  // The honest copies win, in a random order.
  const order = units.map((_, u) => u).sort(() => rng.next() - 0.5);
  for (const u of order) acc.accept(copyOf.get(u)!, u, accepted[u]!.grads);
  const byTask = shardCounts.map((_, t) => units.flatMap((unit, u) => (unit.task === t ? [accepted[u]!] : [])));
  const got = acc.finish(byTask);
  const want = byTask.map((list) => combineShards(list));
  for (let t = 0; t < tasks; t++) {
    assert.ok(sameFloatBits(got.perTask[t]!.grads, want[t]!.grads), `task ${t}: combined gradient differs`);
    assert.ok(Object.is(got.perTask[t]!.loss, want[t]!.loss), `task ${t}: loss differs`);
    assert.equal(got.perTask[t]!.samples, want[t]!.samples);
  }
  const h = gramian(want.map((g) => g.grads.subarray(0, shared)));
  assert.ok(sameBits(got.gramian, h), `H differs: ${JSON.stringify(got.gramian)} vs ${JSON.stringify(h)}`);
}

void describe('BlockGramian', () => {
  void it('is bitwise gramian(combineShards(…)) for any tasks, shards, sizes, buckets, arrival orders and losing or rejected copies', () => {
    const shared = fc.oneof(fc.integer({ min: 0, max: 3 * GRAMIAN_BLOCK + 5 }), fc.constantFrom(1, GRAMIAN_BLOCK - 1, GRAMIAN_BLOCK, GRAMIAN_BLOCK + 1, 2 * GRAMIAN_BLOCK));
    fc.assert(
      fc.property(fc.record({ tasks: fc.integer({ min: 1, max: 6 }), shared, seed: fc.nat() }), (s) => play(s)),
      { numRuns: 150 },
    );
  });

  void it('has every block in before the last unit is accepted when the results stream in order', () => {
    const rng = new Rng(3);
    const shared = 3 * GRAMIAN_BLOCK + 17;
    const units = [{ task: 0, samples: 4 }, { task: 0, samples: 5 }, { task: 1, samples: 9 }];
    const data = units.map(() => values(rng, shared + 10));
    const acc = new BlockGramian(units, 2, shared);
    units.forEach((_, u) => acc.offer(data[u]!, u, data[u]!, 0, data[u]!.length));
    assert.equal(acc.blocksDone, acc.blockCount);
    assert.equal(acc.computedBlocks, 4);
    // Accepting the copies that fed the blocks recomputes nothing.
    units.forEach((_, u) => acc.accept(data[u]!, u, data[u]!));
    acc.finish([[{ sampleCount: 4, loss: 0, grads: data[0]! }, { sampleCount: 5, loss: 0, grads: data[1]! }], [{ sampleCount: 9, loss: 0, grads: data[2]! }]]);
    assert.equal(acc.computedBlocks, 4);
  });

  void it('computes again the blocks a rejected copy fed', () => {
    const rng = new Rng(4);
    const shared = 2 * GRAMIAN_BLOCK;
    const units = [{ task: 0, samples: 1 }, { task: 1, samples: 1 }];
    const good = units.map(() => values(rng, shared));
    const bad = values(rng, shared);
    const acc = new BlockGramian(units, 2, shared);
    const [badCopy, good0, good1] = [{}, {}, {}];
    acc.offer(badCopy, 0, bad, 0, shared);
    acc.offer(good1, 1, good[1]!, 0, shared);
    assert.equal(acc.blocksDone, 2);
    acc.drop(badCopy);
    assert.equal(acc.blocksDone, 0, 'nothing of the rejected copy is left');
    acc.offer(good0, 0, good[0]!, 0, GRAMIAN_BLOCK);
    assert.equal(acc.blocksDone, 1);
    acc.accept(good0, 0, good[0]!);
    acc.accept(good1, 1, good[1]!);
    const got = acc.finish([[{ sampleCount: 1, loss: 0, grads: good[0]! }], [{ sampleCount: 1, loss: 0, grads: good[1]! }]]);
    assert.ok(sameBits(got.gramian, gramian(good)));
  });
});
