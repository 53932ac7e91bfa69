// Training progress on stderr: one redrawn line on a terminal, otherwise (CI logs, files) a
// plain line every ~5% of the run and at least every 10 seconds.
import type { EvalRecord, StepRecord } from '../coordinator/run-records.js';

const PLAIN_INTERVAL_MS = 10_000;

/**
 * Which steps get a line in a log that is read later (not redrawn): every ~5% of the run, the
 * first step after 10 s without a line, and the last step. The clock is the caller's (the
 * records' own times for `mtl watch`, so that a replayed history thins out like a live one).
 */
export class StepThrottle {
  private readonly every: number;

  constructor(
    private readonly totalSteps: number,
    private lastShownMs: number,
    private readonly intervalMs = PLAIN_INTERVAL_MS,
  ) {
    this.every = Math.max(1, Math.round(totalSteps / 20));
  }

  /** Whether step `step`, recorded at `nowMs`, gets a line (if so, the interval starts again). */
  take(step: number, nowMs: number): boolean {
    if (step % this.every !== 0 && step < this.totalSteps && nowMs - this.lastShownMs <= this.intervalMs) return false;
    this.lastShownMs = nowMs;
    return true;
  }
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function losses(record: StepRecord): string {
  return Object.entries(record.losses)
    .map(([t, l]) => `${t} ${l.toFixed(4)}`)
    .join('  ');
}

export class ProgressReporter {
  private readonly started = performance.now();
  private drawn = false;
  private readonly plain: StepThrottle;

  constructor(
    private readonly totalSteps: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {
    this.plain = new StepThrottle(totalSteps, performance.now());
  }

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  /** Clears the progress line so that a log line can be printed. */
  clear(): void {
    if (this.drawn && this.tty) this.stream.write('\r\x1b[2K');
  }

  redraw(): void {
    if (this.drawn && this.tty && this.last) this.draw(this.last);
  }

  private last: StepRecord | undefined;

  private draw(record: StepRecord): void {
    const elapsed = (performance.now() - this.started) / 1000;
    const rate = record.step / elapsed;
    const eta = (this.totalSteps - record.step) / rate;
    const width = 24;
    const filled = Math.round((record.step / this.totalSteps) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const pct = ((record.step / this.totalSteps) * 100).toFixed(0).padStart(3);
    this.stream.write(`\r\x1b[2K[${bar}] ${pct}% step ${record.step}/${this.totalSteps}  ${losses(record)}  ${rate.toFixed(1)} steps/s  ETA ${duration(eta)}`);
    this.drawn = true;
  }

  step(record: StepRecord): void {
    if (!this.enabled) return;
    this.last = record;
    if (this.tty) {
      this.draw(record);
    } else if (this.plain.take(record.step, performance.now())) {
      const elapsed = (performance.now() - this.started) / 1000;
      this.stream.write(`step ${record.step}/${this.totalSteps}  loss ${losses(record)}  (${duration(elapsed)} elapsed)\n`);
    }
  }

  evaluation(record: EvalRecord): void {
    if (!this.enabled) return;
    this.clear();
    const parts = Object.entries(record.tasks).map(
      ([t, e]) => `${t}: loss ${e.loss.toFixed(4)}${Object.entries(e.metrics).map(([m, v]) => ` ${m} ${v.toFixed(4)}`).join('')}`,
    );
    this.stream.write(`eval @ step ${record.step}  ${parts.join('  |  ')}\n`);
    this.redraw();
  }

  finish(): void {
    if (this.drawn && this.tty) this.stream.write('\n');
    this.drawn = false;
  }
}
