// The synchronous step loop of DESIGN.md: units → workers, results validated and combined
// in fixed order, aggregation of the shared gradients, optimizer, new weights broadcast
// (encoded once); the evaluation phases; and the run's membership: workers join and leave
// at any time, a dead, departed or stalled worker's units go to others (a result depends
// only on its unit, never on who computed it, so this never changes the weights).
import type { Goodbye__Output } from '../proto/generated/mtl/v1/Goodbye.js';
import type { Hello__Output } from '../proto/generated/mtl/v1/Hello.js';
import type { UnitFailed__Output } from '../proto/generated/mtl/v1/UnitFailed.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { partRange } from '../common/datasets/sampler.js';
import {
  ByteLengthError,
  IllegalStateError,
  NonFiniteError,
  ProtocolViolationError,
  RunAbortedError,
  UnitFailedError,
  UnknownUnitError,
  UnsupportedProtocolError,
  WorkerLostError,
} from '../common/errors.js';
import { taskNames, type JobSpec } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import { unitGradientSize, type ParameterLayout } from '../common/parameter-layout.js';
import { MAX_CHUNK_BYTES, PROTOCOL_VERSION } from '../common/protocol.js';
import { firstNonFinite } from '../common/finite.js';
import { StagePlan, type PlannedStage } from '../common/stages.js';
import { bytesPerValue, decodeHalf, type Compression } from '../common/half-precision.js';
import { createAggregator } from './aggregation/registry.js';
import type { Aggregator } from './aggregation/types.js';
import { zeroCounters, type CheckpointExtras, type FaultCounters } from './checkpoints.js';
import { ConflictMonitor } from './conflict-monitor.js';
import { deadWorkers, stalledWorkers, type ObservedWorker } from './failure-detector.js';
import { StageProgress, type ContinualSummary } from './stage-progress.js';
import { createOptimizer, type Optimizer, type OptimizerState } from '../common/optimizers.js';
import type { EvalRecord, RunEvent, StepRecord, TaskEval, TrainingOutcome } from './run-records.js';
import { placeUnits } from './scheduler.js';
import { combineShards, gradientDiagnostics, gramian } from './step-math.js';
import { AffinityTracker, affinityRecord, firstOrderAffinity, type AffinityState } from './task-affinity.js';
import { checkResultHeader, isDone, newUnit, Phase, WIRE_KIND, type Assignment, type PendingUnit } from './units.js';
import { WeightsBroadcast } from './weights-broadcast.js';
import type { ResultSink, SessionHandler, WorkerSession } from './worker-session.js';

/** Held-out splits are evaluated in shards of at most this many examples, whatever the worker count. */
export const EVAL_SHARD_SIZE = 2000;
/** A unit whose results were invalid this many times fails the run. */
export const MAX_INVALID_RESULTS = 3;
/** How often the failure detector looks at the workers. */
const TICK_MS = 200;
/** Ids of earlier phases whose late results are still recognised (and dropped quietly). */
const LATE_IDS_KEPT = 4096;

/** Lookahead weights versions (exact task affinity) are numbered apart from the run's. */
const LOOKAHEAD_VERSION_BASE = 0x8000_0000;
const LOOKAHEAD_VERSIONS = 0x4000_0000;

/** Examples per Fisher unit: each costs one backward pass per example, and a worker heartbeats only between units. */
export const FISHER_SHARD_SIZE = 25;

export type RunState = 'created' | 'waiting-for-workers' | 'training' | 'evaluating' | 'finished' | 'failed';

/** Where a resumed run continues from (params, optimizer and aggregator state are restored by the caller). */
export interface ResumePoint {
  step: number;
  version: number;
  samples: number;
  trainMs: number;
  counters: FaultCounters;
  /** Running sums of the affinity diagnostics, so the run's mean covers every step. */
  affinity?: AffinityState;
  /** Sequential mode: stages finished, their evaluations, and the forgetting penalties' arrays. */
  extras?: CheckpointExtras;
}

/** Everything needed to continue the run exactly: taken only between steps. */
export interface RunSnapshot extends ResumePoint {
  params: Float32Array;
  optimizer: OptimizerState;
  aggregator: unknown;
}

export interface TrainingRunOptions {
  job: JobSpec;
  jobDir: string;
  runId: string;
  layout: ParameterLayout;
  initialParams: Float32Array;
  aggregator: Aggregator;
  optimizer: Optimizer;
  /** Size of each task's held-out split. */
  testSizes: ReadonlyMap<string, number>;
  /** Size of each task's training split (Fisher units of sequential mode); default: large enough. */
  trainSizes?: ReadonlyMap<string, number>;
  logger: Logger;
  /** Training starts once this many workers have joined. */
  minWorkers: number;
  /** How long to wait for workers (at the start, or when all have gone) before failing. */
  waitForWorkersMs: number;
  maxChunkBytes?: number;
  /** Continue from a checkpoint instead of step 0. */
  resume?: ResumePoint;
  /** Called every `job.checkpoint.every` steps with a snapshot to store. */
  saveCheckpoint?: (snapshot: RunSnapshot) => Promise<void>;
  /** Wall clock in ms (tests shrink time with it). */
  clock?: () => number;
  onStep?: (record: StepRecord) => void;
  onEval?: (record: EvalRecord) => void;
  onStateChange?: (state: RunState) => void;
  /** Observes each step's combined per-task gradients (trunk then head) before aggregation. */
  onTaskGradients?: (step: number, grads: ReadonlyMap<string, Float32Array>) => void;
  /** Lifecycle and warning events (events.jsonl). */
  onEvent?: (event: RunEvent) => void;
  /** Each unit whose result was used: its kind, task, worker and reported compute time (dashboard, /metrics). */
  onUnit?: (unit: { kind: PendingUnit['kind']; task: string; worker: string; computeMs: number }) => void;
}

