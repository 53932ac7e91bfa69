// The run's state (GetStatus, /metrics, the dashboard) says what the run is doing: waiting for
// workers whenever none takes units, evaluating only during an evaluation, training otherwise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzJob, InMemoryHarness } from '../helpers/in-memory-run.js';

void describe('run state', () => {
  void it('an evaluation that starts while the run waits for workers: waiting until one joins, then evaluating, then training again', async () => {
    const harness = new InMemoryHarness(fuzzJob({ steps: 4, evalEvery: 2, shardsPerTask: 1 }));
    let joinLater: (() => void) | undefined;
    const outcome = await harness.run({
      solo: true,
      // The lone worker dies right after the last result of step 2, before the evaluation that
      // follows it is dispatched; another one joins a little later.
      interceptFirst: (unit, honest, worker) => {
        if (unit.kind !== 'UNIT_KIND_TRAIN' || unit.step !== 1 || unit.task !== 'task1') return true;
        worker.sendResult(honest);
        worker.die();
        setTimeout(() => joinLater?.(), 50);
        return false;
      },
      control: ({ join }) => {
        joinLater = () => join('late');
      },
    });
    assert.equal(outcome.status, 'succeeded', outcome.error?.message);
    assert.equal(outcome.counters.deaths, 1);
    // Step 2's record comes out after its worker died: the run is waiting then.
    assert.deepEqual(outcome.stateAtStep, ['training', 'waiting-for-workers', 'training', 'training']);
    const afterDeath = outcome.states.slice(outcome.states.lastIndexOf('waiting-for-workers'));
    assert.deepEqual(afterDeath, ['waiting-for-workers', 'evaluating', 'training', 'evaluating', 'training', 'finished']);
  });
});
