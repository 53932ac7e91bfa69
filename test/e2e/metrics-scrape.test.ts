// /metrics, /healthz and /readyz of a real `mtl run` (real worker processes), scraped while it
// trains: every documented series is there with sane values.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { parsePrometheus, sampleValue, type Sample } from '../helpers/prometheus-text.js';
import { tempDir } from '../helpers/temp-dirs.js';

function job(): object {
  const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 2, dim: 20, samples: 2000 });
  return {
    name: 'metrics-e2e',
    seed: 5,
    model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: { x: [{ dense: { units: 1 } }], y: [{ dense: { units: 1 } }] } },
    tasks: { x: { loss: 'meanSquaredError', metrics: ['mae'], data: data(0) }, y: { loss: 'meanSquaredError', metrics: ['mae'], data: data(1) } },
    training: { steps: 20_000, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.01 }, evalEvery: 50 },
    checkpoint: { every: 50 },
  };
}

async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(`${url}metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

void describe('/metrics during a run', () => {
  void it('has steps, samples, per-task loss, unit times, workers, deaths, rejections, bytes and checkpoint age', async () => {
    const run = startCli(['run', writeJob(job()), '--workers', '2', '--out', tempDir('mtl-metrics-'), '--http', '127.0.0.1:0', '--quiet']);
    const [, url] = await run.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/);
    assert.ok(url);
    try {
      assert.equal((await fetch(`${url}healthz`)).status, 200);
      // Wait until it has trained a while and checkpointed.
      let samples: Sample[] = [];
      for (let i = 0; i < 300; i++) {
        samples = await scrape(url);
        if (sampleValue(samples, 'mtl_steps_completed_total') > 60 && sampleValue(samples, 'mtl_checkpoint_step') >= 50) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const v = (name: string, labels?: Record<string, string>) => sampleValue(samples, name, labels);
      const steps = v('mtl_steps_completed_total');
      assert.ok(steps > 60, `steps ${steps}`);
      assert.equal(v('mtl_steps'), 20_000);
      assert.equal(v('mtl_samples_total'), steps * 2 * 32, 'batch 32 per task per step');
      for (const task of ['x', 'y']) {
        const loss = v('mtl_task_loss', { task });
        assert.ok(Number.isFinite(loss) && loss > 0, `loss of ${task}: ${loss}`);
        assert.ok(Math.abs(v('mtl_task_weight', { task }) - 0.5) < 1e-9, 'mean: equal weights');
        assert.ok(v('mtl_eval_metric', { task, metric: 'mae' }) > 0);
      }
      assert.equal(v('mtl_workers'), 2);
      assert.equal(v('mtl_workers_required'), 2);
      assert.equal(v('mtl_worker_deaths_total'), 0);
      assert.equal(v('mtl_rejected_messages_total'), 0);
      assert.equal(v('mtl_ready'), 1);
      const states = samples.filter((s) => s.name === 'mtl_run_state');
      assert.equal(states.length, 1);
      assert.ok(['training', 'evaluating'].includes(states[0]!.labels.state ?? ''), JSON.stringify(states));
      // Every step moves the weights both ways: results in, new weights out.
      assert.ok(v('mtl_received_bytes_total') > steps * 100, `received ${v('mtl_received_bytes_total')}`);
      assert.ok(v('mtl_sent_bytes_total') > steps * 100, `sent ${v('mtl_sent_bytes_total')}`);
      const unitCount = v('mtl_unit_compute_seconds_count', { kind: 'train' });
      assert.ok(unitCount >= steps * 2, `train units observed: ${unitCount}`);
      assert.ok(v('mtl_unit_compute_seconds_sum', { kind: 'train' }) > 0);
      assert.equal(v('mtl_step_seconds_count'), steps);
      assert.ok(v('mtl_step_phase_seconds', { phase: 'total' }) > 0);
      const age = v('mtl_checkpoint_age_seconds');
      assert.ok(age >= 0 && age < 60, `checkpoint age ${age}`);
      assert.equal(v('mtl_checkpoint_step') % 50, 0);
      // prom-client's process metrics, and every series carries the run id.
      assert.ok(v('process_cpu_user_seconds_total') > 0);
      assert.ok(samples.every((s) => /^metrics-e2e-/.test(s.labels.run_id ?? '')), 'run_id label on every sample');
      // Counters only go up.
      const later = await scrape(url);
      assert.ok(sampleValue(later, 'mtl_steps_completed_total') >= steps);
      assert.ok(sampleValue(later, 'mtl_sent_bytes_total') >= v('mtl_sent_bytes_total'));

      const ready = await fetch(`${url}readyz`);
      assert.equal(ready.status, 200);
      assert.equal(await ready.text(), 'ready\n');
    } finally {
      run.child.kill('SIGINT');
    }
    const r = await run.result;
    assert.equal(r.code, 130, r.stderr);
  });
});
