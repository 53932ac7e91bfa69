// The synchronous step loop of docs/design.md: each step's units go to the workers, their
// results are combined in fixed order, the update is applied and the new weights broadcast
// (encoded once); evaluations, sequential stages and checkpoints between steps. The parts:
// membership.ts (who is in the run, waiting for workers), phase-runner.ts (units → workers,
// reassignment, backups), result-intake.ts (results checked and stored), step-update.ts (the
// aggregation and the optimizer), affinity-diagnostics.ts, stage-transition.ts, evaluation.ts.
import type { Goodbye__Output } from '../proto/generated/mtl/v1/Goodbye.js';
import type { Hello__Output } from '../proto/generated/mtl/v1/Hello.js';
import type { UnitFailed__Output } from '../proto/generated/mtl/v1/UnitFailed.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import { IllegalStateError, RunAbortedError, UnsupportedProtocolError } from '../common/errors.js';
import { bytesPerValue } from '../common/half-precision.js';
import { taskNames } from '../common/job-spec.js';
import type { Logger } from '../common/logging.js';
import { unitGradientSize } from '../common/parameter-layout.js';
import { MAX_CHUNK_BYTES, PROTOCOL_VERSION } from '../common/protocol.js';
import { StagePlan } from '../common/stages.js';
import { zeroCounters, type FaultCounters } from './checkpoints.js';
import { evalResults, evalUnits } from './evaluation.js';
import { AffinityDiagnostics, type AffinitySummary } from './affinity-diagnostics.js';
import { Membership, type WorkerRecord } from './membership.js';
import { PhaseRunner } from './phase-runner.js';
import { ResultIntake } from './result-intake.js';
import type { RunContext } from './run-context.js';
import type { EvalRecord, TrainingOutcome } from './run-records.js';
import { endStage } from './stage-transition.js';
import { StageProgress, type ContinualSummary } from './stage-progress.js';
import { BlockGramian } from './aggregation/block-gramian.js';
import { gradientDiagnostics } from './step-math.js';
import { stepRecord } from './step-record.js';
import { StepUpdate } from './step-update.js';
import type { RunSnapshot, RunState, TrainingRunOptions } from './training-run-options.js';
import { batchUnits, type PendingUnit } from './units.js';
import { WeightsBroadcast } from './weights-broadcast.js';
import type { ResultSink, SessionHandler, WorkerSession } from './worker-session.js';

/** How often the failure detector looks at the workers. */
const TICK_MS = 200;

/** Where the run is in its life; what it is doing while it runs is derived (see `derivedState`). */
type Lifecycle = 'created' | 'running' | 'finished' | 'failed';

export class TrainingRun implements SessionHandler {
  private lifecycle: Lifecycle = 'created';
  /** The last state reported (onStateChange); always `derivedState()` once it changes. */
  private state: RunState = 'created';
  private readonly params: Float32Array;
  private version: number;
  private step: number;
  private completedSteps: number;
  private samples: number;
  private trainMs: number;
  readonly counters: FaultCounters;
  private failure: Error | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly broadcast: WeightsBroadcast;
  private readonly log: Logger;
  private readonly tasks: string[];
  private lastLosses: Record<string, number> = {};
  private readonly plan: StagePlan;
  private readonly stages: StageProgress;
  private readonly ctx: RunContext;
  private readonly members: Membership;
  private readonly phases: PhaseRunner;
  private readonly intake: ResultIntake;
  private readonly update: StepUpdate;
  private readonly affinity: AffinityDiagnostics;
  private hasStarted = false;

