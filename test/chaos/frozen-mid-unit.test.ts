// A worker frozen (SIGSTOP) in the middle of a unit is declared dead after fault.deadAfterMs,
// not after several unit times: workers heartbeat while they compute (their compute runs in a
// thread of its own), so the coordinator no longer waits out a unit's expected duration. Here
// every unit computes for longer than deadAfterMs, which a worker computing on its event loop
// could not survive, and the run still ends with the undisturbed run's weights.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, startCli } from '../helpers/cli-process.js';
import { referenceWeights, stepsDone, summaryOf, waitForSteps, weightsOf } from '../helpers/chaos.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const DEAD_AFTER_MS = 1500;
/**
 * How late the coordinator may notice a silence past its limit: it looks every 200 ms
 * (TICK_MS in coordinator/training-run.ts), and its event loop may be held up by a step's
 * aggregation or a loaded machine; 1 s covers both with room, and is far below the ≥ 3 unit
 * times (more than 4.5 s here) the limit used to be for a busy worker.
 */
const DETECTION_MARGIN_MS = 1000;

/** A CNN with big batches: each unit (2048 examples) computes for about 3 s on wasm. No backups: only the death declaration frees the frozen worker's units. */
function longUnitJob(): string {
  const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 4096, testSize: 256 });
  return writeJob({
    name: 'frozen-mid-unit',
    seed: 5,
    model: {
      input: [28, 28, 1],
      trunk: [
        { conv2d: { filters: 16, kernelSize: 5, activation: 'relu' } },
        { maxPooling2d: { poolSize: 2 } },
        { conv2d: { filters: 32, kernelSize: 5, activation: 'relu' } },
        { maxPooling2d: { poolSize: 2 } },
        { flatten: {} },
        { dense: { units: 64, activation: 'relu' } },
      ],
      heads: { left: [{ dense: { units: 10 } }], right: [{ dense: { units: 10 } }] },
    },
    tasks: {
      left: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('left') },
      right: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('right') },
    },
    training: { steps: 4, batchSize: 4096, shardsPerTask: 2, optimizer: { name: 'adam', learningRate: 0.002 }, aggregator: { name: 'mean' } },
    fault: { heartbeatMs: 250, deadAfterMs: DEAD_AFTER_MS, backupAfter: 0 },
  });
}

interface RunEvent {
  type: string;
  time: string;
  data?: { reason?: string };
}

function events(out: string): RunEvent[] {
  const file = path.join(out, 'events.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RunEvent);
}

void describe('a worker frozen mid-unit', () => {
  void it('is declared dead within deadAfterMs (+ the detection margin) and the run ends bitwise as an undisturbed one', async (t) => {
    const job = longUnitJob();
    const reference = await referenceWeights(job);
    const out = tempDir('mtl-chaos-frozen-');
    const run = startCli(['run', job, '--workers', '2', '--out', out]);
    // Two steps done (unit times known), and the third step's units just handed out: both
    // workers are computing for seconds from here.
    await waitForSteps(out, 2, run, 300_000);
    const [frozen] = childPids(run.child.pid!);
    assert.ok(frozen !== undefined, 'the local workers are running');
    process.kill(frozen, 'SIGSTOP');
    const stoppedAt = Date.now();
    let lost: RunEvent | undefined;
    try {
      while ((lost = events(out).find((e) => e.type === 'worker-lost')) === undefined) {
        assert.ok(Date.now() - stoppedAt < 60_000, 'the frozen worker was declared dead within a minute');
        await sleep(25);
      }
    } finally {
      process.kill(frozen, 'SIGCONT');
    }
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    // The coordinator's own record of the death: how long it had heard nothing, against which limit.
    const m = /no message for (\d+) ms \(limit (\d+) ms\)/.exec(lost.data?.reason ?? '');
    assert.ok(m, `declared dead for its silence: ${lost.data?.reason}`);
    const [silentMs, limitMs] = [Number(m[1]), Number(m[2])];
    t.diagnostic(`silent ${silentMs} ms at the declaration (limit ${limitMs} ms); SIGSTOP → worker-lost event ${Date.parse(lost.time) - stoppedAt} ms (wall clock, two processes)`);
    assert.equal(limitMs, DEAD_AFTER_MS, 'a busy worker gets deadAfterMs, not a multiple of its unit time');
    assert.ok(silentMs <= DEAD_AFTER_MS + DETECTION_MARGIN_MS, `declared ${silentMs - DEAD_AFTER_MS} ms after its limit`);
    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { timeMs: { units: number } });
    t.diagnostic(`step unit phases ${steps.map((s) => Math.round(s.timeMs.units)).join(', ')} ms`);
    assert.ok(steps.slice(0, 2).every((s) => s.timeMs.units > DEAD_AFTER_MS), 'units compute for longer than deadAfterMs (else this test shows nothing)');
    const summary = summaryOf(out);
    t.diagnostic(`faults ${JSON.stringify(summary.faults)}`);
    assert.equal(summary.faults.deaths, 1, 'only the frozen worker was declared dead; the one computing long units never');
    assert.ok(summary.faults.reassignedUnits >= 1, 'the frozen worker held units (it was stopped mid-step)');
    assert.equal(stepsDone(out), 4);
    assert.ok(weightsOf(out).equals(reference), 'weights differ from the undisturbed run');
  });
});