/** The largest total compute time of one worker in a phase: the part of its wall time compute explains. */
function criticalCompute(units: readonly PendingUnit[]): number {
  const perWorker = new Map<string, number>();
  for (const u of units) perWorker.set(u.doneBy ?? '', (perWorker.get(u.doneBy ?? '') ?? 0) + u.computeMs);
  return Math.max(0, ...perWorker.values());
}

export class TrainingRun implements SessionHandler {
  private state: RunState = 'created';
  private readonly params: Float32Array;
  private version: number;
  private step: number;
  private completedSteps: number;
  private samples: number;
  private trainMs: number;
  readonly counters: FaultCounters;
  private readonly workers = new Map<string, WorkerSession>();
  private readonly affinity = new Map<string, string>();
  private phase: Phase | undefined;
  private readonly lateIds = new Map<string, { worker: string; bytes: number }>();
  private failure: Error | undefined;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private noWorkersTimer: NodeJS.Timeout | undefined;
  /** The state to return to when a worker joins after all had gone. */
  private resumeStateAfterWait: RunState = 'training';
  private ticker: NodeJS.Timeout | undefined;
  private readonly broadcast: WeightsBroadcast;
  private readonly log: Logger;
  private readonly tasks: string[];
  private readonly departed: TrainingOutcome['workers'] = [];
  private nextWorker = 1;
  private lastLosses: Record<string, number> = {};
  private conflicts: ConflictMonitor;
  private readonly taskAffinity: AffinityTracker;
  /** Exact lookahead affinity (diagnostics.exactAffinityEvery), averaged over the steps it was measured. */
  private readonly exactAffinity: AffinityTracker;
  private lookaheadSerial = 0;
  /** transport.compression: how gradients arrive and weights leave. */
  private readonly compression: Compression;
  private readonly plan: StagePlan;
  private optimizer: Optimizer;
  private aggregator: Aggregator;
  private readonly stages: StageProgress;
  private readonly notesSeen = new Set<string>();
  private readonly clock: () => number;
  private update: Float32Array | undefined;
  private hasStarted = false;
  private midUpdate = false;
  /** Messages rejected (logged, counted, never applied); also `counters.rejectedMessages`. */
  get rejectedMessages(): number {
    return this.counters.rejectedMessages;
  }

  constructor(private readonly opts: TrainingRunOptions) {
    this.params = opts.initialParams.slice();
    this.log = opts.logger;
    this.tasks = taskNames(opts.job);
    this.clock = opts.clock ?? Date.now;
    this.version = opts.resume?.version ?? 0;
    this.completedSteps = opts.resume?.step ?? 0;
    this.step = this.completedSteps;
    this.samples = opts.resume?.samples ?? 0;
    this.trainMs = opts.resume?.trainMs ?? 0;
    this.counters = { ...zeroCounters(), ...opts.resume?.counters };
    this.compression = opts.job.transport.compression;
    this.broadcast = new WeightsBroadcast(opts.layout, opts.maxChunkBytes ?? MAX_CHUNK_BYTES, this.compression);
    this.broadcast.update(this.params, this.version);
    this.taskAffinity = new AffinityTracker(this.tasks.length, opts.job.training.optimizer.learningRate);
    if (opts.resume?.affinity) this.taskAffinity.restore(opts.resume.affinity);
    this.exactAffinity = new AffinityTracker(this.tasks.length, opts.job.training.optimizer.learningRate);
    if (opts.resume?.affinity?.exact) this.exactAffinity.restore(opts.resume.affinity.exact);
    this.plan = new StagePlan(opts.job);
    this.stages = new StageProgress(opts.job, this.plan, opts.layout);
    if (opts.resume?.extras) this.stages.restore(opts.resume.extras);
    else if (this.plan.sequential) this.stages.forgetting.beginStage(this.sharedParams());
    // The optimizer and aggregator given are the current stage's (restored from the checkpoint
    // by the caller); the optimizer takes the stage's learning rate.
    const stage = this.plan.stages[this.stages.stagesDone] ?? this.plan.stageAt(this.completedSteps);
    this.optimizer = this.stageOptimizer(stage);
    this.optimizer.restore(opts.optimizer.state());
    this.aggregator = opts.aggregator;
    this.conflicts = new ConflictMonitor(this.plan.activeTasks(stage.start), opts.job.diagnostics.conflictWindow);
  }

  private sharedParams(): Float32Array {
    const { offset, size } = this.opts.layout.shared;
    return this.params.subarray(offset, offset + size);
  }

  private stageOptimizer(stage: PlannedStage): Optimizer {
    const spec = this.opts.job.training.optimizer;
    return createOptimizer({ ...spec, learningRate: stage.spec.learningRate ?? spec.learningRate }, this.opts.layout.totalSize);
  }

  /** Mean first-order task affinity over the steps so far (TAG), `{ from: { to: Z } }`. */
  affinitySummary(): { estimate: 'first-order'; steps: number; mean: Record<string, Record<string, number>>; exact?: { steps: number; mean: Record<string, Record<string, number>> } } {
    return {
      estimate: 'first-order',
      steps: this.taskAffinity.observedSteps,
      mean: affinityRecord(this.tasks, this.taskAffinity.mean()),
      ...(this.exactAffinity.observedSteps > 0 ? { exact: { steps: this.exactAffinity.observedSteps, mean: affinityRecord(this.tasks, this.exactAffinity.mean()) } } : {}),
    };
  }

  private emit(event: RunEvent): void {
    this.opts.onEvent?.(event);
  }

  get currentState(): RunState {
    return this.state;
  }

  get currentStep(): number {
    return this.step;
  }

  /** Steps whose update has been applied (currentStep lags it while the loop evaluates or checkpoints). */
  get stepsCompleted(): number {
    return this.completedSteps;
  }

  get weightsVersion(): number {
    return this.version;
  }

  get losses(): Readonly<Record<string, number>> {
    return this.lastLosses;
  }

  get sessions(): readonly WorkerSession[] {
    return [...this.workers.values()];
  }

