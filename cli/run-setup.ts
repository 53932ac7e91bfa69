// What `mtl run` and `mtl coordinator` settle before anything listens or is written: the job
// (checked, with its warnings shown), the run directory (a fresh one, never another run's
// unless --force), and for --resume the checkpoint to continue from, or the news that the run
// is already complete. The job's remote data (nats://, http(s)://) is fetched here, before the
// datasets load.
import path from 'node:path';
import { materializeData, type MaterializeOptions } from '../common/data-store/materialize.js';
import { DatasetError, JobSpecError, RunDirectoryInUseError } from '../common/errors.js';
import { loadJobFile, withAggregator } from '../common/job-spec.js';
import { aggregatorNames } from '../coordinator/aggregation/registry.js';
import { FileCheckpointStore, jobHash, type CheckpointData } from '../coordinator/checkpoints.js';
import { prepareRun, type PreparedRun } from '../coordinator/prepare-run.js';
import { assertRunDirectoryFree, readRunSummary, type StoredSummary } from '../coordinator/run-directory.js';

export interface JobOverrides {
  /** Replaces training.aggregator (mtl run --aggregator). */
  aggregator?: string;
  /** Where the job's remote data comes from and is cached (see cli/data-options.ts). */
  data?: MaterializeOptions;
}

/**
 * Loads and checks a job, its remote data fetched first; prints its warnings, or every problem
 * and returns undefined when it is invalid. Remote data that cannot be fetched (NATS or the web
 * server unreachable) throws DataFetchError or ControlPlaneError: the caller exits 1, not 2.
 */
export async function prepare(jobFile: string, overrides: JobOverrides = {}, jobDir?: string): Promise<PreparedRun | undefined> {
  let prepared: PreparedRun;
  try {
    const loaded = loadJobFile(jobFile, { aggregatorNames });
    if (overrides.aggregator !== undefined) loaded.spec = withAggregator(loaded.spec, overrides.aggregator);
    // A resumed run reads its job from the run directory, its data from where the job was.
    if (jobDir !== undefined) loaded.dir = jobDir;
    await materializeData(loaded.spec, overrides.data);
    prepared = prepareRun(loaded);
  } catch (err) {
    if (err instanceof JobSpecError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    if (err instanceof DatasetError) {
      process.stderr.write(`${jobFile}: data error: ${err.message}\n`);
      return undefined;
    }
    throw err;
  }
  for (const w of prepared.warnings) process.stderr.write(`warning: ${jobFile}: ${w.path}: ${w.message}\n`);
  return prepared;
}

export function defaultOutDir(name: string): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join('runs', `${name}-${t}`);
}

export interface RunSetupOptions extends JobOverrides {
  out?: string;
  /** Run directory of a run to continue from its latest valid checkpoint. */
  resume?: string;
  /** Replace the files of a run already in --out. */
  force?: boolean;
  /**
   * --out may hold files of the same job (a run resumable by its --run-id, continued or started
   * again by a replacement coordinator); another job's run is still refused.
   */
  continueSameJob?: boolean;
}

export type RunSetup =
  | { kind: 'fresh'; prepared: PreparedRun; outDir: string }
  | { kind: 'resume'; prepared: PreparedRun; checkpoint: CheckpointData; outDir: string }
  /** --resume of a run whose summary says it succeeded: nothing to train. */
  | { kind: 'complete'; dir: string; summary: StoredSummary & Record<string, unknown> };

/**
 * For --resume DIR: the latest checkpoint that reads back intact (damaged ones are skipped with
 * a warning) and the job, from JOB or DIR/job.yaml; both must be the job the checkpoint belongs to.
 */
async function setUpResume(jobFile: string | undefined, opts: RunSetupOptions & { resume: string }): Promise<RunSetup | undefined> {
  const dir = opts.resume;
  if (opts.out !== undefined && path.resolve(opts.out) !== path.resolve(dir)) {
    process.stderr.write(`--out ${opts.out} and --resume ${dir} name different directories: a resumed run continues in its own\n`);
    return undefined;
  }
  if (opts.aggregator !== undefined) {
    process.stderr.write('--aggregator cannot change the method of a resumed run\n');
    return undefined;
  }
  const summary = readRunSummary(dir);
  if (summary?.status === 'succeeded') {
    // A job named with it must still be this run's job: another one is a mistake to report.
    if (jobFile !== undefined && !sameJob(jobFile, path.join(dir, 'job.yaml'), dir)) return undefined;
    return { kind: 'complete', dir, summary };
  }
  const store = new FileCheckpointStore(path.join(dir, 'checkpoints'));
  const checkpoint = await store.loadLatest((file, reason) => process.stderr.write(`warning: skipping damaged checkpoint ${file}: ${reason}\n`));
  if (!checkpoint) {
    process.stderr.write(`${dir}: no usable checkpoint in ${path.join(dir, 'checkpoints')}\n`);
    return undefined;
  }
  const prepared = await prepare(jobFile ?? path.join(dir, 'job.yaml'), opts.data ? { data: opts.data } : {}, jobFile === undefined ? checkpoint.jobDir : undefined);
  if (!prepared) return undefined;
  if (jobHash(prepared.loaded.spec) !== checkpoint.jobHash) {
    process.stderr.write(`${jobFile ?? path.join(dir, 'job.yaml')}: not the job that wrote the checkpoints in ${dir} (resolved specs differ)\n`);
    return undefined;
  }
  return { kind: 'resume', prepared, checkpoint, outDir: dir };
}

/** Whether two job files resolve to the same spec; false after printing why not (or why one cannot be read). */
function sameJob(jobFile: string, runJob: string, dir: string): boolean {
  try {
    if (jobHash(loadJobFile(jobFile, { aggregatorNames }).spec) === jobHash(loadJobFile(runJob, { aggregatorNames }).spec)) return true;
    process.stderr.write(`${jobFile}: not the job of the run in ${dir}, which has already succeeded (resolved specs differ)\n`);
    return false;
  } catch (err) {
    if (!(err instanceof JobSpecError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return false;
  }
}

/** Whether `dir` holds a run of this very job (its job.yaml resolves to the same spec). */
function holdsJob(dir: string, prepared: PreparedRun): boolean {
  try {
    return jobHash(loadJobFile(path.join(dir, 'job.yaml'), { aggregatorNames }).spec) === jobHash(prepared.loaded.spec);
  } catch (err) {
    if (err instanceof JobSpecError) return false;
    throw err;
  }
}

/** The job and run directory of a run about to start; undefined after printing why it cannot (exit 2). */
export async function setUpRun(jobFile: string | undefined, opts: RunSetupOptions): Promise<RunSetup | undefined> {
  if (opts.resume !== undefined) return setUpResume(jobFile, { ...opts, resume: opts.resume });
  if (jobFile === undefined) {
    process.stderr.write('a job file is required (or --resume DIR)\n');
    return undefined;
  }
  const prepared = await prepare(jobFile, opts);
  if (!prepared) return undefined;
  const outDir = opts.out ?? defaultOutDir(prepared.loaded.spec.name);
  if (opts.force !== true) {
    try {
      assertRunDirectoryFree(outDir);
    } catch (err) {
      if (!(err instanceof RunDirectoryInUseError)) throw err;
      if (!(opts.continueSameJob === true && holdsJob(outDir, prepared))) {
        process.stderr.write(`${err.message}\n`);
        return undefined;
      }
    }
  }
  return { kind: 'fresh', prepared, outDir };
}
