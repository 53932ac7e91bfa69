// The synchronous step loop of DESIGN.md: units → workers, results validated and combined
// in fixed order, aggregation of the shared gradients, optimizer, new weights broadcast
// (encoded once). Also the evaluation phases and the run's bookkeeping of its workers.
import type { Hello__Output } from '../proto/generated/mtl/v1/Hello.js';
import type { UnitFailed__Output } from '../proto/generated/mtl/v1/UnitFailed.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { partRange } from '../common/datasets/sampler.js';
import {
  IllegalStateError,
  NonFiniteError,
  ProtocolViolationError,
  RunAbortedError,
  UnitFailedError,
  UnsupportedProtocolError,
  WorkerLostError,
} from '../common/errors.js';
import { taskNames, type JobSpec } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import { unitGradientSize, type ParameterLayout } from '../common/parameter-layout.js';
import { MAX_CHUNK_BYTES, PROTOCOL_VERSION } from '../common/protocol.js';
import { firstNonFinite } from '../common/transfer-assembler.js';
import type { Aggregator } from './aggregation/types.js';
import type { Optimizer } from './optimizers.js';
import { placeUnits } from './scheduler.js';
import { ConflictMonitor } from './conflict-monitor.js';
import type { EvalRecord, RunEvent, StepRecord, TaskEval, TrainingOutcome } from './run-records.js';
import { combineShards, gradientDiagnostics, gramian } from './step-math.js';
import { checkResultHeader, newUnit, unitId, WIRE_KIND, type PendingUnit, type Phase } from './units.js';
import { WeightsBroadcast } from './weights-broadcast.js';
import type { SessionHandler, WorkerSession } from './worker-session.js';

/** Held-out splits are evaluated in shards of at most this many examples, whatever the worker count. */
export const EVAL_SHARD_SIZE = 2000;
/** A unit whose results were rejected this many times fails the run. */
export const MAX_UNIT_ATTEMPTS = 3;

export type RunState = 'created' | 'waiting-for-workers' | 'training' | 'evaluating' | 'finished' | 'failed';

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
  logger: Logger;
  /** Training starts once this many workers have joined. */
  minWorkers: number;
  /** How long to wait for them before failing. */
  waitForWorkersMs: number;
  maxChunkBytes?: number;
  onStep?: (record: StepRecord) => void;
  onEval?: (record: EvalRecord) => void;
  onStateChange?: (state: RunState) => void;
  /** Observes each step's combined per-task gradients (trunk then head) before aggregation. */
  onTaskGradients?: (step: number, grads: ReadonlyMap<string, Float32Array>) => void;
  /** Lifecycle and warning events (events.jsonl). */
  onEvent?: (event: RunEvent) => void;
}

/** The largest total compute time of one worker in a phase: the part of its wall time compute explains. */
function criticalCompute(units: readonly PendingUnit[]): number {
  const perWorker = new Map<string, number>();
  for (const u of units) perWorker.set(u.worker ?? '', (perWorker.get(u.worker ?? '') ?? 0) + u.computeMs);
  return Math.max(0, ...perWorker.values());
}

export class TrainingRun implements SessionHandler {
  private state: RunState = 'created';
  private readonly params: Float32Array;
  private version = 0;
  private step = 0;
  private readonly workers = new Map<string, WorkerSession>();
  private readonly affinity = new Map<string, string>();
  private phase: Phase | undefined;
  private failure: Error | undefined;
  private waiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private readonly broadcast: WeightsBroadcast;
  private readonly log: Logger;
  private readonly tasks: string[];
  private readonly departed: TrainingOutcome['workers'] = [];
  private nextWorker = 1;
  private lastLosses: Record<string, number> = {};
  private readonly conflicts: ConflictMonitor;
  private readonly notesSeen = new Set<string>();
  private update: Float32Array | undefined;
  rejectedMessages = 0;

