// A run's exported model as its user meets it: `loadModel(dir)` reads model/ (model.json and
// its weights) and returns a predictor of raw rows — the column transforms the run's data went
// through (standardisation with the train statistics, category → vocabulary id) are in the
// model's metadata and applied here, exactly as the datasets applied them, and class indices
// come back as the run's class labels. `mtl predict` is this over a file.
//
// The metadata (`userDefinedMetadata.mtl`, written by coordinator/model-export.ts):
//   tasks.<t>: { loss, target, classes, outputIndex, inputs: [model input names],
//                targetColumns?: [columns of a target of several], columnClasses?: [[label 0, label 1] per column] }
//   preprocessing: [{ tasks: [...], columns: [ColumnTransform...] }]   (one entry per data source)
// A task's example is its columns' values in order; its model inputs read consecutive slices.
import * as tf from '@tensorflow/tfjs';
import { DatasetError } from './errors.js';
import { standardised, type ColumnTransform } from './datasets/types.js';
import { Vocabulary } from './datasets/vocabulary.js';
import { fileSystemModel } from './model-files.js';

export interface TrainedTask {
  readonly name: string;
  readonly loss: string;
  readonly target: string;
  /** Class labels (classification), by class index; null for regression and multi-label targets. */
  readonly classes: readonly string[] | null;
  /** A target of several columns: its columns, one model output each (`target` is then `[a, b, …]`). */
  readonly targetColumns?: readonly string[];
  /** A multi-label target: each column's labels for 0 and for 1. */
  readonly columnClasses?: ReadonlyArray<readonly [string, string]>;
  /** The raw columns a row needs, in example order; absent when the task's data is not a table. */
  readonly columns?: readonly ColumnTransform[];
}

export interface TaskPrediction {
  /**
   * Values per row: 1, or a target of several columns' column count (its `targetColumns`).
   * `values`, `labels` and `probabilities` hold `width` entries per row, row-major.
   */
  readonly width: number;
  /** Regression: the value (the vector, for several columns). Classification: the class index (multi-label: 0 or 1 per column). */
  readonly values: Float64Array;
  /** Classification: the class labels of `values` (multi-label: each column's label). */
  readonly labels?: readonly string[];
  /** Classification: the model's output for the predicted class (its probability when the head ends in softmax or sigmoid). */
  readonly probabilities?: Float64Array;
}

interface TaskMetadata {
  loss: string;
  target: string;
  classes: string[] | null;
  outputIndex: number;
  inputs: string[];
  targetColumns?: string[];
  columnClasses?: Array<[string, string]>;
}

export interface ModelMetadata {
  runId?: string;
  tasks: Record<string, TaskMetadata>;
  preprocessing?: Array<{ tasks: string[]; columns: ColumnTransform[] }>;
}

/** A raw row: column → value (number, numeric text, category text, boolean). */
export type RawRow = Readonly<Record<string, unknown>>;

function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(value.trim())) return Number(value.trim());
  return undefined;
}

export class TrainedModel {
  readonly tasks: readonly TrainedTask[];
  private readonly byTask: Map<string, { meta: TaskMetadata; columns?: readonly ColumnTransform[]; vocabularies: Map<string, Vocabulary>; model: tf.LayersModel }>;

  constructor(
    readonly model: tf.LayersModel,
    readonly metadata: ModelMetadata,
  ) {
    this.byTask = new Map();
    for (const [name, meta] of Object.entries(metadata.tasks)) {
      const columns = metadata.preprocessing?.find((p) => p.tasks.includes(name))?.columns;
      const vocabularies = new Map((columns ?? []).flatMap((c) => (c.kind === 'categorical' ? [[c.column, new Vocabulary(c.vocabulary)] as const] : [])));
      const inputs = meta.inputs.map((n) => {
        const i = model.inputNames.indexOf(n);
        if (i < 0) throw new DatasetError(`the model's metadata names input "${n}" for task ${name}, but the model's inputs are ${model.inputNames.join(', ')}`);
        return model.inputs[i]!;
      });
      const output = model.outputs[meta.outputIndex];
      if (!output) throw new DatasetError(`the model's metadata names output ${meta.outputIndex} for task ${name}, but the model has ${model.outputs.length}`);
      this.byTask.set(name, { meta, ...(columns ? { columns } : {}), vocabularies, model: tf.model({ inputs, outputs: output, name: `${name}_predict` }) });
    }
    this.tasks = [...this.byTask].map(([name, t]) => ({
      name,
      loss: t.meta.loss,
      target: t.meta.target,
      classes: t.meta.classes,
      ...(t.meta.targetColumns ? { targetColumns: t.meta.targetColumns } : {}),
      ...(t.meta.columnClasses ? { columnClasses: t.meta.columnClasses } : {}),
      ...(t.columns ? { columns: t.columns } : {}),
    }));
  }