  /** Workers that were members and are gone (left, lost, or dismissed at the end), oldest first. */
  get departedWorkers(): readonly TrainingOutcome['workers'][number][] {
    return this.departed;
  }

  newWorkerId(): string {
    return `w${this.nextWorker++}`;
  }

  /** True once training has begun (the first wait for workers is over). */
  get started(): boolean {
    return this.hasStarted;
  }

  private setState(state: RunState): void {
    if (state === 'training') this.hasStarted = true;
    this.state = state;
    this.opts.onStateChange?.(state);
  }

  private get active(): boolean {
    return this.state === 'training' || this.state === 'evaluating' || (this.state === 'waiting-for-workers' && this.phase !== undefined);
  }

  /**
   * False between the aggregator's update of its own state and the optimizer step: a
   * failure there leaves the two out of step, and no checkpoint may be taken of it.
   */
  get consistent(): boolean {
    return !this.midUpdate;
  }

  /** The run's state after `completedSteps` steps, for a checkpoint. Valid between steps only. */
  snapshot(): RunSnapshot {
    return {
      step: this.completedSteps,
      version: this.version,
      samples: this.samples,
      trainMs: this.trainMs,
      counters: { ...this.counters },
      affinity: { ...this.taskAffinity.state(), ...(this.exactAffinity.observedSteps > 0 ? { exact: this.exactAffinity.state() } : {}) },
      params: this.params.slice(),
      optimizer: this.optimizer.state(),
      aggregator: this.aggregator.state(),
      ...(this.plan.sequential ? { extras: this.stages.extras() } : {}),
    };
  }

  /** Saves a checkpoint; a failure to save is reported, not fatal: training goes on. */
  private async checkpoint(): Promise<void> {
    try {
      await this.opts.saveCheckpoint?.(this.snapshot());
    } catch (err) {
      this.log.error('could not save a checkpoint; training continues', { step: this.completedSteps, error: err instanceof Error ? err.message : String(err) });
      this.emit({ type: 'checkpoint-failed', level: 'error', message: `checkpoint at step ${this.completedSteps} failed`, data: { step: this.completedSteps } });
    }
  }

  // ---- session handler -------------------------------------------------------------------

