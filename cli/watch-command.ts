// `mtl watch RUN`: a run's events and metrics from the control plane, from its start, live
// until it ends. Text output thins the step lines out like the progress line of `mtl run`
// (every ~5% of the run, at least every 10 s of the run's time, and the last step before the
// run ends); events are all shown. --json prints every record as published.
import { DeliverPolicy } from '@nats-io/jetstream';
import { RUNS_STREAM, checkId, subjects } from '../common/control/plane.js';
import { RunRegistry, TERMINAL } from '../common/control/registry.js';
import { RunNotFoundError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { connectOrReport, reportControlError, type NatsOptions } from './control-commands.js';
import { StepThrottle } from './progress.js';
import { EXIT } from './exit-codes.js';

const END_EVENTS = new Set(['run-succeeded', 'run-failed', 'run-stopped']);

const text = (v: unknown): string => (typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v));

function formatLive(subject: string, data: Record<string, unknown>): string {
  const time = typeof data.time === 'string' ? data.time.slice(11, 19) : '';
  if (subject.endsWith('.events')) return `${time} ${(text(data.level) || 'info').padEnd(5)} ${text(data.type)}: ${text(data.message)}`;
  const losses = Object.entries((data.losses as Record<string, number> | undefined) ?? {})
    .map(([t, l]) => `${t} ${l.toFixed(4)}`)
    .join('  ');
  const timeMs = data.timeMs as { total?: number } | undefined;
  return `${time} step ${String(data.step)}  ${losses}  (${timeMs?.total?.toFixed(0) ?? '?'} ms, ${String(data.workers)} worker(s))`;
}

export interface WatchOptions extends NatsOptions {
  json: boolean;
  events: boolean;
  follow: boolean;
  /** Text output: a line for every step instead of the thinned-out ones. */
  allSteps: boolean;
}

/**
 * The text lines of a watch: events as they come, step lines through a StepThrottle. A step
 * held back is printed before the event that ends the run, so the last step is always shown.
 */
export class WatchPrinter {
  private readonly throttle: StepThrottle | undefined;
  private held: string | undefined;

  constructor(
    totalSteps: number,
    private readonly write: (line: string) => void,
    options: { allSteps: boolean },
  ) {
    this.throttle = options.allSteps ? undefined : new StepThrottle(totalSteps, Number.NEGATIVE_INFINITY);
  }

  record(subject: string, data: Record<string, unknown>): void {
    const line = formatLive(subject, data);
    if (subject.endsWith('.events')) {
      if (END_EVENTS.has(String(data.type))) this.flush();
      this.write(line);
      return;
    }
    const step = typeof data.step === 'number' ? data.step : NaN;
    const at = typeof data.time === 'string' ? Date.parse(data.time) : Date.now();
    if (!this.throttle || !Number.isFinite(step) || this.throttle.take(step, Number.isFinite(at) ? at : Date.now())) {
      this.held = undefined;
      this.write(line);
    } else {
      this.held = line;
    }
  }

  /** Prints the step line held back, if any (before the run's end, and when the watch stops). */
  flush(): void {
    if (this.held !== undefined) this.write(this.held);
    this.held = undefined;
  }
}

export async function watchCommand(runId: string, opts: WatchOptions, log: Logger): Promise<number> {
  const plane = await connectOrReport(opts, 'mtl watch', log);
  if (typeof plane === 'number') return plane;
  try {
    checkId('run id', runId);
    await plane.ensureStreams();
    const registry = await RunRegistry.open(plane);
    const known = await registry.get(runId);
    if (!known) throw new RunNotFoundError(`no run ${runId} in the registry`);
    const consumer = await plane.js.consumers.get(RUNS_STREAM, { filter_subjects: opts.events ? subjects.events(runId) : subjects.run(runId), deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume();
    const printer = new WatchPrinter(known.totalSteps, (line) => process.stdout.write(`${line}\n`), { allSteps: opts.allSteps });
    // A run that is already over prints its history and stops when nothing more is stored.
    let idle: NodeJS.Timeout | undefined;
    const armIdle = async () => {
      clearTimeout(idle);
      const r = await registry.get(runId).catch(() => undefined);
      if (!opts.follow && r && TERMINAL.has(r.status)) idle = setTimeout(() => messages.stop(), 2000);
    };
    await armIdle();
    for await (const m of messages) {
      let data: Record<string, unknown>;
      try {
        data = m.json<Record<string, unknown>>();
      } catch {
        continue;
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ subject: m.subject, ...data })}\n`);
      else printer.record(m.subject, data);
      if (!opts.follow && m.subject.endsWith('.events') && END_EVENTS.has(String(data.type))) {
        // The attempt ended; if the run is over (not retried or resumed), so is the watch.
        await armIdle();
      }
    }
    printer.flush();
    return EXIT.ok;
  } catch (err) {
    return reportControlError(err);
  } finally {
    await plane.close();
  }
}
