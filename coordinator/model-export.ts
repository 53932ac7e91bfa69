// The trained model as a run leaves it (model/): one TF.js Layers model with an output per
// task, and in its metadata what a user of it needs to predict from raw rows
// (common/trained-model.ts reads it): each task's loss, target, class labels, output and
// inputs, and for each tabular data source the column transforms its examples went through.
import type * as tf from '@tensorflow/tfjs';
import type { ColumnTransform } from '../common/datasets/types.js';
import { graphModelWithParameters } from '../common/graph-layout.js';
import { buildLayersModel, saveLayersModel } from '../common/model-files.js';
import { INPUT_LAYER_NAME, taskInputName, type ParameterLayout } from '../common/parameter-layout.js';
import type { ModelMetadata } from '../common/trained-model.js';
import type { PreparedRun } from './prepare-run.js';

/** The model inputs task `task` reads, in the order its example's slices feed them. */
function taskInputs(layout: ParameterLayout, task: string): string[] {
  if (layout.graph) return layout.graph.inputs.map((i) => i.name);
  if (layout.adapters.has(task)) return [taskInputName(task)];
  return layout.namedInputs.length > 0 ? layout.namedInputs.map((n) => n.name) : [INPUT_LAYER_NAME];
}

export function modelMetadata(prepared: PreparedRun, runId: string, model: tf.LayersModel): ModelMetadata {
  const job = prepared.loaded.spec;
  const { layout } = prepared;
  const outputLayers = model.outputLayers.map((l) => l.name);
  const tasks: ModelMetadata['tasks'] = {};
  const sources = new Map<string, { tasks: string[]; columns: ColumnTransform[] }>();
  layout.tasks.forEach((t, i) => {
    const b = prepared.bindings.get(t)!;
    const outputIndex = layout.graph ? outputLayers.indexOf(layout.graph.outputs.get(t)!.layer) : i;
    const info = b.dataset.targets[b.target];
    const classes = info?.classes;
    tasks[t] = {
      loss: job.tasks[t]!.loss,
      target: b.target,
      classes: classes ? [...classes] : null,
      outputIndex,
      inputs: taskInputs(layout, t),
      // A target of several columns: its columns (one output each), and a multi-label target's labels per column.
      ...(info?.columns ? { targetColumns: [...info.columns] } : {}),
      ...(info?.columnClasses ? { columnClasses: info.columnClasses.map(([a, b]): [string, string] => [a, b]) } : {}),
    };
    const columns = b.dataset.columns;
    if (!columns) return;
    const source = sources.get(b.source);
    if (source) source.tasks.push(t);
    else sources.set(b.source, { tasks: [t], columns: [...columns] });
  });
  return { runId, tasks, ...(sources.size > 0 ? { preprocessing: [...sources.values()] } : {}) };
}

/** Writes the model with `params` to `dir` (model.json and its weights). */
export async function saveTrainedModel(prepared: PreparedRun, runId: string, params: Float32Array, dir: string): Promise<void> {
  const job = prepared.loaded.spec;
  // A model of the user's keeps its own topology, layer and output names (plus the YAML heads).
  const model = prepared.layout.graph ? graphModelWithParameters(prepared.layout, params) : buildLayersModel(prepared.layout, job.name, params);
  try {
    await saveLayersModel(model, dir, { mtl: modelMetadata(prepared, runId, model) });
  } finally {
    model.dispose();
  }
}