  onHello(session: WorkerSession, hello: Hello__Output): void {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      throw new UnsupportedProtocolError(`worker speaks protocol ${hello.protocolVersion}, this coordinator ${PROTOCOL_VERSION}`);
    }
    if (this.state === 'finished' || this.state === 'failed') throw new IllegalStateError('the run is over');
    this.workers.set(session.id, session);
    this.log.info('worker joined', { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend, device: hello.device, step: this.step });
    this.emit({ type: 'worker-joined', level: 'info', message: `worker ${session.label} joined`, data: { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend, step: this.step } });
    void session
      .send({
        welcome: {
          workerId: session.id,
          runId: this.opts.runId,
          jobJson: JSON.stringify(this.opts.job),
          layout: this.opts.layout.tensors.map((t) => ({ name: t.name, shape: [...t.shape], group: t.group })),
          protocolVersion: PROTOCOL_VERSION,
          maxChunkBytes: this.opts.maxChunkBytes ?? MAX_CHUNK_BYTES,
          jobDir: this.opts.jobDir,
        },
      })
      .catch(() => undefined);
    this.broadcast.sendTo(session);
    if (this.workers.size >= this.opts.minWorkers) {
      for (const w of this.waiters.splice(0)) w.resolve();
    }
    if (this.noWorkersTimer !== undefined) this.stopWaiting();
    // Units nobody holds (their worker died while no one else was there) go to the newcomer.
    const orphans = this.phase?.unassigned() ?? [];
    if (orphans.length > 0) this.dispatch(orphans);
  }

  beginResult(session: WorkerSession, header: UnitResult__Output): ResultSink {
    // A compressed payload lands in `wire` (16 bits per value) and is decoded into `payload` once whole.
    const bpv = bytesPerValue(this.compression);
    const buffer = (bytes: number): Pick<ResultSink, 'payload' | 'wire'> =>
      bytes <= 0 ? { payload: null } : bpv === 4 ? { payload: new Float32Array(bytes / 4) } : { payload: new Float32Array(bytes / bpv), wire: new Uint16Array(bytes / bpv) };
    if (!this.phase?.lookup(header.unitId)) {
      // A copy from an earlier phase (a straggler, a backup that lost): read it, drop it.
      const late = this.lateIds.get(header.unitId);
      if (late !== undefined) {
        if (late.worker !== session.id) throw new UnknownUnitError(`unit ${header.unitId} was not assigned to ${session.id}`);
        if (header.byteLength !== late.bytes) throw new ByteLengthError(`late unit ${header.unitId} announces ${header.byteLength} bytes, expected ${late.bytes}`);
        return { ...buffer(late.bytes), discard: true };
      }
    }
    const { unit, late } = checkResultHeader(this.phase, session.id, header, this.opts.job);
    return { ...buffer(unit.expectedBytes), discard: late };
  }

  completeResult(session: WorkerSession, header: UnitResult__Output, sink: ResultSink): void {
    session.lastProgressMs = this.clock();
    const ms = Number.isFinite(header.computeMs) && header.computeMs > 0 ? header.computeMs : undefined;
    if (ms !== undefined) session.meanUnitMs = session.meanUnitMs === undefined ? ms : 0.8 * session.meanUnitMs + 0.2 * ms;
    if (sink.discard) {
      this.counters.discardedResults++;
      this.log.debug('dropped a late result', { unit: header.unitId, worker: session.label });
      return;
    }
    const phase = this.phase;
    const found = phase?.lookup(header.unitId);
    if (!phase || !found || isDone(found.unit) || !found.assignment.active) {
      // While this result streamed, another copy finished first, this copy was withdrawn, or
      // the phase ended (its step is done): the unit's result is already fixed.
      this.counters.discardedResults++;
      this.log.debug('dropped a result that lost the race', { unit: header.unitId, worker: session.label });
      return;
    }
    const { unit, assignment } = found;
    if (sink.payload !== null) {
      if (sink.wire && this.compression !== 'none') decodeHalf(sink.wire, this.compression, sink.payload);
      const bad = firstNonFinite(sink.payload);
      if (bad >= 0) throw new NonFiniteError(`unit ${header.unitId} (task ${unit.task}, step ${phase.step}) has a non-finite gradient (${sink.payload[bad]}) at index ${bad}`);
      unit.train = { sampleCount: header.sampleCount, loss: header.loss, grads: sink.payload };
    } else {
      const metrics: Record<string, number> = {};
      if (unit.kind === 'eval') for (const m of this.opts.job.tasks[unit.task]!.metrics) metrics[m] = header.metrics[m]!;
      unit.eval = { samples: header.sampleCount, loss: header.loss, metrics };
    }
    unit.computeMs = header.computeMs;
    session.unitsDone++;
    this.opts.onUnit?.({ kind: unit.kind, task: unit.task, worker: session.name || session.id, computeMs: header.computeMs });
    this.cancel(phase.complete(unit, assignment), 'done by another worker');
    if (--phase.remaining === 0) phase.resolve();
  }

  onUnitFailed(session: WorkerSession, failure: UnitFailed__Output): void {
    if (failure.unitId === '') {
      session.leavingReason = `${failure.code}: ${failure.message}`;
      this.log.error('worker is leaving', { worker: session.label, code: failure.code, error: failure.message });
      return;
    }
    const found = this.phase?.lookup(failure.unitId);
    if (!found || found.assignment.worker !== session.id || !found.assignment.active) {
      // Rejected like any bad message (logged, counted, against the session's budget).
      throw new UnknownUnitError(`failure report for unit ${failure.unitId}, which ${session.id} does not hold`);
    }
    // Computing the same unit elsewhere would fail the same way: the inputs are the same.
    this.fail(new UnitFailedError(`unit ${failure.unitId} (task ${found.unit.task}) failed on worker ${session.label}: ${failure.code}: ${failure.message}`));
  }

  onGoodbye(session: WorkerSession, goodbye: Goodbye__Output): void {
    this.counters.departures++;
    this.log.info('worker is leaving', { worker: session.label, reason: goodbye.reason, returned: goodbye.returnedUnitIds.length });
    this.emit({ type: 'worker-leaving', level: 'info', message: `worker ${session.label} is leaving: ${goodbye.reason}`, data: { worker: session.id, step: this.step, returned: goodbye.returnedUnitIds } });
    this.releaseAndReassign(session);
  }

  onRejected(session: WorkerSession, error: Error, unitId: string | undefined): void {
    this.counters.rejectedMessages++;
    const found = unitId === undefined ? undefined : this.phase?.lookup(unitId);
    if (!found) return;
    const { unit, assignment } = found;
    if (assignment.worker !== session.id || !assignment.active || isDone(unit)) return;
    const policy = this.opts.job.training.nonFinite;
    if (error instanceof NonFiniteError) {
      if (policy === 'fail') {
        // Recomputing would give the same numbers (determinism): the training diverged.
        this.fail(new NonFiniteError(`training diverged: ${error.message}; try a lower learning rate (training.nonFinite: fail; skip-unit or skip-step go on)`));
        return;
      }
      if (policy === 'skip-step' && this.phase!.kind === 'train') {
        this.skipStep(this.phase!, error);
        return;
      }
      // skip-unit (and evaluation or Fisher units, which have no update to skip): computed again, below.
    }
    unit.invalidResults++;
    if (unit.invalidResults >= MAX_INVALID_RESULTS) {
      const what = `unit ${unitId} (task ${unit.task}, shard ${unit.shard}): ${unit.invalidResults} invalid results, last: ${error.message}`;
      this.fail(error instanceof NonFiniteError ? new NonFiniteError(`training diverged: ${what} (training.nonFinite: ${policy})`) : new ProtocolViolationError(what));
      return;
    }
    if (error instanceof NonFiniteError) this.counters.skippedUnits++;
    assignment.active = false;
    this.log.warn('reassigning unit after an invalid result', { unit: unitId, worker: session.label });
    if (!unit.assignments.some((a) => a.active)) {
      this.counters.reassignedUnits++;
      this.dispatch([unit]);
    }
  }

  onClosed(session: WorkerSession, reason: string): void {
    if (session.closedForErrors) this.counters.sessionsClosedForErrors++;
    if (!this.workers.delete(session.id)) return;
    this.departed.push({ id: session.id, name: session.name, backend: session.backend, device: session.device, unitsDone: session.unitsDone });
    const failed = !session.leaving && this.active;
    if (failed) {
      this.counters.deaths++;
      this.log.warn('worker lost', { worker: session.label, peer: session.peer, step: this.step, reason });
    } else if (this.active) {
      this.log.info('worker left', { worker: session.label, reason });
    } else {
      this.log.debug('worker left', { worker: session.label, reason });
    }
    this.emit({ type: failed ? 'worker-lost' : 'worker-left', level: failed ? 'warn' : 'info', message: `worker ${session.label} ${failed ? 'lost' : 'left'}: ${reason}`, data: { worker: session.id, step: this.step, reason } });
    this.releaseAndReassign(session);
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
    this.cancel(running, 'step skipped');
    phase.resolve();
  }

  /** Everything `session` held goes back to the others (or waits for a worker to join). */
  private releaseAndReassign(session: WorkerSession): void {
    if (!this.phase) {
      if (this.active && this.activeWorkers().length === 0) this.startWaiting();
      return;
    }
    const orphans = this.phase.release(session.id);
    this.counters.reassignedUnits += orphans.length;
    if (orphans.length > 0) this.log.info('reassigning units', { from: session.label, units: orphans.length, step: this.step });
    this.dispatch(orphans);
    if (this.activeWorkers().length === 0) this.startWaiting();
  }

  // ---- membership ---------------------------------------------------------------------------

  /** Workers that take new units (not the ones saying goodbye). */
  private activeWorkers(): WorkerSession[] {
    return this.sessions.filter((s) => !s.leaving && s.state === 'ready');
  }

  /** No worker is left: wait (visibly) for one, or fail after waitForWorkersMs. */
  private startWaiting(): void {
    if (this.noWorkersTimer !== undefined || this.failure || !this.active) return;
    this.log.warn('no workers connected: waiting for one to join', { step: this.step, timeoutMs: this.opts.waitForWorkersMs });
    this.emit({ type: 'waiting-for-workers', level: 'warn', message: 'no workers connected', data: { step: this.step } });
    const resumeState = this.state;
    this.setState('waiting-for-workers');
    this.noWorkersTimer = setTimeout(() => {
      this.fail(new WorkerLostError(`no worker connected for ${this.opts.waitForWorkersMs} ms (step ${this.step})`));
    }, this.opts.waitForWorkersMs);
    this.noWorkersTimer.unref();
    this.resumeStateAfterWait = resumeState;
  }

  private stopWaiting(): void {
    clearTimeout(this.noWorkersTimer);
    this.noWorkersTimer = undefined;
    if (this.state === 'waiting-for-workers' && this.hasStarted) this.setState(this.resumeStateAfterWait);
  }

  /** Looks for dead and stalled workers: the dead are closed, the stalled get backups. */
  private tick(): void {
    const phase = this.phase;
    const now = this.clock();
    const held = phase?.activeByWorker() ?? new Map<string, Assignment[]>();
    const observed: ObservedWorker[] = this.sessions.map((s) => ({
      id: s.id,
      lastSeenMs: s.lastSeenMs,
      lastProgressMs: s.lastProgressMs,
      meanUnitMs: s.meanUnitMs,
      busy: held.has(s.id),
    }));
    const fault = this.opts.job.fault;
    for (const dead of deadWorkers(observed, now, fault)) {
      const session = this.workers.get(dead.id);
      if (!session) continue;
      this.log.warn('declaring worker dead', { worker: session.label, silentMs: dead.silentMs, limitMs: dead.limitMs });
      session.close(new WorkerLostError(`no message for ${dead.silentMs} ms (limit ${dead.limitMs} ms)`));
    }
    if (!phase) return;
    const idle = this.activeWorkers().filter((s) => !held.has(s.id));
    for (const stalled of stalledWorkers(observed, now, fault)) {
      for (const assignment of held.get(stalled) ?? []) {
        const found = phase.lookup(assignment.id);
        if (!found || isDone(found.unit) || found.unit.assignments.filter((a) => a.active).length > 1) continue;
        const helper = idle.shift();
        if (!helper) return;
        const copy = phase.assign(found.unit, helper.id, now, true);
        helper.lastProgressMs = now;
        this.counters.backupUnits++;
        this.log.info('backup copy of a slow unit', { unit: assignment.id, slow: stalled, backup: helper.label, copy: copy.id });
        this.sendAssign(helper, [{ assignment: copy, unit: found.unit }]);
      }
    }
  }

  // ---- the loop ----------------------------------------------------------------------------

  /** Stops the run: the current phase fails with `error` and train() rejects with it. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.phase?.reject(error);
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  abort(reason: string): void {
    this.fail(new RunAbortedError(reason));
  }

  private waitForWorkers(): Promise<void> {
    if (this.workers.size >= this.opts.minWorkers) return Promise.resolve();
    this.log.info('waiting for workers', { have: this.workers.size, need: this.opts.minWorkers });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new WorkerLostError(`only ${this.workers.size} of ${this.opts.minWorkers} workers joined within ${this.opts.waitForWorkersMs} ms`));
      }, this.opts.waitForWorkersMs);
      this.waiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  async train(): Promise<TrainingOutcome> {
    if (this.state !== 'created') throw new IllegalStateError(`train() called in state ${this.state}`);
    try {
      this.setState('waiting-for-workers');
      await this.waitForWorkers();
      const { steps, evalEvery } = this.opts.job.training;
      const every = this.opts.job.checkpoint.every;
      this.setState('training');
      this.ticker = setInterval(() => this.tick(), TICK_MS);
      this.ticker.unref();
      for (let step = this.completedSteps; step < steps; step++) {
        const started = performance.now();
        this.step = step;
        if (this.plan.sequential && this.stages.stagesDone < this.plan.stageAt(step).index) {
          await this.endStage(this.plan.stages[this.stages.stagesDone]!);
          if (every > 0) await this.checkpoint(); // the stage's evaluation and Fisher are not redone on resume
        }
        await this.trainStep(step);
        if (evalEvery !== undefined && (step + 1) % evalEvery === 0 && step + 1 < steps) await this.evaluate(step + 1);
        this.trainMs += performance.now() - started;
        if (every > 0 && this.completedSteps % every === 0 && this.completedSteps < steps) await this.checkpoint();
      }
      this.step = steps;
      const finalEval = await this.evaluate(steps);
      if (this.plan.sequential) this.stages.recordRow(this.plan.stages[this.plan.stages.length - 1]!, finalEval);
      this.setState('finished');
      const workers = [...this.departed, ...this.sessions.map((s) => ({ id: s.id, name: s.name, backend: s.backend, device: s.device, unitsDone: s.unitsDone }))];
      return { params: this.params.slice(), steps, samples: this.samples, trainMs: this.trainMs, finalEval, workers };
    } catch (err) {
      this.setState('failed');
      throw this.failure ?? err;
    } finally {
      clearInterval(this.ticker);
      clearTimeout(this.noWorkersTimer);
      this.noWorkersTimer = undefined;
    }
  }

  /** Sends units to workers and resolves when every one has a valid result (or the step is skipped). */
  private runPhase(kind: Phase['kind'], step: number, units: PendingUnit[], version = this.version): Promise<Phase> {
    if (this.failure) return Promise.reject(this.failure);
    let phase!: Phase;
    return new Promise<void>((resolve, reject) => {
      phase = new Phase(kind, step, version, units, resolve, reject);
      this.phase = phase;
      this.dispatch(units);
    })
      .then(() => phase)
      .finally(() => {
      const done = this.phase;
      this.phase = undefined;
      // Copies still out there may report later; recognise them, so they are dropped, not rejected.
      for (const [id, bytes] of done?.ids() ?? []) {
        const assignment = done?.lookup(id)?.assignment;
        if (assignment) this.lateIds.set(id, { worker: assignment.worker, bytes });
      }
      while (this.lateIds.size > LATE_IDS_KEPT) this.lateIds.delete(this.lateIds.keys().next().value!);
    });
  }

  private sendAssign(session: WorkerSession, assigned: ReadonlyArray<{ assignment: Assignment; unit: PendingUnit }>): void {
    const phase = this.phase!;
    const wire = assigned.map(({ assignment: a, unit: u }) => ({
      unitId: a.id,
      kind: WIRE_KIND[u.kind],
      step: phase.step,
      task: u.task,
      shard: u.shard,
      weightsVersion: phase.version,
      shardCount: u.shardCount,
    }));
    session.send({ assign: { units: wire } }).catch(() => undefined);
  }

  private dispatch(units: readonly PendingUnit[]): void {
    const phase = this.phase;
    if (!phase || phase.skipped !== undefined || units.length === 0) return;
    const now = this.clock();
    const busy = phase.activeByWorker();
    const all = this.activeWorkers();
    if (all.length === 0) {
      this.startWaiting();
      return; // the units stay unassigned until a worker joins
    }
    // A worker with nothing to do still says it is alive every heartbeat; one that has been
    // silent for several heartbeats (and several of its unit times) is probably frozen or cut
    // off: give new work to the others while there are others.
    const heartbeat = this.opts.job.fault.heartbeatMs;
    const responsive = all.filter((s) => now - s.lastSeenMs <= Math.max(3 * heartbeat, 3 * (s.meanUnitMs ?? 0)));
    const sessions = responsive.length > 0 ? responsive : all;
    const key = (u: PendingUnit) => `${u.kind}/${u.task}/${u.shard}`;
    const byPlace = new Map(units.map((u, i) => [`u${i}`, u]));
    const placement = placeUnits(
      [...byPlace].map(([id, u]) => ({ id, key: key(u) })),
      sessions.map((s) => ({ id: s.id, unitMs: s.meanUnitMs })),
      this.affinity,
    );
    for (const [workerId, ids] of placement) {
      if (ids.length === 0) continue;
      const session = this.workers.get(workerId)!;
      if (!busy.has(workerId)) session.lastProgressMs = now;
      const assigned = ids.map((id) => {
        const u = byPlace.get(id)!;
        this.affinity.set(key(u), workerId);
        return { assignment: phase.assign(u, workerId, now), unit: u };
      });
      this.sendAssign(session, assigned);
    }
  }

  /** Withdraws copies that are no longer needed; their results, if they come, are dropped. */
  private cancel(assignments: readonly Assignment[], reason: string): void {
    const byWorker = new Map<string, string[]>();
    for (const a of assignments) byWorker.set(a.worker, [...(byWorker.get(a.worker) ?? []), a.id]);
    for (const [worker, ids] of byWorker) {
      this.workers.get(worker)?.send({ cancel: { unitIds: ids, reason } }).catch(() => undefined);
    }
  }

  /**
   * TAG's exact lookahead, before this step's update: for each active task i, the weights
   * θ − η·g_i (shared part; η the stage's learning rate) go to the workers as a lookahead
   * version, and every active task j evaluates its loss on its batch of this step at them;
   * Z_{i→j} = 1 − L_j(θ − η g_i) / L_j(θ). Diagnostics only: the update is untouched.
   */
  private async lookaheadAffinity(step: number, stage: PlannedStage, active: readonly string[], rows: readonly Float32Array[], losses: readonly number[]): Promise<number[][]> {
    const { layout, job } = this.opts;
    const lr = stage.spec.learningRate ?? job.training.optimizer.learningRate;
    const { offset, size } = layout.shared;
    const z: number[][] = [];
    try {
      for (const g of rows) {
        const look = this.params.slice();
        for (let p = 0; p < size; p++) look[offset + p]! -= lr * g[p]!;
        const version = LOOKAHEAD_VERSION_BASE + (this.lookaheadSerial++ % LOOKAHEAD_VERSIONS);
        this.broadcast.update(look, version);
        for (const s of this.sessions) this.broadcast.sendTo(s);
        const units = active.flatMap((task) => {
          const { batchSize, shards } = this.plan.unitShape(step, task)!;
          return Array.from({ length: shards }, (_, k) => {
            const [from, to] = partRange(batchSize, shards, k);
            return newUnit('lookahead', task, k, shards, to - from, 0);
          });
        });
        await this.runPhase('lookahead', step, units, version);
        z.push(
          active.map((task, j) => {
            const mine = units.filter((u) => u.task === task).map((u) => u.eval!);
            const after = mine.reduce((s, r) => s + r.loss * r.samples, 0) / mine.reduce((n, r) => n + r.samples, 0);
            return losses[j]! > 0 ? 1 - after / losses[j]! : 0;
          }),
        );
      }
    } finally {
      // Workers that join from here on get the run's real weights.
      this.broadcast.update(this.params, this.version);
    }
    if (active.length === this.tasks.length) this.exactAffinity.observeMatrix(z);
    return z;
  }

  // ---- sequential mode ---------------------------------------------------------------------

  /**
   * The end of a stage: every task is evaluated (a row of R), the Fisher of the stage's tasks
   * is estimated if a later stage uses EWC, and the next stage starts with a fresh optimizer
   * (its learning rate) and aggregator (its task count).
   */
  private async endStage(stage: PlannedStage): Promise<void> {
    const row = this.stages.recordRow(stage, await this.evaluate(stage.end));
    const samples = this.plan.fisherSamplesAt(stage.end);
    if (samples !== undefined) {
      const fisher = await this.estimateFisher(stage, samples);
      this.stages.forgetting.addFisher(fisher, this.sharedParams());
    }
    const next = this.plan.stages[stage.index + 1]!;
    this.stages.stagesDone = stage.index + 1;
    this.optimizer = this.stageOptimizer(next);
    const { name, ...options } = this.opts.job.training.aggregator;
    this.aggregator = createAggregator(name, options, { seed: this.opts.job.seed });
    this.conflicts = new ConflictMonitor(this.plan.activeTasks(next.start), this.opts.job.diagnostics.conflictWindow);
    this.stages.forgetting.beginStage(this.sharedParams());
    const summary = Object.entries(row).map(([t, v]) => `${t} ${this.stages.metric(t)} ${v.toFixed(4)}`).join(', ');
    this.log.info(`stage ${stage.name} done; next: ${next.name}`, { step: stage.end, tasks: next.tasks.join(','), replay: next.replay.join(',') || undefined });
    this.emit({ type: 'stage-completed', level: 'info', message: `stage ${stage.name} done after step ${stage.end}: ${summary}`, data: { stage: stage.name, step: stage.end, metrics: row } });
  }

  /** Sum over the stage's tasks of their diagonal empirical Fisher, shared parameters only. */
  private async estimateFisher(stage: PlannedStage, samples: number): Promise<Float32Array> {
    const { layout } = this.opts;
    const shardCount = Math.max(1, Math.ceil(samples / FISHER_SHARD_SIZE));
    const units = stage.tasks.flatMap((task) =>
      Array.from({ length: shardCount }, (_, k) => {
        const count = Math.min(samples, this.opts.trainSizes?.get(task) ?? samples);
        const [from, to] = partRange(count, shardCount, k);
        return newUnit('fisher', task, k, shardCount, to - from, unitGradientSize(layout, task) * bytesPerValue(this.compression));
      }),
    );
    const started = performance.now();
    await this.runPhase('fisher', stage.end, units);
    const total = new Float32Array(layout.shared.size);
    for (const task of stage.tasks) {
      const f = combineShards(units.filter((u) => u.task === task).map((u) => u.train!)).grads;
      for (let p = 0; p < total.length; p++) total[p]! += f[p]!;
    }
    this.log.info('EWC Fisher estimated', { stage: stage.name, tasks: stage.tasks.join(','), samples, ms: Math.round(performance.now() - started) });
    return total;
  }

  /** Sequential mode: R[stage][task] and its summaries (see StageProgress). */
  continualSummary(): ContinualSummary | undefined {
    return this.stages.summary();
  }

  /** One synchronous step. */
  private async trainStep(step: number): Promise<void> {
    const { layout, job } = this.opts;
    const stage = this.plan.stageAt(step);
    const active = this.plan.activeTasks(step);
    const units = active.flatMap((task) => {
      const { batchSize, shards } = this.plan.unitShape(step, task)!;
      return Array.from({ length: shards }, (_, k) => {
        const [from, to] = partRange(batchSize, shards, k);
        return newUnit('train', task, k, shards, to - from, unitGradientSize(layout, task) * bytesPerValue(this.compression));
      });
    });
    const t0 = performance.now();
    const phase = await this.runPhase('train', step, units);
    const t1 = performance.now();
    if (phase.skipped !== undefined) {
      // No update: the weights, their version and the optimizer state stay as they are.
      this.counters.skippedSteps++;
      this.completedSteps = step + 1;
      this.log.warn('step skipped: a result was not finite (training.nonFinite: skip-step)', { step: step + 1, error: phase.skipped });
      this.emit({ type: 'step-skipped', level: 'warn', message: `step ${step + 1} skipped, no update applied: ${phase.skipped}`, data: { step: step + 1, skippedSteps: this.counters.skippedSteps } });
      return;
    }

    const sharedSize = layout.shared.size;
    const perTask = active.map((task) => combineShards(units.filter((u) => u.task === task).map((u) => u.train!)));
    this.opts.onTaskGradients?.(step, new Map(active.map((t, i) => [t, perTask[i]!.grads])));
    const rows = perTask.map((g) => g.grads.subarray(0, sharedSize));
    const losses = perTask.map((g) => g.loss);
    const every = job.diagnostics.exactAffinityEvery;
    const lookaheadStart = performance.now();
    const exact = every > 0 && step % every === 0 && active.length > 1 ? await this.lookaheadAffinity(step, stage, active, rows, losses) : undefined;
    const lookaheadMs = performance.now() - lookaheadStart;
    const h = gramian(rows);
    // One update buffer for the whole run: the aggregator writes the trunk's direction
    // straight into it, the heads are copied in below; both parts are overwritten every step.
    this.update ??= new Float32Array(layout.totalSize);
    const update = this.update;
    const trunk = update.subarray(layout.shared.offset, layout.shared.offset + sharedSize);
    this.midUpdate = true;
    const aggregated = this.aggregator.aggregate({ grads: rows, losses, step, gramian: h, out: trunk });
    if (aggregated.direction.length !== sharedSize || firstNonFinite(aggregated.direction) >= 0) {
      throw new NonFiniteError(`aggregator ${this.aggregator.name} returned an invalid direction at step ${step}`);
    }
    const t2 = performance.now();

    const lossWeights = aggregated.lossWeights;
    if (lossWeights && (lossWeights.length !== active.length || !lossWeights.every(Number.isFinite))) {
      throw new NonFiniteError(`aggregator ${this.aggregator.name} returned invalid loss weights at step ${step}: [${lossWeights.join(', ')}]`);
    }
    if (aggregated.direction !== trunk) trunk.set(aggregated.direction);
    if (this.plan.sequential) {
      // Heads of tasks not training now stay as they are; so do frozen groups.
      for (const task of this.tasks) {
        if (active.includes(task) && !stage.spec.freeze.includes(task)) continue;
        const g = layout.headGroups.get(task)!;
        update.fill(0, g.offset, g.offset + g.size);
      }
    }
    active.forEach((task, i) => {
      if (stage.spec.freeze.includes(task)) return;
      // Methods defined by loss weights scale each head's gradient by its task's weight (as in LibMTL).
      const head = perTask[i]!.grads.subarray(sharedSize);
      const offset = layout.headGroups.get(task)!.offset;
      const lw = lossWeights?.[i] ?? 1;
      if (lw === 1) update.set(head, offset);
      else for (let k = 0; k < head.length; k++) update[offset + k] = lw * head[k]!;
    });
    const penalty = this.plan.sequential ? this.stages.applyPenalties(stage, active, this.params, update) : 0;
    if (stage.spec.freeze.includes('shared')) trunk.fill(0);
    this.optimizer.step(this.params, update);
    if (this.plan.sequential && !stage.spec.freeze.includes('shared')) {
      this.stages.forgetting.proximalShared(stage.spec.protect, this.sharedParams(), stage.spec.learningRate ?? job.training.optimizer.learningRate);
    }
    // The step is complete from here on: a checkpoint taken now must say so.
    const samples = perTask.reduce((n, g) => n + g.samples, 0);
    this.version++;
    this.completedSteps = step + 1;
    this.samples += samples;
    this.midUpdate = false;
    const t3 = performance.now();

    this.broadcast.update(this.params, this.version);
    for (const s of this.sessions) this.broadcast.sendTo(s);
    const t4 = performance.now();

    const diag = gradientDiagnostics(h);
    // The run's mean affinity covers the steps where every task trains (all of them, unless sequential).
    const affinity = active.length === this.tasks.length ? this.taskAffinity.observe(h, losses) : firstOrderAffinity(h, losses, stage.spec.learningRate ?? job.training.optimizer.learningRate);
    for (const w of this.conflicts.observe(diag.cosine)) {
      const message = `tasks ${w.tasks[0]} and ${w.tasks[1]} have had conflicting gradients (negative cosine, mean ${w.meanCosine.toFixed(3)}) for ${w.steps} steps`;
      this.log.warn(message, { step: step + 1 });
      this.emit({ type: 'task-conflict', level: 'warn', message, data: { step: step + 1, tasks: w.tasks, steps: w.steps, meanCosine: w.meanCosine } });
    }
    for (const note of aggregated.notes ?? []) {
      // A note (e.g. a solver fallback) is logged the first time; every step records it.
      if (!this.notesSeen.has(note)) this.log.warn(`aggregator ${this.aggregator.name}: ${note}`, { step: step + 1 });
      this.notesSeen.add(note);
    }
    const record: StepRecord = {
      step: step + 1,
      version: this.version,
      ...(this.plan.sequential ? { stage: stage.name, ...(penalty > 0 ? { penalty } : {}) } : {}),
      losses: Object.fromEntries(active.map((t, i) => [t, losses[i]!])),
      aggregatorWeights: Object.fromEntries(active.map((t, i) => [t, aggregated.weights[i] ?? NaN])),
      ...(lossWeights ? { lossWeights: Object.fromEntries(active.map((t, i) => [t, lossWeights[i]!])) } : {}),
      ...(aggregated.notes?.length ? { aggregatorNotes: aggregated.notes } : {}),
      gradNorms: Object.fromEntries(active.map((t, i) => [t, diag.norms[i]!])),
      affinity: affinityRecord(active, affinity),
      ...(exact ? { affinityExact: affinityRecord(active, exact) } : {}),
      cosine: Object.fromEntries(active.flatMap((a, i) => active.slice(i + 1).map((b, j) => [`${a}/${b}`, diag.cosine[i]![i + 1 + j]!]))),
      samples,
      timeMs: {
        units: t1 - t0,
        compute: units.reduce((s, u) => s + u.computeMs, 0),
        transfer: Math.max(0, t1 - t0 - criticalCompute(units)),
        aggregate: t2 - t1 - lookaheadMs,
        ...(exact ? { lookahead: lookaheadMs } : {}),
        optimize: t3 - t2,
        broadcast: t4 - t3,
        total: t4 - t0,
      },
      workers: this.activeWorkers().length,
      faults: { ...this.counters },
    };
    this.lastLosses = record.losses;
    this.opts.onStep?.(record);
  }

  /** Evaluates every task on its held-out split with the current weights. */
  async evaluate(step: number): Promise<EvalRecord> {
    const previous = this.state;
    this.setState('evaluating');
    const units = this.tasks.flatMap((task) => {
      const size = this.opts.testSizes.get(task) ?? 0;
      const shardCount = Math.max(1, Math.ceil(size / EVAL_SHARD_SIZE));
      return Array.from({ length: shardCount }, (_, k) => {
        const [from, to] = partRange(size, shardCount, k);
        return newUnit('eval', task, k, shardCount, to - from, 0);
      });
    });
    await this.runPhase('eval', step, units);
    const tasks: Record<string, TaskEval> = {};
    for (const task of this.tasks) {
      const mine = units.filter((u) => u.task === task).map((u) => u.eval!);
      const samples = mine.reduce((n, r) => n + r.samples, 0);
      const metrics: Record<string, number> = {};
      for (const m of this.opts.job.tasks[task]!.metrics) metrics[m] = mine.reduce((s, r) => s + r.metrics[m]! * r.samples, 0) / samples;
      tasks[task] = { loss: mine.reduce((s, r) => s + r.loss * r.samples, 0) / samples, samples, metrics };
    }
    const record: EvalRecord = { step, version: this.version, ...(this.plan.sequential ? { stage: this.plan.stageAt(Math.max(0, step - 1)).name } : {}), tasks };
    this.opts.onEval?.(record);
    if (previous === 'training') this.setState('training');
    return record;
  }
}