  constructor(private readonly opts: TrainingRunOptions) {
    this.params = opts.initialParams.slice();
    this.log = opts.logger;
    this.tasks = taskNames(opts.job);
    this.version = opts.resume?.version ?? 0;
    this.completedSteps = opts.resume?.step ?? 0;
    this.step = this.completedSteps;
    this.samples = opts.resume?.samples ?? 0;
    this.trainMs = opts.resume?.trainMs ?? 0;
    this.counters = { ...zeroCounters(), ...opts.resume?.counters };
    const compression = opts.job.transport.compression;
    this.ctx = {
      job: opts.job,
      layout: opts.layout,
      log: opts.logger,
      clock: opts.clock ?? Date.now,
      counters: this.counters,
      compression,
      step: () => this.step,
      running: () => this.active,
      emit: (event) => this.opts.onEvent?.(event),
      fail: (error) => this.fail(error),
    };
    this.members = new Membership(this.ctx, { minWorkers: opts.minWorkers, waitForWorkersMs: opts.waitForWorkersMs, onWaitingChange: () => this.refreshState() });
    this.phases = new PhaseRunner(
      this.ctx,
      this.members,
      () => this.refreshState(),
      () => {
        for (const s of this.sessions) this.broadcast.sendTo(s);
      },
    );
    this.intake = new ResultIntake(this.ctx, this.phases, opts.onUnit);
    this.broadcast = new WeightsBroadcast(opts.layout, opts.maxChunkBytes ?? MAX_CHUNK_BYTES, compression);
    this.broadcast.update(this.params, this.version);
    this.plan = new StagePlan(opts.job);
    const lookaheadHost = { params: this.params, plan: this.plan, phases: this.phases, broadcast: this.broadcast, version: () => this.version };
    this.affinity = new AffinityDiagnostics(this.ctx, lookaheadHost, this.tasks, opts.resume?.affinity);
    this.stages = new StageProgress(opts.job, this.plan, opts.layout);
    if (opts.resume?.extras) this.stages.restore(opts.resume.extras);
    else if (this.plan.sequential) this.stages.forgetting.beginStage(this.sharedParams());
    // The optimizer and aggregator given are the current stage's (restored from the checkpoint by the caller).
    const stage = this.plan.stages[this.stages.stagesDone] ?? this.plan.stageAt(this.completedSteps);
    this.update = new StepUpdate(this.ctx, this.plan, this.stages, this.params, { stage, optimizer: opts.optimizer, aggregator: opts.aggregator });
  }

  private sharedParams(): Float32Array {
    const { offset, size } = this.opts.layout.shared;
    return this.params.subarray(offset, offset + size);
  }

  /** Mean task affinity over the steps so far (TAG), `{ from: { to: Z } }`. */
  affinitySummary(): AffinitySummary {
    return this.affinity.summary();
  }

  /** Messages rejected (logged, counted, never applied); also `counters.rejectedMessages`. */
  get rejectedMessages(): number {
    return this.counters.rejectedMessages;
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
    return this.members.sessions;
  }

  /** Workers that were members and are gone (left, lost, or dismissed at the end), oldest first. */
  get departedWorkers(): readonly WorkerRecord[] {
    return this.members.departed;
  }

  newWorkerId(): string {
    return this.members.newWorkerId();
  }

  /** True once training has begun (the first wait for workers is over). */
  get started(): boolean {
    return this.hasStarted;
  }

  /**
   * What the run is doing: waiting whenever it needs workers and none takes units (at the start,
   * or after all have gone, whatever phase it is in), evaluating during an evaluation, training
   * otherwise. Derived, never set, so that no path can leave a stale state behind.
   */
  private derivedState(): RunState {
    if (this.lifecycle !== 'running') return this.lifecycle;
    if (this.members.waiting) return 'waiting-for-workers';
    return this.phases.current?.kind === 'eval' ? 'evaluating' : 'training';
  }

  private refreshState(): void {
    const state = this.derivedState();
    if (state === this.state) return;
    this.state = state;
    this.opts.onStateChange?.(state);
  }

  private setLifecycle(lifecycle: Lifecycle): void {
    this.lifecycle = lifecycle;
    this.refreshState();
  }

  /** Training has begun and not ended: a worker lost now is a death, and units lost now go to others. */
  private get active(): boolean {
    return this.lifecycle === 'running' && this.hasStarted && !this.failure;
  }

  /**
   * False between the aggregator's update of its own state and the optimizer step: a
   * failure there leaves the two out of step, and no checkpoint may be taken of it.
   */
  get consistent(): boolean {
    return this.update.consistent;
  }

  /** The run's state after `completedSteps` steps, for a checkpoint. Valid between steps only. */
  snapshot(): RunSnapshot {
    return {
      step: this.completedSteps,
      version: this.version,
      samples: this.samples,
      trainMs: this.trainMs,
      counters: { ...this.counters },
      affinity: this.affinity.state(),
      params: this.params.slice(),
      ...this.update.state(),
      ...(this.plan.sequential ? { extras: this.stages.extras() } : {}),
    };
  }

