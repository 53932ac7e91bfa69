// A real TrainingRun and real WorkerSessions with fake streams and fake workers, no network
// and no tensors: thousands of complete runs per minute, for fuzzing the coordinator's
// message handling. A fake worker's result for a unit is a pure function of the unit
// (step, task, shard), like a real worker's, so every undisturbed run ends with the same
// weights, whoever computed what; a test compares disturbed runs against that.
import type { CoordinatorMessage } from '../../proto/generated/mtl/v1/CoordinatorMessage.js';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import type { UnitResult } from '../../proto/generated/mtl/v1/UnitResult.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { partRange } from '../../common/datasets/sampler.js';
import { loadJobFile, taskNames, type JobSpec } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { unitGradientSize } from '../../common/parameter-layout.js';
import { chunkViews, float32Bytes, PROTOCOL_VERSION } from '../../common/protocol.js';
import { createAggregator } from '../../coordinator/aggregation/registry.js';
import type { FaultCounters } from '../../coordinator/checkpoints.js';
import { createOptimizer } from '../../common/optimizers.js';
import { prepareRun, type PreparedRun } from '../../coordinator/prepare-run.js';
import type { RunEvent, StepRecord } from '../../coordinator/run-records.js';
import { TrainingRun } from '../../coordinator/training-run.js';
import type { RunState } from '../../coordinator/training-run-options.js';
import { WorkerSession, type SessionLimits } from '../../coordinator/worker-session.js';
import { FakeCall } from './fake-call.js';
import { writeJob } from './jobs.js';

/** Chunk limit of the in-memory runs: small, so that every gradient takes several chunks. */
export const FAKE_CHUNK_BYTES = 128;

export interface FakeResult {
  header: UnitResult & { unitId: string; transferId: number; byteLength: number };
  payload: Float32Array | null;
}

/**
 * Called with each unit a fake worker is about to answer and its honest result; sends what it
 * likes through `worker`, and returns whether the honest result is sent afterwards.
 */
export type Interceptor = (unit: Unit__Output, honest: FakeResult, worker: FakeWorker) => boolean;

/** A two-task synthetic job whose units take no compute at all here. */
export function fuzzJob(overrides: { steps?: number; nonFinite?: string; shardsPerTask?: number; evalEvery?: number } = {}): object {
  const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 2, dim: 6, samples: 300 });
  return {
    name: 'fuzz',
    seed: 3,
    model: { trunk: [{ dense: { units: 6, activation: 'relu' } }], heads: { task0: [{ dense: { units: 1 } }], task1: [{ dense: { units: 1 } }] } },
    tasks: { task0: { loss: 'meanSquaredError', metrics: ['mse'], data: data(0) }, task1: { loss: 'meanSquaredError', metrics: ['mae'], data: data(1) } },
    training: {
      steps: overrides.steps ?? 4,
      batchSize: 16,
      shardsPerTask: overrides.shardsPerTask ?? 2,
      optimizer: { name: 'adam', learningRate: 0.01 },
      evalEvery: overrides.evalEvery ?? 2,
      nonFinite: overrides.nonFinite ?? 'fail',
    },
  };
}

export class FakeWorker {
  readonly call: FakeCall;
  session: WorkerSession | undefined;
  /** Honest results this worker sent, for replays. */
  readonly sent: FakeResult[] = [];
  /** Every unit it was given. */
  readonly assigned: Unit__Output[] = [];
  /** The assignments and weights headers it was sent, in order (the version they are for). */
  readonly received: Array<{ kind: 'assign' | 'weights'; version: number }> = [];
  /** The other worker of the run. */
  other: FakeWorker | undefined;
  /** Exceptions that escaped the coordinator's message handling (there must be none). */
  readonly escaped: unknown[] = [];
  private queue: Unit__Output[] = [];
  private scheduled = false;
  private stopped = false;
  private transfer = 100;

  constructor(
    private readonly harness: InMemoryHarness,
    readonly name: string,
    private readonly intercept?: Interceptor,
  ) {
    this.call = new FakeCall((m) => this.onCoordinatorMessage(m), `fake:${name}`, (m) => {
      if (m.weights) this.received.push({ kind: 'weights', version: Number(m.weights.version) });
    });
  }

  nextTransferId(): number {
    return ++this.transfer;
  }

