// Training runs through the real CLI (`mtl run` with real worker processes) and what the tests
// read back from them: the exported model's weights by name, the job's initial weights as the
// coordinator computes them, and the per-step losses the run recorded.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadJobFile } from '../../common/job-spec.js';
import { fileSystemModel } from '../../common/model-files.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { runCli } from './cli-process.js';
import { tempDir } from './temp-dirs.js';

export interface TrainedRun {
  /** The run directory. */
  out: string;
  /** model/weights.bin of the export. */
  weights: Buffer;
}

/** `mtl run jobFile --workers N` into a fresh directory; fails the test unless it exits 0. */
export async function trainJob(jobFile: string, workers: number, extraArgs: string[] = []): Promise<TrainedRun> {
  const out = tempDir(`mtl-run-${workers}-`);
  const r = await runCli(['run', jobFile, '--workers', String(workers), '--out', out, '--quiet', ...extraArgs]);
  assert.equal(r.code, 0, `mtl run ${jobFile} exited ${r.code}:\n${r.stderr}`);
  return { out, weights: readFileSync(path.join(out, 'model', 'weights.bin')) };
}

/** The exported model of a run, loaded with plain tfjs. */
export function loadExportedModel(out: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileSystemModel(path.join(out, 'model')));
}

/** A model's weights by their tfjs names (`layer/weight`, as the parameter layout names them). */
export function weightsByName(model: tf.LayersModel): Map<string, Float32Array> {
  return new Map(model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
}

/** The job's initial weights by name, as the coordinator computes them (same code, same default backend). */
export function initialWeights(jobFile: string): Map<string, Float32Array> {
  const prepared = prepareRun(loadJobFile(jobFile));
  return new Map(prepared.layout.tensors.map((t) => [t.name, prepared.initialParams.slice(t.offset, t.offset + t.size)]));
}

/** Every training step's loss of every task, from the run's metrics.jsonl. */
export function stepLosses(out: string): Array<Record<string, number>> {
  return readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as { losses: Record<string, number> }).losses);
}