  /** Saves a checkpoint; a failure to save is reported, not fatal: training goes on. */
  private async checkpoint(): Promise<void> {
    try {
      await this.opts.saveCheckpoint?.(this.snapshot());
    } catch (err) {
      this.log.error('could not save a checkpoint; training continues', { step: this.completedSteps, error: err instanceof Error ? err.message : String(err) });
      this.ctx.emit({ type: 'checkpoint-failed', level: 'error', message: `checkpoint at step ${this.completedSteps} failed`, data: { step: this.completedSteps } });
    }
  }

  // ---- session handler -------------------------------------------------------------------

  onHello(session: WorkerSession, hello: Hello__Output): void {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      throw new UnsupportedProtocolError(`worker speaks protocol ${hello.protocolVersion}, this coordinator ${PROTOCOL_VERSION}`);
    }
    if (this.lifecycle === 'finished' || this.lifecycle === 'failed') throw new IllegalStateError('the run is over');
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
          modelJson: this.opts.layout.graph ? JSON.stringify(this.opts.layout.graph.spec) : '',
          dataPlanJson: this.opts.dataPlans ?? '',
        },
      })
      .catch(() => undefined);
    this.broadcast.sendTo(session);
    this.members.join(session, hello);
    // Units nobody holds (their worker died while no one else was there) go to the newcomer.
    this.phases.dispatchOrphans();
  }

  beginResult(session: WorkerSession, header: UnitResult__Output): ResultSink {
    return this.intake.beginResult(session, header);
  }

  resultChunk(session: WorkerSession, header: UnitResult__Output, sink: ResultSink, from: number, to: number): void {
    this.intake.resultChunk(session, header, sink, from, to);
  }

  completeResult(session: WorkerSession, header: UnitResult__Output, sink: ResultSink): void {
    this.intake.completeResult(session, header, sink);
  }

  onUnitFailed(session: WorkerSession, failure: UnitFailed__Output): void {
    this.intake.onUnitFailed(session, failure);
  }

  onRejected(session: WorkerSession, error: Error, unitId: string | undefined): void {
    this.intake.onRejected(session, error, unitId);
  }

  onGoodbye(session: WorkerSession, goodbye: Goodbye__Output): void {
    this.counters.departures++;
    this.log.info('worker is leaving', { worker: session.label, reason: goodbye.reason, returned: goodbye.returnedUnitIds.length });
    this.ctx.emit({ type: 'worker-leaving', level: 'info', message: `worker ${session.label} is leaving: ${goodbye.reason}`, data: { worker: session.id, step: this.step, returned: goodbye.returnedUnitIds } });
    this.phases.releaseAndReassign(session);
  }

  onClosed(session: WorkerSession, reason: string): void {
    if (session.closedForErrors) this.counters.sessionsClosedForErrors++;
    if (this.members.leave(session, reason) === undefined) return;
    this.phases.releaseAndReassign(session);
  }

  // ---- the loop ----------------------------------------------------------------------------

  /** Stops the run: the current phase fails with `error` and train() rejects with it. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.phases.stop(error);
    this.members.failWaiters(error);
  }

  abort(reason: string): void {
    this.fail(new RunAbortedError(reason));
  }

  async train(): Promise<TrainingOutcome> {
    if (this.lifecycle !== 'created') throw new IllegalStateError(`train() called in state ${this.state}`);
    try {
      this.setLifecycle('running');
      await this.members.waitForStart();
      const { steps, evalEvery } = this.opts.job.training;
      const every = this.opts.job.checkpoint.every;
      this.hasStarted = true;
      this.ticker = setInterval(() => this.phases.supervise(), TICK_MS);
      this.ticker.unref();
      for (let step = this.completedSteps; step < steps; step++) {
        const started = performance.now();
        this.step = step;
        if (this.plan.sequential && this.stages.stagesDone < this.plan.stageAt(step).index) {
          await endStage(this.ctx, this.stageHost(), this.plan.stages[this.stages.stagesDone]!);
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
      this.setLifecycle('finished');
      return { params: this.params.slice(), steps, samples: this.samples, trainMs: this.trainMs, finalEval, workers: this.members.everyone() };
    } catch (err) {
      this.setLifecycle('failed');
      throw this.failure ?? err;
    } finally {
      clearInterval(this.ticker);
      this.members.close();
    }
  }

  private stageHost(): Parameters<typeof endStage>[1] {
    return { params: this.params, plan: this.plan, stages: this.stages, phases: this.phases, update: this.update, trainSizes: this.opts.trainSizes, version: () => this.version, evaluate: (step) => this.evaluate(step) };
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
    const bytes = (task: string) => unitGradientSize(layout, task) * bytesPerValue(this.ctx.compression);
    const units = batchUnits(this.plan, step, active, 'train', bytes);
    // H is accumulated block by block as the results stream in (BlockGramian).
    const blockGramian = new BlockGramian(units.map((u) => ({ task: active.indexOf(u.task), samples: u.expectedSamples })), active.length, layout.shared.size);
    const t0 = performance.now();
    const phase = await this.phases.run('train', step, units, this.version, { gramian: blockGramian, index: new Map(units.map((u, i) => [u, i])) });
    const t1 = performance.now();
    if (phase.skipped !== undefined) {
      // No update: the weights, their version and the optimizer state stay as they are.
      this.counters.skippedSteps++;
      this.completedSteps = step + 1;
      this.log.warn('step skipped: a result was not finite (training.nonFinite: skip-step)', { step: step + 1, error: phase.skipped });
      this.ctx.emit({ type: 'step-skipped', level: 'warn', message: `step ${step + 1} skipped, no update applied: ${phase.skipped}`, data: { step: step + 1, skippedSteps: this.counters.skippedSteps } });
      return;
    }

    const { perTask, gramian: h } = blockGramian.finish(active.map((task) => units.filter((u) => u.task === task).map((u) => u.train!)));
    this.opts.onTaskGradients?.(step, new Map(active.map((t, i) => [t, perTask[i]!.grads])));
    const rows = perTask.map((g) => g.grads.subarray(0, layout.shared.size));
    const losses = perTask.map((g) => g.loss);
    // The exact lookahead's time is reported apart from the aggregation's, and only where it ran.
    let exact: number[][] | undefined;
    let lookaheadMs = 0;
    if (this.affinity.exactDue(step, active)) {
      const lookaheadStart = performance.now();
      exact = await this.affinity.measure(step, stage, active, rows, losses);
      lookaheadMs = performance.now() - lookaheadStart;
    }
    const gradients = { step, stage, active, perTask, rows, losses, gramian: h };
    const aggregated = this.update.aggregate(gradients);
    const t2 = performance.now();
    const penalty = this.update.apply(gradients, aggregated);
    // The step is complete from here on: a checkpoint taken now must say so.
    const samples = perTask.reduce((n, g) => n + g.samples, 0);
    this.version++;
    this.completedSteps = step + 1;
    this.samples += samples;
    const t3 = performance.now();

    // Encoded now; sent when the next phase has sent its units (PhaseRunner's sendWeights).
    this.broadcast.update(this.params, this.version);
    const t4 = performance.now();

    const diagnostics = gradientDiagnostics(h);
    const affinity = this.affinity.firstOrder(active, h, losses, stage.spec.learningRate ?? job.training.optimizer.learningRate);
    this.update.observe(step + 1, diagnostics.cosine, aggregated.notes);
    const record = stepRecord({
      step: step + 1,
      version: this.version,
      ...(this.plan.sequential ? { sequential: { stage: stage.name, penalty } } : {}),
      active,
      losses,
      aggregated,
      diagnostics,
      affinity,
      ...(exact ? { exactAffinity: exact } : {}),
      samples,
      units,
      times: { start: t0, unitsDone: t1, aggregated: t2, optimized: t3, broadcast: t4, lookaheadMs },
      workers: this.members.active().length,
      faults: { ...this.counters },
    });
    this.lastLosses = record.losses;
    this.opts.onStep?.(record);
    // Nothing of this step reads its payloads any more: the next step's results reuse them.
    this.intake.recycleStep(units);
  }

  /** Evaluates every task on its held-out split with the current weights. */
  async evaluate(step: number): Promise<EvalRecord> {
    const units: PendingUnit[] = evalUnits(this.tasks, this.opts.testSizes);
    await this.phases.run('eval', step, units, this.version);
    const tasks = evalResults(this.opts.job, this.tasks, units);
    const record: EvalRecord = { step, version: this.version, ...(this.plan.sequential ? { stage: this.plan.stageAt(Math.max(0, step - 1)).name } : {}), tasks };
    this.opts.onEval?.(record);
    return record;
  }
}