  /** Delivers one message to the coordinator; an exception here is a finding. */
  send(message: WorkerMessage): void {
    try {
      this.call.deliver(message);
    } catch (err) {
      this.escaped.push(err);
    }
  }

  /** Delivers raw bytes; false if they do not parse (grpc-js would end the call). */
  sendBytes(bytes: Uint8Array): boolean {
    try {
      return this.call.deliverBytes(bytes);
    } catch (err) {
      this.escaped.push(err);
      return true;
    }
  }

  sendResult(result: FakeResult): void {
    this.send({ unitResult: result.header });
    if (!result.payload) return;
    let offset = 0;
    for (const data of chunkViews(float32Bytes(result.payload), FAKE_CHUNK_BYTES)) {
      this.send({ chunk: { transferId: result.header.transferId, offset, data } });
      offset += data.byteLength;
    }
    this.send({ resultEnd: { transferId: result.header.transferId, computeMs: result.header.computeMs ?? 0, busyMs: result.header.busyMs ?? 0 } });
  }

  stop(): void {
    this.stopped = true;
  }

  /** The connection breaks, as when the worker's process dies. */
  die(): void {
    this.stop();
    this.call.emit('close');
  }

  private onCoordinatorMessage(m: CoordinatorMessage): void {
    if (m.assign) {
      this.received.push({ kind: 'assign', version: Number(m.assign.units![0]!.weightsVersion) });
      this.queue.push(...(m.assign.units as Unit__Output[]));
      this.assigned.push(...(m.assign.units as Unit__Output[]));
    } else if (m.cancel) {
      const ids = new Set(m.cancel.unitIds);
      this.queue = this.queue.filter((u) => !ids.has(u.unitId));
    } else if (m.shutdown) {
      this.stop();
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    // One unit per turn of the event loop: the two workers' messages interleave.
    setImmediate(() => {
      this.scheduled = false;
      if (this.stopped || this.call.ended) return;
      const unit = this.queue.shift();
      if (!unit) return;
      const honest = this.harness.honestResult(unit, this.nextTransferId());
      if (this.intercept?.(unit, honest, this) ?? true) {
        this.sendResult(honest);
        this.sent.push(honest);
      }
      this.schedule();
    });
  }
}

export interface InMemoryOutcome {
  status: 'succeeded' | 'failed';
  error: Error | undefined;
  params: Float32Array;
  /** Steps whose update is in `params`. */
  stepsDone: number;
  counters: FaultCounters;
  rejectedMessages: number;
  steps: StepRecord[];
  /** Parameters after each completed step (index = steps done), from the run's own snapshots. */
  paramsAfter: Float32Array[];
  events: RunEvent[];
  workers: FakeWorker[];
  /** Every state the run went through, in order. */
  states: RunState[];
  /** The run's state when each step's record came out. */
  stateAtStep: RunState[];
}

export interface RunOptions {
  /** The second worker's units go through this. */
  intercept?: Interceptor;
  /** The first worker's units too (it is then not honest either). */
  interceptFirst?: Interceptor;
  limits?: Partial<SessionLimits>;
  /** Start with the first worker alone (the run needs one). */
  solo?: boolean;
  /** Called once the run is set up: `join` adds a worker at any time. */
  control?: (ctl: { run: TrainingRun; join: (name: string, intercept?: Interceptor) => FakeWorker }) => void;
}

export class InMemoryHarness {
  readonly prepared: PreparedRun;
  readonly job: JobSpec;
  private readonly tasks: string[];

  constructor(jobDoc: object) {
    this.prepared = prepareRun(loadJobFile(writeJob(jobDoc)));
    this.job = this.prepared.loaded.spec;
    this.tasks = taskNames(this.job);
  }

