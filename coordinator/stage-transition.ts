// Sequential mode, between two stages: every task is evaluated (a row of R), the Fisher of the
// stage's tasks is estimated when a later stage protects them with EWC, and the next stage
// starts with a fresh optimizer (its learning rate) and aggregator (its task count).
import { partRange } from '../common/datasets/sampler.js';
import { bytesPerValue } from '../common/half-precision.js';
import { unitGradientSize } from '../common/parameter-layout.js';
import type { PlannedStage, StagePlan } from '../common/stages.js';
import type { PhaseRunner } from './phase-runner.js';
import type { RunContext } from './run-context.js';
import type { EvalRecord } from './run-records.js';
import type { StageProgress } from './stage-progress.js';
import { combineShards } from './step-math.js';
import type { StepUpdate } from './step-update.js';
import { newUnit } from './units.js';

/** Examples per Fisher unit: each costs one backward pass per example, and a worker heartbeats only between units. */
export const FISHER_SHARD_SIZE = 25;

export interface StageHost {
  readonly params: Float32Array;
  readonly plan: StagePlan;
  readonly stages: StageProgress;
  readonly phases: PhaseRunner;
  readonly update: StepUpdate;
  /** Size of each task's training split (the Fisher's examples come from it). */
  readonly trainSizes: ReadonlyMap<string, number> | undefined;
  /** The run's weights version (the Fisher is computed at it). */
  version(): number;
  evaluate(step: number): Promise<EvalRecord>;
}

function sharedOf(ctx: RunContext, params: Float32Array): Float32Array {
  const { offset, size } = ctx.layout.shared;
  return params.subarray(offset, offset + size);
}

/** Processes the end of `stage` and starts the next one. */
export async function endStage(ctx: RunContext, host: StageHost, stage: PlannedStage): Promise<void> {
  const { plan, stages } = host;
  const row = stages.recordRow(stage, await host.evaluate(stage.end));
  const samples = plan.fisherSamplesAt(stage.end);
  if (samples !== undefined) {
    const fisher = await estimateFisher(ctx, host, stage, samples);
    stages.forgetting.addFisher(fisher, sharedOf(ctx, host.params));
  }
  const next = plan.stages[stage.index + 1]!;
  stages.stagesDone = stage.index + 1;
  host.update.beginStage(next);
  stages.forgetting.beginStage(sharedOf(ctx, host.params));
  const summary = Object.entries(row).map(([t, v]) => `${t} ${stages.metric(t)} ${v.toFixed(4)}`).join(', ');
  ctx.log.info(`stage ${stage.name} done; next: ${next.name}`, { step: stage.end, tasks: next.tasks.join(','), replay: next.replay.join(',') || undefined });
  ctx.emit({ type: 'stage-completed', level: 'info', message: `stage ${stage.name} done after step ${stage.end}: ${summary}`, data: { stage: stage.name, step: stage.end, metrics: row } });
}

/** Sum over the stage's tasks of their diagonal empirical Fisher, shared parameters only. */
async function estimateFisher(ctx: RunContext, host: StageHost, stage: PlannedStage, samples: number): Promise<Float32Array> {
  const { layout } = ctx;
  const shardCount = Math.max(1, Math.ceil(samples / FISHER_SHARD_SIZE));
  const units = stage.tasks.flatMap((task) =>
    Array.from({ length: shardCount }, (_, k) => {
      const count = Math.min(samples, host.trainSizes?.get(task) ?? samples);
      const [from, to] = partRange(count, shardCount, k);
      return newUnit('fisher', task, k, shardCount, to - from, unitGradientSize(layout, task) * bytesPerValue(ctx.compression));
    }),
  );
  const started = performance.now();
  await host.phases.run('fisher', stage.end, units, host.version());
  const total = new Float32Array(layout.shared.size);
  for (const task of stage.tasks) {
    const f = combineShards(units.filter((u) => u.task === task).map((u) => u.train!)).grads;
    for (let p = 0; p < total.length; p++) total[p]! += f[p]!;
  }
  ctx.log.info('EWC Fisher estimated', { stage: stage.name, tasks: stage.tasks.join(','), samples, ms: Math.round(performance.now() - started) });
  return total;
}
