// The coordinator's in-memory record of its run: bounded history, checkpoint age, listeners
// that cannot hurt the run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { zeroCounters } from '../../coordinator/checkpoints.js';
import type { StepRecord } from '../../coordinator/run-records.js';
import { MAX_EVENT_HISTORY, MAX_STEP_HISTORY, RunTelemetry, type TelemetryMessage } from '../../coordinator/run-telemetry.js';

function step(n: number): StepRecord {
  return {
    step: n,
    version: n,
    losses: { a: 1 / n },
    aggregatorWeights: { a: 1 },
    gradNorms: { a: 1 },
    cosine: {},
    affinity: {},
    samples: 8,
    timeMs: { units: 1, compute: 1, transfer: 0, aggregate: 0, optimize: 0, broadcast: 0, total: 2 },
    workers: 1,
    faults: zeroCounters(),
  };
}

void describe('RunTelemetry', () => {
  void it('thins old steps past the bound, keeping the whole span and the newest step', () => {
    const t = new RunTelemetry();
    const total = MAX_STEP_HISTORY + 5;
    for (let i = 1; i <= total; i++) t.step(step(i));
    const steps = t.history().steps.map((s) => s.step);
    assert.ok(steps.length <= MAX_STEP_HISTORY && steps.length > MAX_STEP_HISTORY / 2, `${steps.length} kept`);
    assert.equal(steps[steps.length - 1], total);
    assert.ok(steps[0]! <= 2, 'the start of the run is still there');
    assert.ok(steps.every((s, i) => i === 0 || s > steps[i - 1]!), 'in order');
    assert.equal(t.samples, total * 8, 'samples count every step, thinned or not');
    assert.equal(t.lastStep?.step, total);
  });

  void it('keeps the newest events; a checkpoint event sets the checkpoint age and step', () => {
    let now = 1_000_000;
    const t = new RunTelemetry(() => now);
    now += 5000;
    assert.equal(t.checkpointAgeSeconds(), 5, 'before any checkpoint: since the start');
    t.event({ type: 'checkpoint', level: 'info', message: 'checkpoint at step 10', data: { step: 10 } });
    now += 2500;
    assert.equal(t.checkpointAgeSeconds(), 2.5);
    assert.equal(t.lastCheckpointStep, 10);
    for (let i = 0; i < MAX_EVENT_HISTORY + 3; i++) t.event({ type: 'x', level: 'info', message: String(i) });
    const events = t.history().events;
    assert.equal(events.length, MAX_EVENT_HISTORY);
    assert.equal(events[events.length - 1]?.message, String(MAX_EVENT_HISTORY + 2));
    assert.match(events[0]!.time, /^\d{4}-\d\d-\d\dT/);
  });

  void it('tells listeners what happens; a throwing listener neither stops the others nor the caller', () => {
    const t = new RunTelemetry();
    const seen: TelemetryMessage['type'][] = [];
    t.subscribe(() => {
      throw new Error('a closed response');
    });
    const unsubscribe = t.subscribe((m) => seen.push(m.type));
    t.step(step(1));
    t.evaluation({ step: 1, version: 1, tasks: {} });
    t.unit({ kind: 'train', task: 'a', worker: 'w', computeMs: 3 });
    unsubscribe();
    t.step(step(2));
    assert.deepEqual(seen, ['step', 'eval', 'unit']);
  });
});