  /** What an honest worker answers for `unit`: a pure function of (kind, step, task, shard). */
  honestResult(unit: Unit__Output, transferId: number): FakeResult {
    const t = this.tasks.indexOf(unit.task);
    const base = { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion, computeMs: 1 };
    const wave = (i: number) => Math.sin(1 + i * 0.37 + unit.step * 1.7 + t * 2.9 + unit.shard * 0.53);
    if (unit.kind === 'UNIT_KIND_EVAL') {
      const [from, to] = partRange(this.prepared.testSizes.get(unit.task) ?? 0, unit.shardCount, unit.shard);
      const metrics = Object.fromEntries(this.job.tasks[unit.task]!.metrics.map((m, k) => [m, 0.5 + 0.1 * wave(k)]));
      return { header: { ...base, sampleCount: to - from, loss: 1 + wave(7), metrics, byteLength: 0, transferId: 0 }, payload: null };
    }
    const { batchSize, shardsPerTask } = this.job.training;
    const [from, to] = partRange(batchSize, shardsPerTask, unit.shard);
    if (unit.kind === 'UNIT_KIND_LOOKAHEAD') {
      // The loss of the unit's batch at the lookahead weights (their version stands for them).
      return { header: { ...base, sampleCount: to - from, loss: 1 + wave(13) + 1e-3 * (unit.weightsVersion % 7), metrics: {}, byteLength: 0, transferId: 0 }, payload: null };
    }
    const payload = new Float32Array(unitGradientSize(this.prepared.layout, unit.task));
    for (let i = 0; i < payload.length; i++) payload[i] = 0.05 * wave(i);
    return { header: { ...base, sampleCount: to - from, loss: 1 + wave(11), metrics: {}, byteLength: payload.byteLength, transferId }, payload };
  }

  /**
   * One complete run with an honest worker and a second worker whose units go through
   * `intercept` (`interceptFirst`: the first worker's too; it is then not honest either).
   */
  async run(options: RunOptions = {}): Promise<InMemoryOutcome> {
    const { layout, loaded, testSizes, trainSizes, initialParams } = this.prepared;
    const job = this.job;
    const { name, ...aggregatorOptions } = job.training.aggregator;
    const steps: StepRecord[] = [];
    const events: RunEvent[] = [];
    const paramsAfter: Float32Array[] = [initialParams.slice()];
    const states: RunState[] = [];
    const stateAtStep: RunState[] = [];
    const run: TrainingRun = new TrainingRun({
      job,
      jobDir: loaded.dir,
      runId: 'fuzz',
      layout,
      initialParams,
      aggregator: createAggregator(name, aggregatorOptions, { seed: job.seed }),
      optimizer: createOptimizer(job.training.optimizer, layout.totalSize),
      testSizes,
      trainSizes,
      logger: silentLogger,
      minWorkers: options.solo ? 1 : 2,
      waitForWorkersMs: 10_000,
      maxChunkBytes: FAKE_CHUNK_BYTES,
      onStateChange: (state) => states.push(state),
      onStep: (r) => {
        stateAtStep.push(run.currentState);
        steps.push(r);
        paramsAfter[r.step] = run.snapshot().params;
      },
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'step-skipped') paramsAfter[(e.data as { step: number }).step] = run.snapshot().params;
      },
    });
    const workers: FakeWorker[] = [];
    const join = (name: string, intercept?: Interceptor): FakeWorker => {
      const w = new FakeWorker(this, name, intercept);
      workers.push(w);
      w.session = new WorkerSession(run.newWorkerId(), w.call.getPeer(), w.call.asCall, run, silentLogger, { ...options.limits, maxChunkBytes: FAKE_CHUNK_BYTES });
      w.send({ hello: { name: w.name, protocolVersion: PROTOCOL_VERSION, backend: 'fake', device: 'none', capacity: 1 } });
      return w;
    };
    if (options.solo) {
      join('honest', options.interceptFirst);
    } else {
      const first = new FakeWorker(this, 'honest', options.interceptFirst);
      const second = new FakeWorker(this, 'fuzzed', options.intercept);
      first.other = second;
      second.other = first;
      for (const w of [first, second]) {
        workers.push(w);
        w.session = new WorkerSession(run.newWorkerId(), w.call.getPeer(), w.call.asCall, run, silentLogger, { ...options.limits, maxChunkBytes: FAKE_CHUNK_BYTES });
        w.send({ hello: { name: w.name, protocolVersion: PROTOCOL_VERSION, backend: 'fake', device: 'none', capacity: 1 } });
      }
    }
    options.control?.({ run, join });
    let params: Float32Array;
    let error: Error | undefined;
    try {
      params = (await run.train()).params;
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
      params = run.snapshot().params;
    } finally {
      for (const w of workers) w.stop();
    }
    return { status: error ? 'failed' : 'succeeded', error, params, stepsDone: run.snapshot().step, counters: { ...run.counters }, rejectedMessages: run.rejectedMessages, steps, paramsAfter, events, workers, states, stateAtStep };
  }
}
