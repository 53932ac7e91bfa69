// `mtl timeline`: a real run's metrics.jsonl becomes a Chrome trace whose step spans tile each
// step in order (units, aggregate, optimize, broadcast) and add up to the step's total.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

void describe('mtl timeline', () => {
  void it('exports every step of a real run as tiled spans in Chrome trace format, plus evaluations', async () => {
    const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 2, dim: 8, samples: 400 });
    const job = {
      name: 'timeline',
      model: { trunk: [{ dense: { units: 8, activation: 'relu' } }], heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] } },
      tasks: { a: { loss: 'meanSquaredError', data: data(0) }, b: { loss: 'meanSquaredError', data: data(1) } },
      training: { steps: 30, batchSize: 16, optimizer: { name: 'sgd', learningRate: 0.05 }, evalEvery: 10 },
    };
    const out = tempDir('mtl-timeline-');
    const run = await runCli(['run', writeJob(job), '--workers', '2', '--out', out, '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    const file = path.join(tempDir('mtl-trace-'), 'trace.json');
    const r = await runCli(['timeline', out, '--out', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /30 steps/);

    const { traceEvents } = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: TraceEvent[] };
    const metrics = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; timeMs: Record<string, number> });
    const steps = traceEvents.filter((e) => e.ph === 'X' && e.name.startsWith('step '));
    assert.deepEqual(steps.map((e) => e.name), metrics.map((m) => `step ${m.step}`));
    for (let i = 1; i < steps.length; i++) assert.ok(steps[i]!.ts >= steps[i - 1]!.ts, 'steps in time order');
    const phases = traceEvents.filter((e) => e.ph === 'X' && !e.name.startsWith('step '));
    for (const [i, step] of steps.entries()) {
      const inside = phases.filter((p) => p.args?.step === metrics[i]!.step).sort((a, b) => a.ts - b.ts);
      assert.ok(inside.every((p) => p.ts >= step.ts - 1 && p.ts + p.dur! <= step.ts + step.dur! + inside.length + 1), `step ${i + 1}: its spans lie within it`);
      assert.deepEqual([...new Set(inside.map((p) => p.name))].filter((n) => n !== 'lookahead'), ['units', 'aggregate', 'optimize', 'broadcast'].filter((n) => metrics[i]!.timeMs[n]! > 0));
      for (let k = 1; k < inside.length; k++) assert.ok(inside[k]!.ts >= inside[k - 1]!.ts + inside[k - 1]!.dur! - 1, 'spans do not overlap');
      const summed = inside.reduce((s, p) => s + p.dur!, 0);
      assert.ok(Math.abs(summed - step.dur!) <= inside.length + 1, `step ${i + 1}: spans add up to ${summed} µs, the step took ${step.dur} µs`);
    }
    assert.deepEqual(traceEvents.filter((e) => e.ph === 'i' && e.name.startsWith('evaluation')).map((e) => e.name), ['evaluation at step 10', 'evaluation at step 20', 'evaluation at step 30']);
    assert.ok(traceEvents.some((e) => e.ph === 'M' && e.args?.name === 'aggregate'));

    const bad = await runCli(['timeline', path.join(out, 'nope')]);
    assert.equal(bad.code, 2);
  });
});
