// The trained model as a run leaves it (model/): one TF.js Layers model with an output per
// task, and in its metadata what a user of it needs: each task's loss, target and class labels,
// and what must be done to raw inputs before predict().
import { graphModelWithParameters } from '../common/graph-layout.js';
import { isTableSpec } from '../common/job-schema.js';
import { buildLayersModel, saveLayersModel } from '../common/model-files.js';
import type { PreparedRun } from './prepare-run.js';

/** Writes the model with `params` to `dir` (model.json and its weights). */
export async function saveTrainedModel(prepared: PreparedRun, runId: string, params: Float32Array, dir: string): Promise<void> {
  const job = prepared.loaded.spec;
  // A model of the user's keeps its own topology, layer and output names (plus the YAML heads).
  const model = prepared.layout.graph ? graphModelWithParameters(prepared.layout, params) : buildLayersModel(prepared.layout, job.name, params);
  try {
    await saveLayersModel(model, dir, {
      mtl: {
        runId,
        tasks: Object.fromEntries(
          [...prepared.bindings].map(([t, b]) => [t, { loss: job.tasks[t]!.loss, target: b.target, classes: b.dataset.targets[b.target]?.classes ?? null }]),
        ),
        // What a server must do to raw inputs before predict(): the table features' train statistics.
        inputs: Object.fromEntries(
          Object.entries(job.tasks).flatMap(([t, s]) => {
            const d = prepared.bindings.get(t)!.dataset as { normalization?: { mean: readonly number[]; std: readonly number[] } };
            return isTableSpec(s.data) && d.normalization ? [[t, { features: s.data.features, ...d.normalization }]] : [];
          }),
        ),
      },
    });
  } finally {
    model.dispose();
  }
}
