// The units of one phase (a training step or an evaluation), who holds them, and the checks
// every result header must pass before its payload is accepted.
//
// A unit may be assigned more than once: again after its worker died, left or sent an
// invalid result, and as a backup copy when its worker stalls. Each assignment has its own
// id; the first valid result for a unit wins and every other copy of it becomes "late": its
// result, when it comes, is read and dropped (counted), never applied. Pure logic, no I/O.
import type { UnitKind } from '../proto/generated/mtl/v1/UnitKind.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { ByteLengthError, NonFiniteError, ProtocolViolationError, StaleMessageError, UnknownUnitError } from '../common/errors.js';
import { partRange } from '../common/datasets/sampler.js';
import type { JobSpec } from '../common/job-spec.js';
import type { StagePlan } from '../common/stages.js';
import type { BlockGramian } from './aggregation/block-gramian.js';
import type { ShardResult } from './step-math.js';

export interface Assignment {
  id: string;
  worker: string;
  assignedAt: number;
  backup: boolean;
  /** False once the unit is done elsewhere, or the worker died, left or sent garbage. */
  active: boolean;
}

export type UnitKindName = 'train' | 'eval' | 'fisher' | 'lookahead';

export interface PendingUnit {
  kind: UnitKindName;
  task: string;
  shard: number;
  shardCount: number;
  expectedSamples: number;
  expectedBytes: number;
  /** Invalid results received for this unit so far. */
  invalidResults: number;
  assignments: Assignment[];
  /** Train and Fisher units: the payload (gradients, or squared per-example gradients). */
  train?: ShardResult;
  eval?: { samples: number; loss: number; metrics: Record<string, number> };
  /** Compute time reported by the worker whose result was used, and that worker. */
  computeMs: number;
  doneBy?: string;
}

export const WIRE_KIND: Record<UnitKindName, UnitKind> = { train: 'UNIT_KIND_TRAIN', eval: 'UNIT_KIND_EVAL', fisher: 'UNIT_KIND_FISHER', lookahead: 'UNIT_KIND_LOOKAHEAD' };

export function newUnit(kind: PendingUnit['kind'], task: string, shard: number, shardCount: number, expectedSamples: number, expectedBytes: number): PendingUnit {
  return { kind, task, shard, shardCount, expectedSamples, expectedBytes, invalidResults: 0, assignments: [], computeMs: 0 };
}

/**
 * The units of a step's batches: each of `tasks` gets its batch of `step` cut into shards (as
 * the stage plan says), with `bytesOf(task)` of payload per result.
 */
export function batchUnits(plan: StagePlan, step: number, tasks: readonly string[], kind: 'train' | 'lookahead', bytesOf: (task: string) => number): PendingUnit[] {
  return tasks.flatMap((task) => {
    const { batchSize, shards } = plan.unitShape(step, task)!;
    return Array.from({ length: shards }, (_, k) => {
      const [from, to] = partRange(batchSize, shards, k);
      return newUnit(kind, task, k, shards, to - from, bytesOf(task));
    });
  });
}

export function isDone(unit: PendingUnit): boolean {
  return unit.train !== undefined || unit.eval !== undefined;
}

/**
 * Numbers the assignments of one run. Shared by all its phases, so that an id never comes back:
 * a late result of an earlier phase (a straggler, a losing backup) can then never be mistaken
 * for the result of a live assignment of a later one, even of the same step and kind (the
 * lookahead phases of one step, a stage's evaluations).
 */
export class AssignmentIds {
  private serial = 0;
  next(): number {
    return ++this.serial;
  }
}

export class Phase {
  private readonly byId = new Map<string, { unit: PendingUnit; assignment: Assignment }>();
  remaining: number;
  /** Set when the phase ended early under `training.nonFinite: skip-step`: why. */
  skipped: string | undefined;
  /** A train phase: its Gramian, accumulated as the results stream in (BlockGramian), with each unit's index there. */
  blocks: { gramian: BlockGramian; index: ReadonlyMap<PendingUnit, number> } | undefined;

  constructor(
    readonly kind: UnitKindName,
    readonly step: number,
    readonly version: number,
    readonly units: readonly PendingUnit[],
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
    private readonly serials: AssignmentIds,
  ) {
    this.remaining = units.length;
  }

