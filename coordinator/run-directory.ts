// The run directory (DESIGN.md, "Run directory"): job.yaml, metrics.jsonl, eval.jsonl,
// summary.json and model/. JSON lines are appended as they happen, so a run that dies still
// leaves everything it measured; files that must be whole are written atomically.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';

export const RUN_FILES = ['job.yaml', 'summary.json', 'metrics.jsonl', 'eval.jsonl', 'events.jsonl', 'model'] as const;

export class RunDirectory {
  private readonly metricsFd: number;
  private readonly evalFd: number;
  private readonly eventsFd: number;
  private closed = false;
  /** True when files of an earlier run were replaced. */
  readonly replacedPrevious: boolean;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.replacedPrevious = RUN_FILES.some((f) => existsSync(path.join(dir, f)));
    // Only our own files are replaced; anything else the user keeps there is left alone.
    rmSync(path.join(dir, 'model'), { recursive: true, force: true });
    rmSync(path.join(dir, 'summary.json'), { force: true });
    this.metricsFd = openSync(path.join(dir, 'metrics.jsonl'), 'w');
    this.evalFd = openSync(path.join(dir, 'eval.jsonl'), 'w');
    this.eventsFd = openSync(path.join(dir, 'events.jsonl'), 'w');
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  writeJob(yaml: string): void {
    writeFileAtomic(this.file('job.yaml'), yaml);
  }

  appendMetrics(record: object): void {
    if (!this.closed) writeSync(this.metricsFd, JSON.stringify(record) + '\n');
  }

  appendEval(record: object): void {
    if (!this.closed) writeSync(this.evalFd, JSON.stringify(record) + '\n');
  }

  appendEvent(record: object): void {
    if (!this.closed) writeSync(this.eventsFd, JSON.stringify(record) + '\n');
  }

  writeSummary(summary: object): void {
    writeFileAtomic(this.file('summary.json'), JSON.stringify(summary, null, 2) + '\n');
  }

  /** Flushes and closes the JSON-lines files; later appends are dropped. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.metricsFd, this.evalFd, this.eventsFd]) {
      try {
        fsyncSync(fd);
        closeSync(fd);
      } catch {
        // Already closed.
      }
    }
  }
}
