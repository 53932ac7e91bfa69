// Small valid job specs for unit tests, built through the real validator so defaults are
// applied exactly as for a job file. Tasks are synthetic regressions: no data is loaded.
import { validateJob, type JobSpec } from '../../common/job-spec.js';

/** One layer as written in a job file, e.g. `{ dense: { units: 4 } }`. */
export type RawLayer = Record<string, Record<string, unknown>>;

export interface ModelOptions {
  trunk?: RawLayer[];
  /** Heads in task order; each key also becomes a task. */
  heads: Record<string, RawLayer[]>;
  seed?: number;
}

export function jobWithModel(options: ModelOptions): JobSpec {
  const names = Object.keys(options.heads);
  const tasks = Object.fromEntries(
    names.map((name, i) => [name, { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: i, tasks: Math.max(2, names.length) } }]),
  );
  return validateJob(
    {
      name: 'unit',
      seed: options.seed ?? 0,
      model: { trunk: options.trunk ?? [], heads: options.heads },
      tasks,
      training: { steps: 10, batchSize: 8, optimizer: { name: 'sgd', learningRate: 0.1 } },
    },
    'unit-test',
  );
}

/** Repository root, from a compiled test file in dist/test/<dir>/. */
export function repoRoot(): URL {
  return new URL('../../../', import.meta.url);
}