  /** A new assignment of `unit` to `worker`, with an id no other assignment of the run ever had. */
  assign(unit: PendingUnit, worker: string, now: number, how: { backup: boolean } = { backup: false }): Assignment {
    const { backup } = how;
    const id = `${{ train: 's', eval: 'e', fisher: 'f', lookahead: 'l' }[this.kind]}${this.step}.${unit.task}.${unit.shard}.${this.serials.next()}`;
    const assignment: Assignment = { id, worker, assignedAt: now, backup, active: true };
    unit.assignments.push(assignment);
    this.byId.set(id, { unit, assignment });
    return assignment;
  }

  lookup(id: string): { unit: PendingUnit; assignment: Assignment } | undefined {
    return this.byId.get(id);
  }

  /** Marks `unit` done by `assignment`; returns the other copies still running (to cancel). */
  complete(unit: PendingUnit, assignment: Assignment): Assignment[] {
    const others = unit.assignments.filter((a) => a.active && a !== assignment);
    for (const a of unit.assignments) a.active = false;
    unit.doneBy = assignment.worker;
    return others;
  }

  /** Drops every active assignment held by `worker`; returns the units left with no copy running. */
  release(worker: string): PendingUnit[] {
    const orphaned: PendingUnit[] = [];
    for (const unit of this.units) {
      if (isDone(unit)) continue;
      let had = false;
      for (const a of unit.assignments) {
        if (a.active && a.worker === worker) {
          a.active = false;
          had = true;
        }
      }
      if (had && !unit.assignments.some((a) => a.active)) orphaned.push(unit);
    }
    return orphaned;
  }

  /** Units not done and with no copy running. */
  unassigned(): PendingUnit[] {
    return this.units.filter((u) => !isDone(u) && !u.assignments.some((a) => a.active));
  }

  /** Active assignments, per worker. */
  activeByWorker(): Map<string, Assignment[]> {
    const out = new Map<string, Assignment[]>();
    for (const unit of this.units) {
      for (const a of unit.assignments) {
        if (!a.active) continue;
        const list = out.get(a.worker) ?? [];
        list.push(a);
        out.set(a.worker, list);
      }
    }
    return out;
  }

  /** Every assignment id of this phase and the payload size its result carries (for late results). */
  ids(): Array<[string, number]> {
    return [...this.byId].map(([id, { unit }]) => [id, unit.expectedBytes]);
  }
}

/**
 * Checks a result header. Returns the unit and assignment it is for, `late` when the unit is
 * already done or the copy was withdrawn (the payload is then read and dropped), or throws
 * the matching rejection error.
 */
export function checkResultHeader(
  phase: Phase | undefined,
  workerId: string,
  header: UnitResult__Output,
  job: JobSpec,
): { unit: PendingUnit; assignment: Assignment; late: boolean } {
  const found = phase?.lookup(header.unitId);
  if (!phase || !found) throw new UnknownUnitError(`unit ${header.unitId} is not outstanding`);
  const { unit, assignment } = found;
  if (assignment.worker !== workerId) throw new UnknownUnitError(`unit ${header.unitId} is not assigned to ${workerId}`);
  if (header.kind !== WIRE_KIND[unit.kind]) throw new ProtocolViolationError(`unit ${header.unitId} is a ${unit.kind} unit, result says ${header.kind}`);
  if (header.step !== phase.step || header.weightsVersion !== phase.version) {
    throw new StaleMessageError(`result for step ${header.step} at weights v${header.weightsVersion}; current: step ${phase.step}, v${phase.version}`);
  }
  if (header.task !== unit.task || header.shard !== unit.shard) {
    throw new ProtocolViolationError(`unit ${header.unitId} is task ${unit.task} shard ${unit.shard}, result says ${header.task} shard ${header.shard}`);
  }
  if (header.sampleCount !== unit.expectedSamples) {
    throw new ProtocolViolationError(`unit ${header.unitId} covers ${unit.expectedSamples} examples, result says ${header.sampleCount}`);
  }
  if (header.byteLength !== unit.expectedBytes) {
    throw new ByteLengthError(`unit ${header.unitId} announces ${header.byteLength} bytes, the layout needs ${unit.expectedBytes}`);
  }
  const late = isDone(unit) || !assignment.active;
  if (late) return { unit, assignment, late };
  if (!Number.isFinite(header.loss)) throw new NonFiniteError(`unit ${header.unitId} (task ${unit.task}, step ${phase.step}) reports loss ${header.loss}`);
  if (unit.kind === 'eval') {
    for (const m of job.tasks[unit.task]!.metrics) {
      if (!Number.isFinite(header.metrics[m])) throw new ProtocolViolationError(`eval unit ${header.unitId} lacks a finite ${m}`);
    }
  }
  return { unit, assignment, late };
}
