// The run directory (docs/design.md, "Run directory"): job.yaml, metrics.jsonl, eval.jsonl,
// summary.json and model/. JSON lines are appended as they happen, so a run that dies still
// leaves everything it measured; files that must be whole are written atomically.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../common/atomic-file.js';
import { RunDirectoryInUseError } from '../common/errors.js';
import { FileCheckpointStore } from './checkpoints.js';

export const RUN_FILES = ['job.yaml', 'summary.json', 'metrics.jsonl', 'eval.jsonl', 'events.jsonl', 'model', 'checkpoints'] as const;

/** The fields of a stored summary.json that say which run it was and how it ended. */
export interface StoredSummary {
  runId: string;
  name: string;
  status: 'succeeded' | 'failed' | 'stopped';
  steps: number;
  stepsCompleted: number;
}

/** DIR/summary.json when it is there and reads as a summary; otherwise undefined. */
export function readRunSummary(dir: string): (StoredSummary & Record<string, unknown>) | undefined {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const s = value as Partial<StoredSummary> | null;
  if (!s || typeof s.runId !== 'string' || typeof s.status !== 'string' || typeof s.stepsCompleted !== 'number' || typeof s.steps !== 'number') return undefined;
  return value as StoredSummary & Record<string, unknown>;
}

/** The run files in `dir` (empty for a new or empty directory, or one holding other files only). */
export function runFilesIn(dir: string): string[] {
  return RUN_FILES.filter((f) => existsSync(path.join(dir, f)));
}

/** What `dir` holds, for a message: which run, how it ended, its files. */
function describeRun(dir: string, files: readonly string[], summary: StoredSummary | undefined): string {
  let job: string | undefined;
  try {
    const doc = YAML.parse(readFileSync(path.join(dir, 'job.yaml'), 'utf8')) as { name?: unknown } | null;
    if (typeof doc?.name === 'string') job = doc.name;
  } catch {
    // No job.yaml, or not readable: the file list says enough.
  }
  const checkpoints = new FileCheckpointStore(path.join(dir, 'checkpoints')).files().length;
  const what = summary
    ? `run ${summary.runId}${job !== undefined ? ` of job "${job}"` : ''}, ${summary.status} after ${summary.stepsCompleted}/${summary.steps} steps`
    : `an unfinished run${job !== undefined ? ` of job "${job}"` : ''} (no summary.json)`;
  return `${what}; ${files.join(', ')}${checkpoints > 0 ? ` (${checkpoints} checkpoint${checkpoints === 1 ? '' : 's'})` : ''}`;
}

/**
 * Throws RunDirectoryInUseError when `dir` already holds a run's files, naming the run and the
 * files: a new run there would replace them. Other files in it do not count (they are left alone).
 */
export function assertRunDirectoryFree(dir: string): void {
  const files = runFilesIn(dir);
  if (files.length === 0) return;
  const summary = readRunSummary(dir);
  const resumable = files.includes('checkpoints') && summary?.status !== 'succeeded';
  throw new RunDirectoryInUseError(
    `${dir} already holds ${describeRun(dir, files, summary)}. Give another --out, ${resumable ? `continue that run with --resume ${dir}, ` : ''}or add --force to replace its files`,
  );
}

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
