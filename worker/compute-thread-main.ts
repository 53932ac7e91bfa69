// The compute thread of a worker (node:worker_threads; started by compute-thread.ts). It loads
// the backend, builds a job's compute environment, applies weights and computes units, one
// message at a time in the order they were posted, while the session thread keeps the
// coordinator's stream, heartbeats and transfers going. Everything tfjs happens here.
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { forgetResolved, recordResolved } from '../common/data-store/resolve.js';
import { errorMessage, IllegalStateError, MtlError } from '../common/errors.js';
import { validateJob } from '../common/job-spec.js';
import { selectBackend, type SelectedBackend } from './backend.js';
import type { ComputeDone, ComputeRequest, ComputeThreadData, EnvironmentReady, EnvironmentRequest, FromThread, PayloadPiece, StreamedDataStats, StreamEvent, ThreadErrorInfo, ToThread, UnitOutput } from './compute-messages.js';
import { buildComputeEnvironment, type JobEnvironment } from './compute-environment.js';
import type { TrainUnitOutput, UnitStream } from './unit-compute.js';
import { waitForFloats, weightsWaitMs, type WeightsStream } from './streamed-weights.js';

if (parentPort === null) throw new IllegalStateError('compute-thread-main.js runs as a worker thread (see compute-thread.ts)');
const port = parentPort;
const { backend: choice } = workerData as ComputeThreadData;

let backend: SelectedBackend | undefined;
let env: JobEnvironment | undefined;
/** The remote data paths recorded for the current environment (forgotten when it is replaced). */
let recorded = new Map<string, string>();
/** A streamed version for a runner that takes weights only whole: applied before the next computation. */
let whole: { stream: WeightsStream; release: () => void } | undefined;

function dropWhole(): void {
  whole?.release();
  whole = undefined;
}

/** Streamed weights (the buffer goes back to the session once the runner stops reading it). */
function beginWeights(stream: WeightsStream): void {
  if (!env) throw new IllegalStateError('weights before the job (no compute environment)');
  dropWhole();
  const release = () => post({ type: 'buffer', params: stream.params });
  if (env.runner.beginWeights) env.runner.beginWeights(stream, release);
  else whole = { stream, release };
}

/** The whole streamed version, for a runner without beginWeights, once every value is in. */
function applyWhole(): void {
  if (!whole || !env) return;
  waitForFloats(whole.stream, whole.stream.params.length);
  env.runner.setWeights(whole.stream.params);
  dropWhole();
}

function errorInfo(err: unknown): ThreadErrorInfo {
  const name = err instanceof Error ? err.name : 'Error';
  return { name, message: errorMessage(err), ...(err instanceof MtlError ? { code: err.code } : {}) };
}

