// A job's compute environment, built in the compute thread: its data, parameter layout, model
// runner (on the backend in use, with the job's compute settings) and unit computer.
import path from 'node:path';
import { bindingTargetWidth, bindTasks, parseDataPlans } from '../common/datasets/index.js';
import { ProtocolViolationError } from '../common/errors.js';
import { usesGraphPath, type JobSpec } from '../common/job-spec.js';
import { layoutForGraph } from '../common/graph-layout.js';
import { modelFromGraphConfig, type GraphSpec } from '../common/model-graph.js';
import { layoutForData, type ParameterLayout } from '../common/parameter-layout.js';
import { buildModuleModel } from '../common/user-model.js';
import { GraphRunner } from './graph-runner.js';
import { opsModeFor } from './layer-ops.js';
import { ModelRunner, type UnitRunner } from './model-runner.js';
import { UnitComputer } from './unit-compute.js';

export interface JobEnvironment {
  job: JobSpec;
  layout: ParameterLayout;
  runner: UnitRunner;
  computer: UnitComputer;
}

/** A job's data, layout, model runner (on `backend`, with the job's compute settings) and unit computer. */
export function buildComputeEnvironment(job: JobSpec, jobDir: string, backend: string, modelJson = '', dataPlanJson = ''): JobEnvironment {
  const bindings = bindTasks(job.tasks, jobDir, parseDataPlans(dataPlanJson));
  if (bindings.size === 0) throw new ProtocolViolationError('job has no tasks');
  const shapes = new Map([...bindings].map(([t, b]) => [t, b.dataset.inputShape]));
  const objectives = new Map(Object.entries(job.tasks).map(([t, s]) => [t, { loss: s.loss, metrics: s.metrics, targetWidth: bindingTargetWidth(bindings.get(t)!) }] as const));
  if (usesGraphPath(job)) {
    // A model of the user's (or YAML beyond the fast path): rebuilt from the composition the coordinator sent (Welcome.model_json).
    if (!modelJson) throw new ProtocolViolationError('the job has a model of the user but the Welcome carries no model_json');
    // A model module registers its custom layer classes when it builds: build it once here too.
    if (job.model.module !== undefined) buildModuleModel(path.resolve(jobDir, job.model.module)).dispose();
    const spec = JSON.parse(modelJson) as GraphSpec;
    const model = modelFromGraphConfig(spec.config);
    let layout: ParameterLayout;
    try {
      layout = layoutForGraph(job, model, spec, shapes);
    } finally {
      model.dispose();
    }
    const runner = new GraphRunner(layout, objectives);
    return { job, layout, runner, computer: new UnitComputer(job, bindings, runner) };
  }
  const layout = layoutForData(job, shapes);
  const runner = new ModelRunner(layout, objectives, opsModeFor(backend), { fastPath: job.compute.fastPath });
  return { job, layout, runner, computer: new UnitComputer(job, bindings, runner) };
}
