// The run directory (docs/design.md, "Run directory"): job.yaml, metrics.jsonl, eval.jsonl,
// summary.json and model/. JSON lines are appended as they happen, so a run that dies still
// leaves everything it measured; files that must be whole are written atomically.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';

export const RUN_FILES = ['job.yaml', 'summary.json', 'metrics.jsonl', 'eval.jsonl', 'events.jsonl', 'model', 'checkpoints'] as const;

export interface RunDirectoryOptions {
  /**
   * Continue a run from its checkpoint at this step: records of later steps (written after
   * the checkpoint, before the run stopped) are dropped, then new ones are appended.
   */
  resumeAfterStep?: number;
}

/** Keeps the lines of a JSON-lines file whose `step` is at most `step` (all others are dropped). */
function truncateAfterStep(file: string, step: number): void {
  if (!existsSync(file)) return;
  const kept = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => {
      if (line.trim() === '') return false;
      try {
        const record = JSON.parse(line) as { step?: unknown };
        return typeof record.step !== 'number' || record.step <= step;
      } catch {
        return false; // a line torn by the crash
      }
    });
  writeFileAtomic(file, kept.map((l) => l + '\n').join(''));
}

export class RunDirectory {
  private readonly metricsFd: number;
  private readonly evalFd: number;
  private readonly eventsFd: number;
  private closed = false;
  /** True when files of an earlier run were replaced. */
  readonly replacedPrevious: boolean;

  constructor(
    readonly dir: string,
    options: RunDirectoryOptions = {},
  ) {
    mkdirSync(dir, { recursive: true });
    const resume = options.resumeAfterStep;
    this.replacedPrevious = resume === undefined && RUN_FILES.some((f) => existsSync(path.join(dir, f)));
    // Only our own files are replaced; anything else the user keeps there is left alone.
    rmSync(path.join(dir, 'model'), { recursive: true, force: true });
    rmSync(path.join(dir, 'summary.json'), { force: true });
    if (resume === undefined) {
      rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
    } else {
      truncateAfterStep(path.join(dir, 'metrics.jsonl'), resume);
      truncateAfterStep(path.join(dir, 'eval.jsonl'), resume);
    }
    const mode = resume === undefined ? 'w' : 'a';
    this.metricsFd = openSync(path.join(dir, 'metrics.jsonl'), mode);
    this.evalFd = openSync(path.join(dir, 'eval.jsonl'), mode);
    this.eventsFd = openSync(path.join(dir, 'events.jsonl'), mode);
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