function post(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/** `a` as an array that owns its whole buffer (so it can be transferred): itself, or a copy. */
function owned(a: Float32Array): Float32Array {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer ? a : a.slice();
}

function prepare(request: EnvironmentRequest): EnvironmentReady {
  if (!backend) throw new IllegalStateError('no backend');
  dropWhole();
  env?.runner.dispose();
  env = undefined;
  forgetResolved(recorded);
  recorded = new Map(request.resolved);
  recordResolved(recorded);
  const job = validateJob(JSON.parse(request.jobJson) as unknown, 'Welcome.job_json');
  env = buildComputeEnvironment(job, request.jobDir, backend.name, request.modelJson, request.dataPlanJson);
  const tensors = env.layout.tensors.map((t) => ({ name: t.name, group: t.group, shape: [...t.shape] }));
  return { layout: { tensors, totalSize: env.layout.totalSize }, fastPath: env.runner.fastPath, sources: [...env.computer.sources] };
}

function payload(out: TrainUnitOutput): UnitOutput {
  const data = owned(out.grads);
  return { sampleCount: out.sampleCount, loss: out.loss, metrics: {}, payloadSize: data.length, pieces: [{ offset: 0, data }] };
}

/** Posts a streaming train request's units as they are computed (StreamEvent). */
function unitStream(id: number, bucketBytes: number, started: number): UnitStream {
  let last = started;
  let lastWait = weightsWaitMs();
  const event = (e: StreamEvent, transfer: ArrayBuffer[] = []) => post({ type: 'stream', id, event: e }, transfer);
  return {
    bucketBytes,
    begin: (unit, sampleCount, loss, payloadSize) => event({ kind: 'begin', unit, sampleCount, loss, payloadSize }),
    piece: (unit, offset, data) => {
      // A copy of its own: the view is into the unit's payload, which the backward goes on filling.
      const copy = data.slice();
      event({ kind: 'piece', unit, piece: { offset, data: copy } }, [copy.buffer]);
    },
    end: (unit) => {
      // Time spent waiting for weights still on the wire is not compute time.
      const now = performance.now();
      const wait = weightsWaitMs();
      event({ kind: 'end', unit, computeMs: now - last - (wait - lastWait) });
      last = now;
      lastWait = wait;
    },
  };
}

function compute(id: number, request: ComputeRequest, started: number): UnitOutput[] {
  if (!env) throw new IllegalStateError('a unit before its job (no compute environment)');
  const { computer } = env;
  switch (request.kind) {
    case 'train': {
      // Only the fast path streams; the autodiff path's outputs go back whole in the reply.
      const streaming = request.bucketBytes !== undefined && env.runner.fastPath;
      const outputs = computer.trainGroup(request.units, streaming ? unitStream(id, request.bucketBytes!, started) : undefined);
      return streaming ? outputs.map((o) => ({ sampleCount: o.sampleCount, loss: o.loss, metrics: {}, payloadSize: o.grads.length, pieces: [], streamed: true })) : outputs.map(payload);
    }
    case 'fisher':
      return [payload(computer.fisher(request.unit))];
    case 'lookahead': {
      const out = computer.lookahead(request.unit);
      return [{ ...out, metrics: {}, payloadSize: 0, pieces: [] }];
    }
    case 'eval': {
      const out = computer.evaluate(request.unit);
      return [{ ...out, payloadSize: 0, pieces: [] }];
    }
  }
}

/** Streamed datasets of the current job: what their chunk caches did. */
function streamedStats(): StreamedDataStats[] {
  const datasets = new Set([...(env?.computer.bindings.values() ?? [])].map((b) => b.dataset));
  const out: StreamedDataStats[] = [];
  for (const dataset of datasets) {
    const stats = dataset.cacheStats;
    if (stats !== undefined) out.push({ data: dataset.description, scanned: dataset.scanned ?? null, stats: { ...stats } });
  }
  return out;
}

function onMessage(message: ToThread): void {
  switch (message.type) {
    case 'stats':
      post({ type: 'reply', id: message.id, streamed: streamedStats() });
      return;
    case 'environment':
      try {
        post({ type: 'reply', id: message.id, environment: prepare(message.request) });
      } catch (err) {
        post({ type: 'reply', id: message.id, error: errorInfo(err) });
      }
      return;
    case 'weights-stream':
      try {
        beginWeights(message.stream);
      } catch (err) {
        post({ type: 'fatal', error: errorInfo(err) });
      }
      return;
    case 'compute': {
      const started = performance.now();
      const waitedBefore = weightsWaitMs();
      let done: ComputeDone;
      try {
        applyWhole();
        done = { outputs: compute(message.id, message.request, started), busyMs: 0 };
        done.busyMs = performance.now() - started - (weightsWaitMs() - waitedBefore);
      } catch (err) {
        post({ type: 'reply', id: message.id, error: errorInfo(err) });
        return;
      }
      const buffers = new Set<ArrayBuffer>(done.outputs.flatMap((o) => o.pieces.map((p: PayloadPiece) => p.data.buffer as ArrayBuffer)));
      post({ type: 'reply', id: message.id, done }, [...buffers]);
      return;
    }
  }
}

try {
  tf.enableProdMode();
  backend = await selectBackend(choice);
  port.on('message', onMessage);
  post({ type: 'started', backend });
} catch (err) {
  post({ type: 'started', error: errorInfo(err) });
}
