// A user's model whose inputs leave sizes unknown (Keras' `Input(shape=(None, None, 3))`, a
// sequence model of any length): the sizes come from the tasks' data. The model is rebuilt with
// the concrete input shape before it is composed with the job, so that the composition (and
// YAML heads such as flatten that need every size) has known shapes and the layout is fixed;
// the exported model declares the model's own shapes again when its weights do not depend on
// the sizes filled in (common/graph-layout.ts).
import * as tf from '@tensorflow/tfjs';
import { JobSpecError, type SpecIssue } from './errors.js';

/** Per-example sizes as a model declares them: null where the model leaves a size unknown. */
export type DeclaredShape = readonly (number | null)[];

/** `[?, ?, 3]`: a declared shape as messages show it. */
export function showShape(shape: DeclaredShape): string {
  return `[${shape.map((d) => d ?? '?').join(', ')}]`;
}

type Config = Record<string, unknown>;
const isConfig = (v: unknown): v is Config => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `config` (a functional model's config, or a Sequential's) with its inputs declared as
 * `shapes` (per example, in input order): a functional model's InputLayers in the order of its
 * `inputLayers`, a Sequential's first layer.
 */
export function configWithInputShapes(config: Record<string, unknown>, shapes: readonly DeclaredShape[]): Record<string, unknown> {
  const out = structuredClone(config);
  const layers = (Array.isArray(out.layers) ? out.layers : []).filter(isConfig);
  const inputLayers = Array.isArray(out.inputLayers) ? (out.inputLayers as unknown[]) : undefined;
  const targets: Config[] = [];
  if (inputLayers) {
    // Functional: inputLayers is [[name, nodeIndex, tensorIndex], ...] in input order.
    for (const entry of inputLayers) {
      const name: unknown = Array.isArray(entry) ? (entry as unknown[])[0] : undefined;
      const layer = layers.find((l) => l.name === name || (isConfig(l.config) && l.config.name === name));
      if (!layer || !isConfig(layer.config)) throw new Error(`the model config has no input layer "${String(name)}"`);
      targets.push(layer.config);
    }
  } else if (isConfig(layers[0]?.config)) {
    targets.push(layers[0].config);
  }
  if (targets.length !== shapes.length) throw new Error(`the model config declares ${targets.length} inputs, not ${shapes.length}`);
  targets.forEach((cfg, i) => {
    cfg.batchInputShape = [null, ...shapes[i]!];
    delete cfg.inputShape;
  });
  return out;
}

/** The model rebuilt from its config with `shapes` as its inputs, with the weights of `model`. */
function rebuiltWith(model: tf.LayersModel, shapes: readonly DeclaredShape[]): tf.LayersModel {
  const config = configWithInputShapes(model.getConfig(), shapes) as tf.serialization.ConfigDict;
  const rebuilt =
    model instanceof tf.Sequential
      ? (tf.Sequential.fromConfig(tf.Sequential, config) as tf.LayersModel)
      : (tf.LayersModel.fromConfig(tf.LayersModel, config) as tf.LayersModel);
  const from = model.weights;
  const to = rebuilt.weights;
  if (from.length !== to.length) throw new Error(`rebuilding the model with known input sizes changed its weights (${from.length} → ${to.length})`);
  tf.tidy(() => {
    to.forEach((v, i) => {
      const w = from[i]!;
      if (v.originalName !== w.originalName || v.shape.join(',') !== w.shape.join(',')) {
        throw new Error(`rebuilding the model with known input sizes changed weight ${w.originalName} [${w.shape.join(', ')}] into ${v.originalName} [${v.shape.join(', ')}]`);
      }
      v.write(w.read());
    });
  });
  return rebuilt;
}

export interface ResolvedInputs {
  /** `model` itself when every size is known, else a rebuild with the data's sizes (the caller disposes it). */
  readonly model: tf.LayersModel;
  /** The inputs as the model declares them, when some size was unknown (in input order). */
  readonly declared?: readonly DeclaredShape[];
}

/**
 * Fills the unknown sizes of `model`'s input from the tasks' data shapes: every task must give
 * examples of the input's rank, equal to the model where it knows a size, and the same shape as
 * the other tasks (one model is built for one shape). Several inputs read consecutive slices of a
 * flat example, which cannot say how long a slice of unknown size is: refused.
 */
export function resolveInputShapes(
  model: tf.LayersModel,
  dataShapes: ReadonlyMap<string, readonly number[]>,
  tasks: readonly string[],
  describe: (task: string) => string,
): ResolvedInputs {
  const declared: DeclaredShape[] = model.inputs.map((t) => t.shape.slice(1));
  if (declared.every((s) => s.every((d) => d !== null))) return { model };
  const name = (i: number) => model.inputNames[i] ?? model.inputs[i]!.name;
  if (declared.length > 1) {
    const open = declared.flatMap((s, i) => (s.includes(null) ? [`"${name(i)}" ${showShape(s)}`] : []));
    throw new JobSpecError('job', [
      {
        path: 'model',
        message: `input ${open.join(', ')} leaves a size unknown: with several inputs each example is read as consecutive slices of a flat row, which cannot say how long a slice is; give the model fixed input shapes`,
      },
    ]);
  }
  const own = declared[0]!;
  const input = `the model's input "${name(0)}" ${showShape(own)}`;
  const issues: SpecIssue[] = [];
  let chosen: { task: string; shape: readonly number[] } | undefined;
  for (const task of tasks) {
    const shape = dataShapes.get(task) ?? [];
    const where = `tasks.${task}.data`;
    const data = `${describe(task)} has examples of shape [${shape.join(', ')}]`;
    if (shape.length !== own.length) {
      issues.push({ path: where, message: `${data}, but ${input} takes ${own.length} dimension(s) per example, not ${shape.length}` });
      continue;
    }
    const wrong = own.findIndex((d, k) => d !== null && d !== shape[k]);
    if (wrong >= 0) {
      issues.push({ path: where, message: `${data}, but ${input} has size ${own[wrong]} at dimension ${wrong + 1}, not ${shape[wrong]}` });
      continue;
    }
    if (!chosen) chosen = { task, shape };
    else if (shape.join(',') !== chosen.shape.join(',')) {
      issues.push({
        path: where,
        message: `${data}, but task ${chosen.task}'s data has [${chosen.shape.join(', ')}]: ${input} takes its unknown sizes from the data, and every task must agree (the model is built for one shape)`,
      });
    }
  }
  if (issues.length > 0 || !chosen) throw new JobSpecError('job', issues.length > 0 ? issues : [{ path: 'tasks', message: `no task gives ${input} its sizes` }]);
  return { model: rebuiltWith(model, [chosen.shape]), declared };
}
