// A phase sends its units first and its weights right after (issue 18, item 3): a worker knows
// what it will compute when the first chunk of the weights lands, and starts while the rest
// streams. Each version goes to each worker once; lookahead versions, whose numbers come round
// again with other values, are sent every time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzJob, InMemoryHarness, type FakeWorker } from '../helpers/in-memory-run.js';

/** Checks one worker's message order; returns the versions it was sent. */
function checkOrder(worker: FakeWorker): number[] {
  const sent: number[] = [];
  worker.received.forEach((m, i) => {
    if (m.kind !== 'weights') return;
    sent.push(m.version);
    // The first weights come with the Welcome, before any unit.
    if (i === 0) return;
    const before = worker.received.slice(0, i);
    assert.ok(
      before.some((b) => b.kind === 'assign' && b.version === m.version),
      `${worker.name}: weights v${m.version} (message ${i}) came before any unit of that version: ${JSON.stringify(worker.received.slice(0, i + 1))}`,
    );
  });
  return sent;
}

void describe('weights after units', () => {
  void it('each version reaches each worker once, after the first units that need it', async () => {
    const harness = new InMemoryHarness(fuzzJob({ steps: 5, evalEvery: 2 }));
    const outcome = await harness.run();
    assert.equal(outcome.status, 'succeeded', outcome.error?.message);
    for (const w of outcome.workers) {
      const versions = checkOrder(w);
      // Versions 1..5 after each step; 5 only for the final evaluation.
      assert.deepEqual(versions, [0, 1, 2, 3, 4, 5], `${w.name} was sent each version once, in order`);
    }
  });

  void it('lookahead weights go out with each lookahead phase, and the run\'s own after them', async () => {
    const harness = new InMemoryHarness({ ...fuzzJob({ steps: 4, evalEvery: 4, shardsPerTask: 1 }), diagnostics: { exactAffinityEvery: 2 } });
    const outcome = await harness.run({ solo: true });
    assert.equal(outcome.status, 'succeeded', outcome.error?.message);
    const versions = checkOrder(outcome.workers[0]!);
    const lookahead = versions.filter((v) => v >= 0x8000_0000);
    // Steps 0 and 2 measure the exact affinity: one lookahead version per task each.
    assert.equal(lookahead.length, 4, JSON.stringify(versions));
    assert.deepEqual(versions.filter((v) => v < 0x8000_0000), [0, 1, 2, 3, 4]);
  });
});
