import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { placeUnits, type Placement, type UnitToPlace, type WorkerCapacity } from '../../coordinator/scheduler.js';

function units(n: number, keyOf: (i: number) => string = (i) => `train/t${i % 3}/${i}`): UnitToPlace[] {
  return Array.from({ length: n }, (_, i) => ({ id: `u${i}`, key: keyOf(i) }));
}

function workers(ms: ReadonlyArray<number | undefined>): WorkerCapacity[] {
  return ms.map((unitMs, i) => (unitMs === undefined ? { id: `w${i}` } : { id: `w${i}`, unitMs }));
}

function counts(p: Placement): number[] {
  return [...p.values()].map((ids) => ids.length);
}

function workerOf(p: Placement): Map<string, string> {
  const out = new Map<string, string>();
  for (const [w, ids] of p) for (const id of ids) out.set(id, w);
  return out;
}

const unitList = fc.integer({ min: 0, max: 60 }).chain((n) =>
  fc.array(fc.integer({ min: 0, max: 7 }), { minLength: n, maxLength: n }).map((keys) => keys.map((k, i) => ({ id: `u${i}`, key: `k${k}` }))),
);
const speeds = fc.array(fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }), { minLength: 1, maxLength: 7 });
/** Previous placements by key, some pointing at workers that have since gone. */
const previousFor = (workerCount: number) =>
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: workerCount + 1 })), { maxLength: 8 })
    .map((pairs) => new Map(pairs.map(([k, w]) => [`k${k}`, w >= workerCount ? `gone${w}` : `w${w}`])));

void describe('placeUnits', () => {
  void it('places every unit exactly once, and only on the given workers', () => {
    fc.assert(
      fc.property(
        unitList,
        speeds.chain((ms) => fc.tuple(fc.constant(ms), previousFor(ms.length))),
        (us, [ms, previous]) => {
          const ws = workers(ms);
          const p = placeUnits(us, ws, previous);
          assert.deepEqual([...p.keys()].sort(), ws.map((w) => w.id).sort(), 'one entry per worker, no others');
          const placed = [...p.values()].flat().sort();
          assert.deepEqual(
            placed,
            us.map((u) => u.id).sort(),
          );
        },
      ),
    );
  });

  void it('with equal or unknown speeds, counts differ by at most one (whatever the affinity)', () => {
    fc.assert(
      fc.property(
        unitList,
        fc.integer({ min: 1, max: 7 }),
        fc.option(fc.integer({ min: 1, max: 500 }), { nil: undefined }),
        fc.integer({ min: 1, max: 7 }).chain(previousFor),
        (us, n, ms, previous) => {
          const c = counts(placeUnits(us, workers(Array.from({ length: n }, () => ms)), previous));
          assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c.join(',')}`);
        },
      ),
    );
  });

  void it('gives a worker twice as fast about twice the units', () => {
    const p = placeUnits(units(30), workers([10, 20]));
    const [fast, slow] = counts(p) as [number, number];
    assert.ok(fast >= 19 && fast <= 21, `fast worker got ${fast} of 30`);
    assert.equal(fast + slow, 30);
  });

  void it('keeps the makespan within one unit time of the optimum lower bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 80 }), fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 6 }), (n, ms) => {
        const ws = workers(ms);
        const p = placeUnits(units(n), ws);
        const makespan = Math.max(...ws.map((w) => p.get(w.id)!.length * w.unitMs!));
        // No schedule finishes n units before n / Σ(1/cᵢ), the fluid lower bound.
        const lowerBound = n / ms.reduce((s, c) => s + 1 / c, 0);
        const slowest = Math.max(...ms);
        assert.ok(makespan <= lowerBound + slowest + 1e-9, `makespan ${makespan}, lower bound ${lowerBound}, slowest unit ${slowest}`);
      }),
    );
  });

  void it('treats a worker with no measurement like the median measured one', () => {
    const c = counts(placeUnits(units(20), workers([10, undefined, 10])));
    assert.ok(Math.max(...c) - Math.min(...c) <= 1, `counts ${c.join(',')}`);
  });

  void it('returns a unit to the worker that had its key when balance allows', () => {
    const ws = workers([undefined, undefined, undefined]);
    const one = placeUnits([{ id: 'a', key: 'train/left/0' }], ws, new Map([['train/left/0', 'w2']]));
    assert.deepEqual(one.get('w2'), ['a']);
    const p = placeUnits(units(6, (i) => `k${i}`), ws, new Map([['k0', 'w1'], ['k1', 'w2'], ['k2', 'w0']]));
    const where = workerOf(p);
    assert.deepEqual([where.get('u0'), where.get('u1'), where.get('u2')], ['w1', 'w2', 'w0']);
  });

  void it('reproduces a balanced previous placement exactly, whatever the worker order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 6 }).chain((n) => fc.tuple(fc.shuffledSubarray(workers(Array.from({ length: n }, () => 5)), { minLength: n, maxLength: n }), fc.shuffledSubarray(workers(Array.from({ length: n }, () => 5)), { minLength: n, maxLength: n }))),
        (n, [before, now]) => {
          const us = units(n, (i) => `key${i}`);
          const first = workerOf(placeUnits(us, before));
          const previous = new Map(us.map((u) => [u.key, first.get(u.id)!]));
          const second = workerOf(placeUnits(us, now, previous));
          for (const u of us) assert.equal(second.get(u.id), first.get(u.id), `${u.id} stays on its worker`);
        },
      ),
    );
  });

  void it('does not pile units onto one worker because they all used to be there', () => {
    const ws = workers([undefined, undefined, undefined]);
    const previous = new Map(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'w0'] as [string, string]));
    const c = counts(placeUnits(units(9, (i) => `k${i}`), ws, previous));
    assert.deepEqual(c, [3, 3, 3]);
  });

  void it('throws RangeError for units without workers, and returns nothing for nothing', () => {
    assert.throws(() => placeUnits(units(1), []), RangeError);
    assert.equal(placeUnits([], []).size, 0);
    assert.deepEqual([...placeUnits([], workers([1, 2]))], [
      ['w0', []],
      ['w1', []],
    ]);
  });

  void it('is deterministic', () => {
    fc.assert(
      fc.property(
        unitList,
        speeds.chain((ms) => fc.tuple(fc.constant(ms), previousFor(ms.length))),
        (us, [ms, previous]) => {
          assert.deepEqual([...placeUnits(us, workers(ms), previous)], [...placeUnits(us, workers(ms), previous)]);
        },
      ),
    );
  });
});