  constructor(private readonly opts: TrainingRunOptions) {
    this.params = opts.initialParams.slice();
    this.log = opts.logger;
    this.tasks = taskNames(opts.job);
    this.broadcast = new WeightsBroadcast(opts.layout, opts.maxChunkBytes ?? MAX_CHUNK_BYTES);
    this.broadcast.update(this.params, this.version);
    this.conflicts = new ConflictMonitor(this.tasks, opts.job.diagnostics.conflictWindow);
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

  get weightsVersion(): number {
    return this.version;
  }

  get losses(): Readonly<Record<string, number>> {
    return this.lastLosses;
  }

  get sessions(): readonly WorkerSession[] {
    return [...this.workers.values()];
  }

  newWorkerId(): string {
    return `w${this.nextWorker++}`;
  }

  private setState(state: RunState): void {
    this.state = state;
    this.opts.onStateChange?.(state);
  }

  // ---- session handler -------------------------------------------------------------------

  onHello(session: WorkerSession, hello: Hello__Output): void {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      throw new UnsupportedProtocolError(`worker speaks protocol ${hello.protocolVersion}, this coordinator ${PROTOCOL_VERSION}`);
    }
    if (this.state === 'finished' || this.state === 'failed') throw new IllegalStateError('the run is over');
    this.workers.set(session.id, session);
    this.log.info('worker joined', { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend, device: hello.device });
    this.emit({ type: 'worker-joined', level: 'info', message: `worker ${session.label} joined`, data: { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend } });
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
  }

  beginResult(session: WorkerSession, header: UnitResult__Output): Float32Array | null {
    const unit = checkResultHeader(this.phase, session.id, header, this.opts.job);
    return unit.kind === 'train' ? new Float32Array(unit.expectedBytes / 4) : null;
  }

  completeResult(session: WorkerSession, header: UnitResult__Output, payload: Float32Array | null): void {
    const phase = this.phase!;
    const unit = phase.units.get(header.unitId)!;
    if (payload !== null) {
      const bad = firstNonFinite(payload);
      if (bad >= 0) throw new NonFiniteError(`unit ${unit.id} (task ${unit.task}, step ${phase.step}) has a non-finite gradient (${payload[bad]}) at index ${bad}`);
      unit.train = { sampleCount: header.sampleCount, loss: header.loss, grads: payload };
    } else {
      const metrics: Record<string, number> = {};
      for (const m of this.opts.job.tasks[unit.task]!.metrics) metrics[m] = header.metrics[m]!;
      unit.eval = { samples: header.sampleCount, loss: header.loss, metrics };
    }
    unit.computeMs = header.computeMs;
    session.unitsDone++;
    const ms = Number.isFinite(header.computeMs) && header.computeMs > 0 ? header.computeMs : undefined;
    if (ms !== undefined) session.meanUnitMs = session.meanUnitMs === undefined ? ms : 0.8 * session.meanUnitMs + 0.2 * ms;
    if (--phase.remaining === 0) phase.resolve();
  }

  onUnitFailed(session: WorkerSession, failure: UnitFailed__Output): void {
    if (failure.unitId === '') {
      session.leavingReason = `${failure.code}: ${failure.message}`;
      this.log.error('worker is leaving', { worker: session.label, code: failure.code, error: failure.message });
      return;
    }
    const unit = this.phase?.units.get(failure.unitId);
    if (!unit || unit.worker !== session.id) {
      this.rejectedMessages++;
      this.log.warn('failure report for a unit this worker does not hold', { worker: session.label, unit: failure.unitId });
      return;
    }
    this.fail(new UnitFailedError(`unit ${unit.id} (task ${unit.task}) failed on worker ${session.label}: ${failure.code}: ${failure.message}`));
  }

  onRejected(session: WorkerSession, error: Error, unitId: string | undefined): void {
    this.rejectedMessages++;
    const unit = unitId === undefined ? undefined : this.phase?.units.get(unitId);
    if (!unit || unit.worker !== session.id || unit.train || unit.eval) return;
    if (error instanceof NonFiniteError) {
      // Recomputing would give the same numbers (determinism): the training diverged.
      this.fail(new NonFiniteError(`training diverged: ${error.message}; try a lower learning rate`));
      return;
    }
    if (unit.attempts >= MAX_UNIT_ATTEMPTS) {
      this.fail(new ProtocolViolationError(`unit ${unit.id}: ${unit.attempts} invalid results in a row, last: ${error.message}`));
      return;
    }
    this.log.warn('reassigning unit after an invalid result', { unit: unit.id, worker: session.label });
    this.reassign(unit);
  }

