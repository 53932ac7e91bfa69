// What the workers send back, taken in: each result header is checked against the unit it
// claims to be for, its payload decoded and checked for finiteness, and stored in its unit; a
// late copy is read and dropped; a rejected result is counted against its unit and the unit
// computed again (or the run stopped, or the step skipped, as `training.nonFinite` says).
import type { UnitFailed__Output } from '../proto/generated/mtl/v1/UnitFailed.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { ByteLengthError, NonFiniteError, ProtocolViolationError, UnitFailedError, UnknownUnitError } from '../common/errors.js';
import { firstNonFinite } from '../common/finite.js';
import { bytesPerValue, decodeHalf } from '../common/half-precision.js';
import { PayloadPool } from './payload-pool.js';
import type { PhaseRunner } from './phase-runner.js';
import type { RunContext } from './run-context.js';
import { checkResultHeader, isDone, type Phase, type PendingUnit } from './units.js';
import type { ResultSink, WorkerSession } from './worker-session.js';

/** A unit whose results were invalid this many times fails the run. */
export const MAX_INVALID_RESULTS = 3;

/** Each unit whose result was used: its kind, task, worker and reported compute time. */
export type UnitObserver = (unit: { kind: PendingUnit['kind']; task: string; worker: string; computeMs: number }) => void;

