// Result payloads reused across steps (PayloadPool, ResultIntake.recycleStep): a buffer is handed
// out again only after it was released, never twice, and a run whose released buffers are
// poisoned with NaN (any value read through a released buffer would show, as a non-finite
// gradient or other weights) ends bitwise as a run that never reuses one.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { BlockGramian } from '../../coordinator/aggregation/block-gramian.js';
import { PayloadPool } from '../../coordinator/payload-pool.js';
import { fuzzJob, InMemoryHarness, type FakeResult } from '../helpers/in-memory-run.js';
import { sameFloatBits } from '../helpers/numeric.js';

// The originals, put back after each test and called with .call(this) by the patched ones.
// eslint-disable-next-line @typescript-eslint/unbound-method
const { acquire, release } = PayloadPool.prototype;

afterEach(() => {
  PayloadPool.prototype.acquire = acquire;
  PayloadPool.prototype.release = release;
});

void describe('PayloadPool', () => {
  void it('hands a buffer out again only once it is released, by length, and never twice', () => {
    const pool = new PayloadPool();
    const a = pool.acquire(8);
    const b = pool.acquire(8);
    assert.notEqual(a, b, 'two buffers held at once are two buffers');
    pool.release(a);
    pool.release(a);
    assert.equal(pool.idleCount, 1, 'a second release of the same buffer is ignored');
    assert.notEqual(pool.acquire(4), a, 'another length never gets it');
    assert.equal(pool.acquire(8), a);
    assert.notEqual(pool.acquire(8), a, 'handed out once, not again until released again');
    assert.equal(pool.reused, 1);
    // A view into a larger buffer is not a whole payload: taking it would hand out the rest too.
    pool.release(new Float32Array(16).subarray(0, 8));
    assert.equal(pool.idleCount, 0);
  });
});

void describe('BlockGramian.finish', () => {
  void it('hands out no payload of a task with several shards and ignores copies that come after', () => {
    const shared = 5000;
    const units = [{ task: 0, samples: 3 }, { task: 0, samples: 5 }, { task: 1, samples: 4 }];
    const data = units.map((_, u) => Float32Array.from({ length: shared + 3 }, (_, k) => Math.sin(k + u)));
    const acc = new BlockGramian(units, 2, shared);
    units.forEach((_, u) => acc.accept(data[u]!, u, data[u]!));
    const shards = [[0, 1], [2]].map((list) => list.map((u) => ({ sampleCount: units[u]!.samples, loss: 1, grads: data[u]! })));
    const got = acc.finish(shards);
    assert.ok(!data.some((d) => d === got.perTask[0]!.grads), 'the two-shard task has its own row');
    const row = got.perTask[0]!.grads.slice();
    // A late copy of unit 0 with other values, and a drop of the accepted one: nothing may change.
    const late = {};
    acc.offer(late, 0, new Float32Array(shared + 3).fill(7), 0, shared + 3);
    acc.drop(data[0]!);
    acc.accept(late, 0, new Float32Array(shared + 3).fill(7));
    assert.ok(sameFloatBits(got.perTask[0]!.grads, row));
    assert.equal(acc.blocksDone, acc.blockCount);
  });
});

void describe('payload reuse across steps', () => {
  // Every unit's result is sent twice: the second copy is late, read whole and dropped, and its buffer reused at once.
  const twice = (_unit: Unit__Output, honest: FakeResult, worker: { sendResult(r: FakeResult): void }) => {
    worker.sendResult(honest);
    return true;
  };

  void it('ends bitwise as without reuse, with every released buffer poisoned with NaN first', async () => {
    const harness = new InMemoryHarness(fuzzJob({ steps: 5, shardsPerTask: 2, evalEvery: 2 }));
    PayloadPool.prototype.release = function () {};
    const fresh = await harness.run({ intercept: twice });
    assert.equal(fresh.status, 'succeeded', fresh.error?.message);

    let reused = 0;
    PayloadPool.prototype.release = function (buffer: Float32Array) {
      buffer.fill(Number.NaN);
      release.call(this, buffer);
    };
    PayloadPool.prototype.acquire = function (length: number) {
      const before = this.reused;
      const buffer = acquire.call(this, length);
      reused += this.reused - before;
      return buffer;
    };
    const poisoned = await harness.run({ intercept: twice });
    assert.equal(poisoned.status, 'succeeded', poisoned.error?.message);
    assert.ok(reused >= 4 * 4, `buffers were reused (${reused})`);
    assert.ok(poisoned.counters.discardedResults > 0, 'late copies were read and dropped');
    assert.ok(sameFloatBits(poisoned.params, fresh.params), 'the same weights');
    poisoned.paramsAfter.forEach((p, step) => assert.ok(sameFloatBits(p, fresh.paramsAfter[step]!), `the same weights after step ${step}`));
  });
});
