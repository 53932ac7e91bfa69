// `mtl timeline RUN_DIR [--out FILE]`: the run's step-time breakdown as a Chrome trace (the
// Trace Event Format that chrome://tracing and https://ui.perfetto.dev open), the idea of
// Horovod's timeline. One track per phase of the coordinator's step loop, built from
// metrics.jsonl (each record's end time and its timeMs), plus evaluations and events.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { jsonLines } from '../coordinator/run-directory-view.js';

interface StepLine {
  time: string;
  step: number;
  stage?: string;
  samples: number;
  workers: number;
  losses: Record<string, number>;
  timeMs: { units: number; compute: number; transfer: number; aggregate: number; optimize: number; broadcast: number; total: number; lookahead?: number };
}

interface TraceEvent {
  name: string;
  cat: string;
  ph: 'X' | 'i' | 'M';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

/** Tracks (thread ids) of the trace, in display order. */
const TRACKS = ['step', 'units (workers)', 'lookahead', 'aggregate', 'optimize', 'broadcast', 'evaluation', 'events'] as const;
const tid = (t: (typeof TRACKS)[number]): number => TRACKS.indexOf(t) + 1;


/** The trace of a run directory; throws when it has no step records. */
export function runTimeline(runDir: string): { traceEvents: TraceEvent[]; displayTimeUnit: 'ms' } {
  const steps = jsonLines<StepLine>(path.join(runDir, 'metrics.jsonl')).filter((s) => s.timeMs && typeof s.time === 'string');
  if (steps.length === 0) throw new Error(`${runDir}: no step records in metrics.jsonl (is it a run directory?)`);
  const endOf = (s: StepLine): number => Date.parse(s.time) * 1000; // µs
  const origin = endOf(steps[0]!) - steps[0]!.timeMs.total * 1000;
  const us = (absolute: number): number => Math.round(absolute - origin);
  const events: TraceEvent[] = [
    { name: 'process_name', cat: '__metadata', ph: 'M', ts: 0, pid: 1, tid: 0, args: { name: `mtl run ${path.basename(path.resolve(runDir))}` } },
    ...TRACKS.map((t) => ({ name: 'thread_name', cat: '__metadata', ph: 'M' as const, ts: 0, pid: 1, tid: tid(t), args: { name: t } })),
  ];
  // Record times have millisecond resolution: a step never starts before the previous one ended.
  let previousEnd = -Infinity;
  for (const s of steps) {
    const t = s.timeMs;
    let at = Math.max(endOf(s) - t.total * 1000, previousEnd);
    previousEnd = at + t.total * 1000;
    const span = (track: (typeof TRACKS)[number], name: string, ms: number, args: Record<string, unknown> = {}): void => {
      if (ms > 0) events.push({ name, cat: 'step', ph: 'X', ts: us(at), dur: Math.round(ms * 1000), pid: 1, tid: tid(track), args: { step: s.step, ...args } });
      at += ms * 1000;
    };
    events.push({ name: `step ${s.step}`, cat: 'step', ph: 'X', ts: us(at), dur: Math.round(t.total * 1000), pid: 1, tid: tid('step'), args: { stage: s.stage, samples: s.samples, workers: s.workers, losses: s.losses } });
    span('units (workers)', 'units', t.units, { computeMsSummedOverWorkers: t.compute, transferMs: t.transfer });
    span('lookahead', 'lookahead', t.lookahead ?? 0);
    span('aggregate', 'aggregate', t.aggregate);
    span('optimize', 'optimize', t.optimize);
    span('broadcast', 'broadcast', t.broadcast);
  }
  for (const e of jsonLines<{ time?: string; step: number }>(path.join(runDir, 'eval.jsonl'))) {
    if (typeof e.time === 'string') events.push({ name: `evaluation at step ${e.step}`, cat: 'eval', ph: 'i', s: 't', ts: us(Date.parse(e.time) * 1000), pid: 1, tid: tid('evaluation'), args: { ...e } });
  }
  for (const e of jsonLines<{ time?: string; type: string; message: string }>(path.join(runDir, 'events.jsonl'))) {
    if (typeof e.time === 'string') events.push({ name: e.type, cat: 'event', ph: 'i', s: 'g', ts: us(Date.parse(e.time) * 1000), pid: 1, tid: tid('events'), args: { message: e.message } });
  }
  return { traceEvents: events, displayTimeUnit: 'ms' };
}

export function timelineCommand(runDir: string, opts: { out?: string }): number {
  let trace: ReturnType<typeof runTimeline>;
  try {
    trace = runTimeline(runDir);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const file = opts.out ?? path.join(runDir, 'timeline.json');
  writeFileSync(file, JSON.stringify(trace));
  const steps = trace.traceEvents.filter((e) => e.tid === tid('step') && e.ph === 'X').length;
  process.stdout.write(`${file}: ${steps} steps, ${trace.traceEvents.length} trace events (open in chrome://tracing or https://ui.perfetto.dev)\n`);
  return 0;
}