function positive(ms: number): number | undefined {
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** An exponential moving mean: recent units count most, one outlier does not swing it. */
function movingMean(mean: number | undefined, sample: number): number {
  return mean === undefined ? sample : 0.8 * mean + 0.2 * sample;
}

/** What a recycled unit's result holds instead of its payload: nothing can reach the reused buffer through it. */
const RECYCLED = new Float32Array(0);

export class ResultIntake {
  /**
   * Train payloads, reused across steps. A buffer goes back (1) when a copy that was only read
   * to be dropped has arrived whole, or (2) at the end of its step (recycleStep) when its task
   * had several shards: that task's gradient is then BlockGramian's own combined row, so
   * nothing that outlives the step (the aggregator, the optimizer, onTaskGradients, the
   * lookahead) was given the payload. A payload whose transfer never completed, or that lost
   * the race while it streamed, is left to the garbage collector: rare, and its lifetime is
   * the session's.
   */
  private readonly pool = new PayloadPool();

  constructor(
    private readonly ctx: RunContext,
    private readonly phases: PhaseRunner,
    private readonly onUnit?: UnitObserver,
  ) {}

  beginResult(session: WorkerSession, header: UnitResult__Output): ResultSink {
    // A compressed payload lands in `wire` (16 bits per value) and is decoded into `payload` once whole.
    const bpv = bytesPerValue(this.ctx.compression);
    const phase = this.phases.current;
    // Late copies are read into pooled buffers too: completeResult gives them back at once.
    const pooled = (discard: boolean) => discard || phase?.kind === 'train';
    const buffer = (bytes: number, discard: boolean): Pick<ResultSink, 'payload' | 'wire'> => {
      if (bytes <= 0) return { payload: null };
      const payload = pooled(discard) ? this.pool.acquire(bytes / bpv) : new Float32Array(bytes / bpv);
      return bpv === 4 ? { payload } : { payload, wire: new Uint16Array(bytes / bpv) };
    };
    if (!phase?.lookup(header.unitId)) {
      // A copy from an earlier phase (a straggler, a backup that lost): read it, drop it.
      const late = this.phases.late(header.unitId);
      if (late !== undefined) {
        if (late.worker !== session.id) throw new UnknownUnitError(`unit ${header.unitId} was not assigned to ${session.id}`);
        if (header.byteLength !== late.bytes) throw new ByteLengthError(`late unit ${header.unitId} announces ${header.byteLength} bytes, expected ${late.bytes}`);
        return { ...buffer(late.bytes, true), discard: true };
      }
    }
    const { unit, late } = checkResultHeader(phase, session.id, header, this.ctx.job);
    return { ...buffer(unit.expectedBytes, late), discard: late };
  }

  /**
   * Values [from, to) of a result's payload are in: decoded, checked for finiteness, and handed
   * to the step's Gramian (phase.blocks) while the rest streams. Late copies are only stored
   * (they are dropped once whole).
   */
  resultChunk(session: WorkerSession, header: UnitResult__Output, sink: ResultSink, from: number, to: number): void {
    if (sink.discard || sink.payload === null) return;
    const phase = this.phases.current;
    const found = phase?.lookup(header.unitId);
    if (!phase || !found || isDone(found.unit) || !found.assignment.active) return;
    const { unit, assignment } = found;
    const values = sink.payload.subarray(from, to);
    if (sink.wire && this.ctx.compression !== 'none') decodeHalf(sink.wire.subarray(from, to), this.ctx.compression, values);
    const bad = firstNonFinite(values);
    if (bad >= 0) throw new NonFiniteError(`unit ${header.unitId} (task ${unit.task}, step ${phase.step}) has a non-finite gradient (${values[bad]}) at index ${from + bad}`);
    const blocks = phase.blocks;
    const index = blocks?.index.get(unit);
    if (blocks && index !== undefined) blocks.gramian.offer(assignment, index, sink.payload, from, to);
  }

  completeResult(session: WorkerSession, header: UnitResult__Output, sink: ResultSink): void {
    session.lastProgressMs = this.ctx.clock();
    const ms = positive(header.computeMs);
    if (ms !== undefined) session.meanUnitMs = movingMean(session.meanUnitMs, ms);
    // A worker that does not report its busy time computed the unit alone.
    const busy = positive(header.busyMs) ?? ms;
    if (busy !== undefined) session.meanBusyMs = movingMean(session.meanBusyMs, busy);
    if (sink.discard) {
      // Read whole and never looked at (resultChunk skips discarded sinks): free for the next result.
      if (sink.payload !== null) this.pool.release(sink.payload);
      this.ctx.counters.discardedResults++;
      this.ctx.log.debug('dropped a late result', { unit: header.unitId, worker: session.label });
      return;
    }
    const phase = this.phases.current;
    const found = phase?.lookup(header.unitId);
    if (!phase || !found || isDone(found.unit) || !found.assignment.active) {
      // While this result streamed, another copy finished first, this copy was withdrawn, or
      // the phase ended (its step is done): the unit's result is already fixed.
      if (found) phase?.blocks?.gramian.drop(found.assignment);
      this.ctx.counters.discardedResults++;
      this.ctx.log.debug('dropped a result that lost the race', { unit: header.unitId, worker: session.label });
      return;
    }
    const { unit, assignment } = found;
    if (sink.payload !== null) {
      // Decoded and checked chunk by chunk as they came (resultChunk).
      unit.train = { sampleCount: header.sampleCount, loss: header.loss, grads: sink.payload };
      const index = phase.blocks?.index.get(unit);
      if (index !== undefined) phase.blocks!.gramian.accept(assignment, index, sink.payload);
    } else {
      const metrics: Record<string, number> = {};
      if (unit.kind === 'eval') for (const m of this.ctx.job.tasks[unit.task]!.metrics) metrics[m] = header.metrics[m]!;
      unit.eval = { samples: header.sampleCount, loss: header.loss, metrics };
    }
    unit.computeMs = header.computeMs;
    session.unitsDone++;
    this.onUnit?.({ kind: unit.kind, task: unit.task, worker: session.name || session.id, computeMs: header.computeMs });
    this.phases.cancel(phase.complete(unit, assignment), 'done by another worker');
    if (--phase.remaining === 0) phase.resolve();
  }

  /**
   * The step of `units` is over: its update applied, its record made. The payloads of tasks
   * with several shards go back to the pool; the units keep their loss and sample count.
   */
  recycleStep(units: readonly PendingUnit[]): void {
    for (const unit of units) {
      if (unit.kind !== 'train' || unit.shardCount < 2 || unit.train === undefined) continue;
      this.pool.release(unit.train.grads);
      unit.train = { ...unit.train, grads: RECYCLED };
    }
  }

  /** Buffers the pool handed out again instead of allocating (tests, stats). */
  get reusedPayloads(): number {
    return this.pool.reused;
  }

  onUnitFailed(session: WorkerSession, failure: UnitFailed__Output): void {
    if (failure.unitId === '') {
      session.leavingReason = `${failure.code}: ${failure.message}`;
      this.ctx.log.error('worker is leaving', { worker: session.label, code: failure.code, error: failure.message });
      return;
    }
    const found = this.phases.current?.lookup(failure.unitId);
    if (!found || found.assignment.worker !== session.id || !found.assignment.active) {
      // Rejected like any bad message (logged, counted, against the session's budget).
      throw new UnknownUnitError(`failure report for unit ${failure.unitId}, which ${session.id} does not hold`);
    }
    // Computing the same unit elsewhere would fail the same way: the inputs are the same.
    this.ctx.fail(new UnitFailedError(`unit ${failure.unitId} (task ${found.unit.task}) failed on worker ${session.label}: ${failure.code}: ${failure.message}`));
  }

  onRejected(session: WorkerSession, error: Error, unitId: string | undefined): void {
    this.ctx.counters.rejectedMessages++;
    const phase = this.phases.current;
    const found = unitId === undefined ? undefined : phase?.lookup(unitId);
    if (!phase || !found) return;
    const { unit, assignment } = found;
    if (assignment.worker !== session.id || !assignment.active || isDone(unit)) return;
    // Whatever of this copy the step's Gramian used is computed again from another copy.
    phase.blocks?.gramian.drop(assignment);
    const policy = this.ctx.job.training.nonFinite;
    if (error instanceof NonFiniteError) {
      if (policy === 'fail') {
        // Recomputing would give the same numbers (determinism): the training diverged.
        this.ctx.fail(new NonFiniteError(`training diverged: ${error.message}; try a lower learning rate (training.nonFinite: fail; skip-unit or skip-step go on)`));
        return;
      }
      if (policy === 'skip-step' && phase.kind === 'train') {
        this.skipStep(phase, error);
        return;
      }
      // skip-unit (and evaluation or Fisher units, which have no update to skip): computed again, below.
    }
    unit.invalidResults++;
    if (unit.invalidResults >= MAX_INVALID_RESULTS) {
      const what = `unit ${unitId} (task ${unit.task}, shard ${unit.shard}): ${unit.invalidResults} invalid results, last: ${error.message}`;
      this.ctx.fail(error instanceof NonFiniteError ? new NonFiniteError(`training diverged: ${what} (training.nonFinite: ${policy})`) : new ProtocolViolationError(what));
      return;
    }
    if (error instanceof NonFiniteError) this.ctx.counters.skippedUnits++;
    assignment.active = false;
    this.ctx.log.warn('reassigning unit after an invalid result', { unit: unitId, worker: session.label });
    if (!unit.assignments.some((a) => a.active)) {
      this.ctx.counters.reassignedUnits++;
      this.phases.dispatch([unit]);
    }
  }

  /**
   * `training.nonFinite: skip-step`: the train phase ends now without an update. Copies still
   * running are cancelled; their results, if they come, are read and dropped.
   */
  private skipStep(phase: Phase, error: Error): void {
    if (phase.skipped !== undefined) return;
    phase.skipped = error.message;
    const running = phase.units.flatMap((u) => u.assignments.filter((a) => a.active));
    for (const unit of phase.units) for (const a of unit.assignments) a.active = false;
    this.phases.cancel(running, 'step skipped');
    phase.resolve();
  }
}
