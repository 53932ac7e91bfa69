// How many step lines a plain log and `mtl watch` print: a bounded number whatever the run's
// length, always the last step, every event. Pure logic with the records' own clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StepThrottle } from '../../cli/progress.js';
import { WatchPrinter } from '../../cli/watch-command.js';

const METRICS = 'mtl.runs.r.metrics';
const EVENTS = 'mtl.runs.r.events';
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const step = (n: number, ms: number) => ({ time: at(ms), step: n, losses: { a: 0.5 }, timeMs: { total: 3 }, workers: 2 });

function watch(records: Array<[string, Record<string, unknown>]>, totalSteps: number, allSteps = false): string[] {
  const lines: string[] = [];
  const printer = new WatchPrinter(totalSteps, (l) => lines.push(l), { allSteps });
  for (const [subject, data] of records) printer.record(subject, data);
  printer.flush();
  return lines;
}

void describe('StepThrottle', () => {
  void it('every ~5% of the run and the last step, when steps come fast', () => {
    const t = new StepThrottle(2400, 0);
    const shown = Array.from({ length: 2400 }, (_, i) => i + 1).filter((s) => t.take(s, s));
    assert.deepEqual(shown, Array.from({ length: 20 }, (_, i) => (i + 1) * 120));
  });

  void it('also the first step after 10 s without a line, when steps are slow', () => {
    const t = new StepThrottle(100, 0);
    const shown = Array.from({ length: 100 }, (_, i) => i + 1).filter((s) => t.take(s, s * 4000));
    // Every 5th step is due anyway; with 4 s a step, the 10 s rule adds every third step in between.
    assert.ok(shown.includes(3) && shown.includes(5) && shown.includes(100), shown.join(','));
    for (let i = 1; i < shown.length; i++) assert.ok((shown[i]! - shown[i - 1]!) * 4000 <= 12_000, `gap before step ${shown[i]}`);
  });
});

void describe('mtl watch text output', () => {
  const run = (steps: number, msPerStep: number): Array<[string, Record<string, unknown>]> => [
    [EVENTS, { time: at(0), level: 'info', type: 'run-started', message: 'run r started' }],
    ...Array.from({ length: steps }, (_, i): [string, Record<string, unknown>] => [METRICS, step(i + 1, (i + 1) * msPerStep)]),
    [EVENTS, { time: at(steps * msPerStep + 1), level: 'info', type: 'run-succeeded', message: 'run succeeded' }],
  ];

  void it('a 2,400-step run: about 20 step lines, not 2,400, and every event', () => {
    const lines = watch(run(2400, 20), 2400);
    const steps = lines.filter((l) => l.includes(' step '));
    assert.ok(steps.length >= 20 && steps.length <= 30, `${steps.length} step lines`);
    assert.match(lines[0]!, /run-started/);
    assert.match(lines.at(-2)!, / step 2400 /);
    assert.match(lines.at(-1)!, /run-succeeded/);
  });

  void it('a run that ends early still shows its last step, before the event that ends it', () => {
    const records = run(2400, 20).slice(0, 1 + 1234);
    records.push([EVENTS, { time: at(30_000), level: 'error', type: 'run-failed', message: 'run failed: boom' }]);
    const lines = watch(records, 2400);
    assert.match(lines.at(-2)!, / step 1234 /);
    assert.match(lines.at(-1)!, /run-failed: run failed: boom/);
    // A watch that stops without an end event (interrupted, or --events elsewhere) flushes too.
    const cut = watch(run(2400, 20).slice(0, 1 + 77), 2400);
    assert.match(cut.at(-1)!, / step 77 /);
  });

  void it('events between steps are never held back; --all-steps prints every step', () => {
    const records = run(100, 20);
    records.splice(50, 0, [EVENTS, { time: at(1000), level: 'warn', type: 'worker-lost', message: 'w2 lost' }]);
    const lines = watch(records, 100);
    assert.ok(lines.some((l) => /worker-lost: w2 lost/.test(l)));
    assert.equal(watch(records, 100, true).filter((l) => l.includes(' step ')).length, 100);
  });
});