  /**
   * The examples of `rows` for `task`, as the run's data made them (Float32, row-major). `where`
   * names a row in messages (e.g. "data.csv line 12").
   */
  examples(task: string, rows: readonly RawRow[], where: (row: number) => string = (r) => `row ${r + 1}`): Float32Array {
    const t = this.task(task);
    if (!t.columns) throw new DatasetError(`task ${task} was not trained on a table: its model cannot read raw rows (its data had no columns)`);
    const width = t.columns.length;
    const out = new Float32Array(rows.length * width);
    rows.forEach((row, r) => {
      t.columns!.forEach((c, k) => {
        const raw = row[c.column];
        if (c.kind === 'categorical') {
          if (raw === undefined || raw === null || raw === '') throw new DatasetError(`${where(r)}, column "${c.column}": missing value`);
          const text = typeof raw === 'string' ? raw : typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint' ? String(raw) : undefined;
          if (text === undefined) throw new DatasetError(`${where(r)}, column "${c.column}": expected a category, got ${JSON.stringify(raw)}`);
          out[r * width + k] = t.vocabularies.get(c.column)!.id(text);
          return;
        }
        const x = numberOf(raw);
        if (x === undefined) throw new DatasetError(`${where(r)}, column "${c.column}": expected a number, got ${raw === undefined ? 'no value' : JSON.stringify(raw)}`);
        out[r * width + k] = standardised(x, c);
      });
    });
    return out;
  }

  /** Predictions for raw rows, per task (every task, or `only`). */
  predict(rows: readonly RawRow[], options: { only?: readonly string[]; where?: (row: number) => string } = {}): Map<string, TaskPrediction> {
    const result = new Map<string, TaskPrediction>();
    for (const task of options.only ?? this.tasks.map((t) => t.name)) result.set(task, this.predictExamples(task, this.examples(task, rows, options.where), rows.length));
    return result;
  }

  /** Predictions for examples already transformed (`examples`), `n` of them. */
  predictExamples(task: string, flat: Float32Array, n: number): TaskPrediction {
    const t = this.task(task);
    const out = tf.tidy(() => {
      const width = flat.length / Math.max(n, 1);
      let from = 0;
      const xs = t.model.inputs.map((input) => {
        const shape = input.shape.slice(1) as number[];
        const size = shape.reduce((a, b) => a * b, 1);
        const part = new Float32Array(n * size);
        for (let r = 0; r < n; r++) part.set(flat.subarray(r * width + from, r * width + from + size), r * size);
        from += size;
        return tf.tensor(input.dtype === 'int32' ? Int32Array.from(part) : part, [n, ...shape], input.dtype);
      });
      const y = t.model.predict(xs.length === 1 ? xs[0]! : xs) as tf.Tensor;
      return tf.reshape(y, [n, -1]).arraySync() as number[][];
    });
    if (t.meta.targetColumns) return vectorPrediction(out, t.meta.targetColumns.length, t.meta.columnClasses);
    const classes = t.meta.classes;
    if (!classes) return { width: 1, values: Float64Array.from(out, (r) => r[0]!) };
    const values = new Float64Array(n);
    const probabilities = new Float64Array(n);
    out.forEach((r, i) => {
      if (r.length === 1) {
        // A sigmoid output: the probability of class 1.
        values[i] = r[0]! > 0.5 ? 1 : 0;
        probabilities[i] = values[i] === 1 ? r[0]! : 1 - r[0]!;
      } else {
        let best = 0;
        for (let k = 1; k < r.length; k++) if (r[k]! > r[best]!) best = k;
        values[i] = best;
        probabilities[i] = r[best]!;
      }
    });
    return { width: 1, values, labels: Array.from(values, (v) => classes[v] ?? String(v)), probabilities };
  }

  /** The per-task models share the model's layers: disposing it frees them all. */
  dispose(): void {
    this.model.dispose();
  }

  private task(name: string) {
    const t = this.byTask.get(name);
    if (!t) throw new DatasetError(`the model has no task ${name} (tasks: ${[...this.byTask.keys()].join(', ')})`);
    return t;
  }
}

/** A target of `width` columns: the vector as it is (regression), or each column's 0/1 label from its sigmoid output (multi-label). */
function vectorPrediction(out: readonly number[][], width: number, columnClasses: ReadonlyArray<readonly [string, string]> | undefined): TaskPrediction {
  const values = Float64Array.from(out.flatMap((r) => r.slice(0, width)));
  if (!columnClasses) return { width, values };
  const probabilities = new Float64Array(values.length);
  const labels = Array.from(values, (p, i) => {
    const positive = p > 0.5;
    values[i] = positive ? 1 : 0;
    probabilities[i] = positive ? p : 1 - p;
    return columnClasses[i % width]![positive ? 1 : 0];
  });
  return { width, values, labels, probabilities };
}

/** Loads a run's model/ directory (or its model.json) for prediction. */
export async function loadModel(dirOrModelJson: string): Promise<TrainedModel> {
  const model = await tf.loadLayersModel(fileSystemModel(dirOrModelJson));
  const metadata = (model.getUserDefinedMetadata() as { mtl?: ModelMetadata } | undefined)?.mtl;
  if (!metadata?.tasks || Object.values(metadata.tasks).some((t) => t.inputs === undefined)) {
    model.dispose();
    throw new DatasetError(`${dirOrModelJson}: not a model written by mtl run (or by a version before predictions from raw rows): its metadata has no tasks with inputs`);
  }
  return new TrainedModel(model, metadata);
}