  onClosed(session: WorkerSession, reason: string): void {
    if (!this.workers.delete(session.id)) return;
    this.emit({ type: 'worker-left', level: 'info', message: `worker ${session.label} left: ${reason}`, data: { worker: session.id, step: this.step, reason } });
    this.departed.push({ id: session.id, name: session.name, backend: session.backend, device: session.device, unitsDone: session.unitsDone });
    const held = [...(this.phase?.units.values() ?? [])].filter((u) => u.worker === session.id && !u.train && !u.eval);
    const active = this.state === 'training' || this.state === 'evaluating';
    if (active && held.length > 0) {
      this.fail(
        new WorkerLostError(
          `worker ${session.label} at ${session.peer} disconnected during step ${this.step} holding ${held.length} unit(s): ${reason}. ` +
            'The run cannot recover lost units yet, so it stops here.',
        ),
      );
    } else if (active && this.workers.size === 0) {
      this.fail(new WorkerLostError(`the last worker (${session.label}) disconnected at step ${this.step}: ${reason}`));
    } else if (this.state === 'finished' || this.state === 'failed') {
      this.log.debug('worker left', { worker: session.label, reason });
    } else {
      this.log.info('worker left', { worker: session.label, reason });
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
      this.setState('training');
      const started = performance.now();
      let samples = 0;
      for (let step = 0; step < steps; step++) {
        this.step = step;
        samples += await this.trainStep(step);
        if (evalEvery !== undefined && (step + 1) % evalEvery === 0 && step + 1 < steps) await this.evaluate(step + 1);
      }
      this.step = steps;
      const trainMs = performance.now() - started;
      const finalEval = await this.evaluate(steps);
      this.setState('finished');
      const workers = [...this.departed, ...this.sessions.map((s) => ({ id: s.id, name: s.name, backend: s.backend, device: s.device, unitsDone: s.unitsDone }))];
      return { params: this.params.slice(), steps, samples, trainMs, finalEval, workers };
    } catch (err) {
      this.setState('failed');
      throw this.failure ?? err;
    }
  }

