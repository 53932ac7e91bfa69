// Late copies of results from an earlier phase of the same step (the exact-affinity lookahead
// runs one phase per task, all of the same step and kind) are read and dropped, never mistaken
// for the result of a live assignment: assignment ids are unique for the life of a run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { fuzzJob, InMemoryHarness, type FakeResult } from '../helpers/in-memory-run.js';

function lookaheadJob(): object {
  const job = fuzzJob({ steps: 3, evalEvery: 0 }) as { diagnostics?: object; training: Record<string, unknown> };
  delete job.training.evalEvery;
  return { ...job, diagnostics: { exactAffinityEvery: 1 } };
}

void describe('late copies from an earlier phase of the same step', () => {
  void it('are dropped quietly; no live assignment is deactivated and nothing is rejected', async () => {
    const harness = new InMemoryHarness(lookaheadJob());
    const undisturbed = await harness.run();
    assert.equal(undisturbed.status, 'succeeded', undisturbed.error?.message);
    assert.ok(undisturbed.steps.every((s) => s.affinityExact !== undefined), 'every step measures the exact affinity (one lookahead phase per task)');

    // Each worker keeps the lookahead results it sent; when a later lookahead phase of the same
    // step gives it work, the results of the earlier phase arrive first, as a straggler's would.
    const sentBy = new Map<string, FakeResult[]>();
    const replayEarlier = (name: string) => (unit: Unit__Output, honest: FakeResult, worker: { sendResult(r: FakeResult): void }) => {
      if (unit.kind !== 'UNIT_KIND_LOOKAHEAD') return true;
      const mine = sentBy.get(name) ?? [];
      for (const old of mine) if (old.header.step === unit.step && old.header.weightsVersion !== unit.weightsVersion) worker.sendResult(old);
      sentBy.set(name, [...mine.filter((r) => r.header.step === unit.step), honest]);
      return true;
    };
    const disturbed = await harness.run({ interceptFirst: replayEarlier('honest'), intercept: replayEarlier('fuzzed') });
    assert.equal(disturbed.status, 'succeeded', disturbed.error?.message);
    assert.ok(disturbed.counters.discardedResults > 0, 'the late copies arrived and were dropped');
    assert.equal(disturbed.rejectedMessages, 0, 'a late copy is not a bad message');
    assert.equal(disturbed.counters.reassignedUnits, 0, 'no live assignment was taken away');
    assert.deepEqual(
      disturbed.steps.map((s) => s.affinityExact),
      undisturbed.steps.map((s) => s.affinityExact),
    );
    assert.deepEqual([...disturbed.params], [...undisturbed.params]);
    for (const w of disturbed.workers) assert.deepEqual(w.escaped, []);
  });
});
