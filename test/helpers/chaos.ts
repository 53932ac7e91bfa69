// Shared pieces of the chaos tests: a job whose units take long enough for faults to land
// inside a step, the undisturbed reference run, and waiting on a run's progress.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, type CliResult, type RunningCli } from './cli-process.js';
import { writeJob } from './jobs.js';
import { tempDir } from './temp-dirs.js';

/** Rounds of each randomised scenario: 1 in `npm test`, more with `npm run chaos`. */
/** Join token shared by an `mtl run` and the extra workers a test adds to it (MTL_TOKEN). */
export const JOIN_ENV = { MTL_TOKEN: 'chaos-test-join-token-0123456789' };

export const CHAOS_ROUNDS = Number(process.env.MTL_CHAOS_ROUNDS ?? 1);

/** MultiMNIST with an MLP and big batches: 6 units of ~340 examples a step. */
export function chaosJob(overrides: { steps?: number; fault?: object; checkpoint?: object } = {}): string {
  const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 4000, testSize: 1000 });
  return writeJob({
    name: 'chaos',
    seed: 11,
    model: {
      input: [28, 28, 1],
      trunk: [{ flatten: {} }, { dense: { units: 128, activation: 'relu' } }, { dropout: { rate: 0.1 } }],
      heads: { left: [{ dense: { units: 10 } }], right: [{ dense: { units: 10 } }] },
    },
    tasks: {
      left: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('left') },
      right: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('right') },
    },
    training: { steps: overrides.steps ?? 40, batchSize: 1024, shardsPerTask: 3, optimizer: { name: 'adam', learningRate: 0.002 }, aggregator: { name: 'pcgrad' } },
    ...(overrides.fault ? { fault: overrides.fault } : {}),
    ...(overrides.checkpoint ? { checkpoint: overrides.checkpoint } : {}),
  });
}

export function weightsOf(out: string): Buffer {
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

/**
 * Final weights of an undisturbed run (one worker). Under scripts/run-tests.mjs every file of
 * one suite run shares MTL_TEST_CACHE_DIR, and a job file already trained there (the same
 * bytes, so the same job, by the same build) is not trained again: four files compare against
 * the same 30-step chaos job, each run of it ~15 s on 2 cores.
 */
export async function referenceWeights(jobFile: string): Promise<Buffer> {
  const cacheDir = process.env.MTL_TEST_CACHE_DIR;
  const cached = cacheDir && path.join(cacheDir, `reference-${createHash('sha256').update(readFileSync(jobFile)).digest('hex')}.bin`);
  if (cached && existsSync(cached)) return readFileSync(cached);
  const out = tempDir('mtl-ref-');
  const r = await runCli(['run', jobFile, '--workers', '1', '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const weights = weightsOf(out);
  if (cached) {
    // Written whole then renamed: a file starting meanwhile sees all of it or none.
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, weights);
    renameSync(partial, cached);
  }
  return weights;
}

export function stepsDone(out: string): number {
  const file = path.join(out, 'metrics.jsonl');
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * Resolves once the run in `out` has finished `steps` steps; fails at once, with what it
 * printed, if `run` (the process writing `out`) exits first.
 */
export async function waitForSteps(out: string, steps: number, run: RunningCli, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: CliResult | undefined;
  void run.result.then((r) => (exited = r));
  while (stepsDone(out) < steps) {
    if (exited) throw new Error(`the run exited (code ${exited.code}) at step ${stepsDone(out)} before step ${steps}; stderr:\n${exited.stderr}`);
    if (Date.now() > deadline) throw new Error(`run in ${out} did not reach step ${steps} within ${timeoutMs} ms (at ${stepsDone(out)})`);
    await sleep(25);
  }
}

export interface ChaosSummary {
  status: string;
  stepsCompleted: number;
  faults: { deaths: number; departures: number; reassignedUnits: number; backupUnits: number; discardedResults: number; resumes: number };
  workerDetails: Array<{ name: string; unitsDone: number }>;
  error?: { message: string };
}

export function summaryOf(out: string): ChaosSummary {
  return JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as ChaosSummary;
}
