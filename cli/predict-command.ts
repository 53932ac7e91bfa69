// `mtl predict RUN_DIR INPUT_FILE [--out FILE]`: batch inference on raw rows. The run's model
// (RUN_DIR/model) applies the run's column transforms itself (common/trained-model.ts), so the
// rows are given as they are in the data files; each task's prediction (a class label, or a
// value) is written as a column, and where the rows carry a task's target the metrics on them
// are printed. 0 done · 2 bad input (a missing column, a bad value, no model).
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { errorMessage, MtlError } from '../common/errors.js';
import { readRawRows } from '../common/datasets/raw-rows.js';
import { loadModel, type TaskPrediction, type TrainedModel, type TrainedTask } from '../common/trained-model.js';
import { selectBackend, type BackendChoice } from '../worker/backend.js';
import { EXIT } from './exit-codes.js';

export interface PredictCommandOptions {
  out?: string;
  backend: BackendChoice;
  tasks?: string[];
}

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

/** A target of several columns: metrics averaged over its columns (accuracy of the labels, or mse/mae of the values). */
function vectorMetricsLine(t: TrainedTask, columns: readonly string[], prediction: TaskPrediction, rows: ReadonlyArray<Record<string, unknown>>): string | undefined {
  if (!rows.every((r) => columns.every((c) => present(r[c])))) return undefined;
  const k = columns.length;
  const cells = rows.length * k;
  const on = `on ${rows.length} rows (targets ${columns.map((c) => `"${c}"`).join(', ')}, averaged over the ${k} columns)`;
  if (prediction.labels) {
    const correct = prediction.labels.filter((label, i) => label === String(rows[Math.floor(i / k)]![columns[i % k]!])).length;
    return `${t.name}: accuracy ${(correct / cells).toFixed(4)} ${on}`;
  }
  let se = 0;
  let ae = 0;
  prediction.values.forEach((v, i) => {
    const d = v - Number(rows[Math.floor(i / k)]![columns[i % k]!]);
    se += d * d;
    ae += Math.abs(d);
  });
  return `${t.name}: mse ${(se / cells).toFixed(4)}  mae ${(ae / cells).toFixed(4)} ${on}`;
}

/** Metrics of `prediction` against the rows' own targets, where they have them. */
function metricsLine(model: TrainedModel, task: string, prediction: TaskPrediction, rows: ReadonlyArray<Record<string, unknown>>): string | undefined {
  const t = model.tasks.find((x) => x.name === task)!;
  if (t.targetColumns) return vectorMetricsLine(t, t.targetColumns, prediction, rows);
  if (!rows.every((r) => present(r[t.target]))) return undefined;
  if (prediction.labels) {
    const correct = prediction.labels.filter((label, i) => label === String(rows[i]![t.target])).length;
    return `${task}: accuracy ${(correct / rows.length).toFixed(4)} on ${rows.length} rows (target "${t.target}")`;
  }
  let se = 0;
  let ae = 0;
  prediction.values.forEach((v, i) => {
    const d = v - Number(rows[i]![t.target]);
    se += d * d;
    ae += Math.abs(d);
  });
  return `${task}: mse ${(se / rows.length).toFixed(4)}  mae ${(ae / rows.length).toFixed(4)} on ${rows.length} rows (target "${t.target}")`;
}

export async function predictCommand(runDir: string, inputFile: string, opts: PredictCommandOptions): Promise<number> {
  const modelDir = existsSync(path.join(runDir, 'model', 'model.json')) ? path.join(runDir, 'model') : runDir;
  if (!existsSync(path.join(modelDir, 'model.json'))) {
    process.stderr.write(`mtl predict: ${runDir} holds no model (expected ${path.join(runDir, 'model', 'model.json')})\n`);
    return EXIT.usage;
  }
  await selectBackend(opts.backend);
  let model: TrainedModel | undefined;
  try {
    model = await loadModel(modelDir);
    const tasks = opts.tasks ?? model.tasks.map((t) => t.name);
    const chosen = model.tasks.filter((t) => tasks.includes(t.name));
    const input = readRawRows(inputFile, {
      required: [...new Set(chosen.flatMap((t) => (t.columns ?? []).map((c) => c.column)))],
      optional: [...new Set(chosen.flatMap((t) => t.targetColumns ?? [t.target]))],
    });
    const rows = input.rows;
    const predictions = model.predict(rows, { only: tasks, where: (r) => input.where(r) });
    // One output column per task, or per target column (`task.column`) for a target of several.
    const names = (t: string) => model!.tasks.find((x) => x.name === t)!.targetColumns?.map((c) => `${t}.${c}`) ?? [t];
    const header = tasks.flatMap((t) => names(t).flatMap((name) => (predictions.get(t)!.labels ? [name, `${name}_score`] : [name])));
    const table = rows.map((_, i) =>
      tasks.flatMap((t) => {
        const p = predictions.get(t)!;
        return Array.from({ length: p.width }, (_, c) => i * p.width + c).flatMap((j) => (p.labels ? [p.labels[j]!, p.probabilities![j]!] : [p.values[j]!]));
      }),
    );
    const csv = stringify([header, ...table]);
    if (opts.out) writeFileSync(opts.out, csv);
    else process.stdout.write(csv);
    for (const t of tasks) {
      const line = metricsLine(model, t, predictions.get(t)!, rows);
      if (line) process.stderr.write(`${line}\n`);
    }
    if (opts.out) process.stderr.write(`${rows.length} predictions written to ${opts.out}\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof MtlError)) throw err;
    process.stderr.write(`mtl predict: ${errorMessage(err)}\n`);
    return EXIT.usage;
  } finally {
    model?.dispose();
  }
}
