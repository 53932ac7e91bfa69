// The units of one phase (a training step or an evaluation) and the checks every result
// header must pass before its payload is accepted: the unit exists, is outstanding, is
// assigned to the sending worker, and the header agrees with what was assigned.
import type { UnitKind } from '../proto/generated/mtl/v1/UnitKind.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { ByteLengthError, NonFiniteError, ProtocolViolationError, StaleMessageError, UnknownUnitError } from '../common/errors.js';
import type { JobSpec } from '../common/job-spec.js';
import type { ShardResult } from './step-math.js';

export interface PendingUnit {
  id: string;
  kind: 'train' | 'eval';
  task: string;
  shard: number;
  shardCount: number;
  expectedSamples: number;
  expectedBytes: number;
  worker: string | undefined;
  attempts: number;
  train?: ShardResult;
  eval?: { samples: number; loss: number; metrics: Record<string, number> };
  computeMs: number;
}

export interface Phase {
  kind: 'train' | 'eval';
  step: number;
  version: number;
  units: Map<string, PendingUnit>;
  remaining: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export const WIRE_KIND: Record<PendingUnit['kind'], UnitKind> = { train: 'UNIT_KIND_TRAIN', eval: 'UNIT_KIND_EVAL' };

export function newUnit(kind: PendingUnit['kind'], task: string, shard: number, shardCount: number, expectedSamples: number, expectedBytes: number): PendingUnit {
  return { id: '', kind, task, shard, shardCount, expectedSamples, expectedBytes, worker: undefined, attempts: 0, computeMs: 0 };
}

/** A new id per attempt, so a late result for an earlier attempt can never be taken for the current one. */
export function unitId(phase: Pick<Phase, 'kind' | 'step'>, unit: PendingUnit): string {
  return `${phase.kind === 'train' ? 's' : 'e'}${phase.step}.${unit.task}.${unit.shard}.${unit.attempts}`;
}

/** Returns the outstanding unit a result header is for; throws the matching rejection error otherwise. */
export function checkResultHeader(phase: Phase | undefined, workerId: string, header: UnitResult__Output, job: JobSpec): PendingUnit {
  const unit = phase?.units.get(header.unitId);
  if (!phase || !unit || unit.train || unit.eval) throw new UnknownUnitError(`unit ${header.unitId} is not outstanding`);
  if (unit.worker !== workerId) throw new UnknownUnitError(`unit ${header.unitId} is not assigned to ${workerId}`);
  if (header.kind !== WIRE_KIND[unit.kind]) throw new ProtocolViolationError(`unit ${unit.id} is a ${unit.kind} unit, result says ${header.kind}`);
  if (header.step !== phase.step || header.weightsVersion !== phase.version) {
    throw new StaleMessageError(`result for step ${header.step} at weights v${header.weightsVersion}; current: step ${phase.step}, v${phase.version}`);
  }
  if (header.task !== unit.task || header.shard !== unit.shard) {
    throw new ProtocolViolationError(`unit ${unit.id} is task ${unit.task} shard ${unit.shard}, result says ${header.task} shard ${header.shard}`);
  }
  if (header.sampleCount !== unit.expectedSamples) {
    throw new ProtocolViolationError(`unit ${unit.id} covers ${unit.expectedSamples} examples, result says ${header.sampleCount}`);
  }
  if (!Number.isFinite(header.loss)) throw new NonFiniteError(`unit ${unit.id} (task ${unit.task}, step ${phase.step}) reports loss ${header.loss}`);
  if (header.byteLength !== unit.expectedBytes) {
    throw new ByteLengthError(`unit ${unit.id} announces ${header.byteLength} bytes, the layout needs ${unit.expectedBytes}`);
  }
  if (unit.kind === 'eval') {
    for (const m of job.tasks[unit.task]!.metrics) {
      if (!Number.isFinite(header.metrics[m])) throw new ProtocolViolationError(`eval unit ${unit.id} lacks a finite ${m}`);
    }
  }
  return unit;
}
