// A worker computing a large group of units that share one batch computes for a long time,
// while each result is charged only its share of the time. It must not be declared dead
// meanwhile: its compute runs off the session's event loop, so it heartbeats all along. Here
// eight tasks share each batch and a group outlasts deadAfterMs several times over.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const TASKS = Array.from({ length: 8 }, (_, i) => `t${i}`);

function groupJob(): string {
  return writeJob({
    name: 'shared-batch-group',
    seed: 3,
    model: {
      trunk: [{ dense: { units: 512, activation: 'relu' } }, { dense: { units: 512, activation: 'relu' } }],
      heads: Object.fromEntries(TASKS.map((t) => [t, [{ dense: { units: 1 } }]])),
    },
    tasks: Object.fromEntries(TASKS.map((t, i) => [t, { loss: 'meanSquaredError', data: { dataset: 'synthetic', tasks: 8, target: i, samples: 5000 } }])),
    // A group takes seconds here; the silence limit (400 ms) is far below it.
    training: { steps: 4, batchSize: 2048, optimizer: { name: 'sgd', learningRate: 0.001 } },
    fault: { heartbeatMs: 100, deadAfterMs: 400, minBackupMs: 400 },
  });
}

void describe('liveness of a worker computing a shared-batch group', () => {
  void it('heartbeats through a group that outlasts deadAfterMs: never declared dead', async (t) => {
    const out = tempDir('mtl-group-');
    const r = await runCli(['run', groupJob(), '--workers', '1', '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { faults: { deaths: number; reassignedUnits: number; backupUnits: number } };
    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { timeMs: { units: number } });
    t.diagnostic(`step unit times ${steps.map((s) => Math.round(s.timeMs.units)).join(', ')} ms; faults ${JSON.stringify(summary.faults)}`);
    assert.ok(steps.slice(1).every((s) => s.timeMs.units > 400), 'the groups outlast deadAfterMs (else this test shows nothing)');
    assert.equal(summary.faults.deaths, 0, 'no worker was declared dead while it computed');
    assert.equal(summary.faults.reassignedUnits, 0);
  });
});