  /** Sends units to workers and resolves when every one has a valid result. */
  private runPhase(kind: Phase['kind'], step: number, units: PendingUnit[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const phase: Phase = { kind, step, version: this.version, units: new Map(), remaining: units.length, resolve, reject };
      for (const u of units) {
        u.attempts = 1;
        u.id = unitId(phase, u);
        phase.units.set(u.id, u);
      }
      this.phase = phase;
      this.dispatch(units);
    }).finally(() => {
      this.phase = undefined;
    });
  }

  private dispatch(units: PendingUnit[]): void {
    const phase = this.phase!;
    const sessions = this.sessions;
    if (sessions.length === 0) {
      this.fail(new WorkerLostError('no workers are connected'));
      return;
    }
    const key = (u: PendingUnit) => `${u.kind}/${u.task}/${u.shard}`;
    const placement = placeUnits(
      units.map((u) => ({ id: u.id, key: key(u) })),
      sessions.map((s) => ({ id: s.id, unitMs: s.meanUnitMs })),
      this.affinity,
    );
    for (const [workerId, ids] of placement) {
      if (ids.length === 0) continue;
      const session = this.workers.get(workerId)!;
      const wire = ids.map((id) => {
        const u = phase.units.get(id)!;
        u.worker = workerId;
        this.affinity.set(key(u), workerId);
        return { unitId: id, kind: WIRE_KIND[u.kind], step: phase.step, task: u.task, shard: u.shard, weightsVersion: phase.version, shardCount: u.shardCount };
      });
      session.send({ assign: { units: wire } }).catch(() => undefined);
    }
  }

  private reassign(unit: PendingUnit): void {
    const phase = this.phase!;
    phase.units.delete(unit.id);
    unit.attempts++;
    unit.id = unitId(phase, unit);
    phase.units.set(unit.id, unit);
    this.dispatch([unit]);
  }

  /** One synchronous step; returns the number of training examples it used. */
  private async trainStep(step: number): Promise<number> {
    const { layout, job } = this.opts;
    const shards = job.training.shardsPerTask;
    const units = this.tasks.flatMap((task) =>
      Array.from({ length: shards }, (_, k) => {
        const [from, to] = partRange(job.training.batchSize, shards, k);
        return newUnit('train', task, k, shards, to - from, unitGradientSize(layout, task) * 4);
      }),
    );
    const t0 = performance.now();
    await this.runPhase('train', step, units);
    const t1 = performance.now();

    const sharedSize = layout.shared.size;
    const perTask = this.tasks.map((task) => combineShards(units.filter((u) => u.task === task).map((u) => u.train!)));
    this.opts.onTaskGradients?.(step, new Map(this.tasks.map((t, i) => [t, perTask[i]!.grads])));
    const rows = perTask.map((g) => g.grads.subarray(0, sharedSize));
    const losses = perTask.map((g) => g.loss);
    const h = gramian(rows);
    // One update buffer for the whole run: the aggregator writes the trunk's direction
    // straight into it, the heads are copied in below; both parts are overwritten every step.
    this.update ??= new Float32Array(layout.totalSize);
    const update = this.update;
    const trunk = update.subarray(layout.shared.offset, layout.shared.offset + sharedSize);
    const aggregated = this.opts.aggregator.aggregate({ grads: rows, losses, step, gramian: h, out: trunk });
    if (aggregated.direction.length !== sharedSize || firstNonFinite(aggregated.direction) >= 0) {
      throw new NonFiniteError(`aggregator ${this.opts.aggregator.name} returned an invalid direction at step ${step}`);
    }
    const t2 = performance.now();

    const lossWeights = aggregated.lossWeights;
    if (lossWeights && (lossWeights.length !== this.tasks.length || !lossWeights.every(Number.isFinite))) {
      throw new NonFiniteError(`aggregator ${this.opts.aggregator.name} returned invalid loss weights at step ${step}: [${lossWeights.join(', ')}]`);
    }
    if (aggregated.direction !== trunk) trunk.set(aggregated.direction);
    this.tasks.forEach((task, i) => {
      // Methods defined by loss weights scale each head's gradient by its task's weight (as in LibMTL).
      const head = perTask[i]!.grads.subarray(sharedSize);
      const offset = layout.headGroups.get(task)!.offset;
      const lw = lossWeights?.[i] ?? 1;
      if (lw === 1) update.set(head, offset);
      else for (let k = 0; k < head.length; k++) update[offset + k] = lw * head[k]!;
    });
    this.opts.optimizer.step(this.params, update);
    this.version++;
    const t3 = performance.now();

    this.broadcast.update(this.params, this.version);
    for (const s of this.sessions) this.broadcast.sendTo(s);
    const t4 = performance.now();

    const diag = gradientDiagnostics(h);
    for (const w of this.conflicts.observe(diag.cosine)) {
      const message = `tasks ${w.tasks[0]} and ${w.tasks[1]} have had conflicting gradients (negative cosine, mean ${w.meanCosine.toFixed(3)}) for ${w.steps} steps`;
      this.log.warn(message, { step: step + 1 });
      this.emit({ type: 'task-conflict', level: 'warn', message, data: { step: step + 1, tasks: w.tasks, steps: w.steps, meanCosine: w.meanCosine } });
    }
    for (const note of aggregated.notes ?? []) {
      // A note (e.g. a solver fallback) is logged the first time; every step records it.
      if (!this.notesSeen.has(note)) this.log.warn(`aggregator ${this.opts.aggregator.name}: ${note}`, { step: step + 1 });
      this.notesSeen.add(note);
    }
    const record: StepRecord = {
      step: step + 1,
      version: this.version,
      losses: Object.fromEntries(this.tasks.map((t, i) => [t, losses[i]!])),
      aggregatorWeights: Object.fromEntries(this.tasks.map((t, i) => [t, aggregated.weights[i] ?? NaN])),
      ...(lossWeights ? { lossWeights: Object.fromEntries(this.tasks.map((t, i) => [t, lossWeights[i]!])) } : {}),
      ...(aggregated.notes?.length ? { aggregatorNotes: aggregated.notes } : {}),
      gradNorms: Object.fromEntries(this.tasks.map((t, i) => [t, diag.norms[i]!])),
      cosine: Object.fromEntries(this.tasks.flatMap((a, i) => this.tasks.slice(i + 1).map((b, j) => [`${a}/${b}`, diag.cosine[i]![i + 1 + j]!]))),
      samples: perTask.reduce((n, g) => n + g.samples, 0),
      timeMs: {
        units: t1 - t0,
        compute: units.reduce((s, u) => s + u.computeMs, 0),
        transfer: Math.max(0, t1 - t0 - criticalCompute(units)),
        aggregate: t2 - t1,
        optimize: t3 - t2,
        broadcast: t4 - t3,
        total: t4 - t0,
      },
    };
    this.lastLosses = record.losses;
    this.opts.onStep?.(record);
    return record.samples;
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
    const record: EvalRecord = { step, version: this.version, tasks };
    this.opts.onEval?.(record);
    if (previous === 'training') this.setState('training');
    return record;
  }
}
