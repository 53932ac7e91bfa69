// Weights that reach the compute thread while they are still arriving (issue 18, item 3). The
// session thread writes each chunk of a broadcast straight into a SharedArrayBuffer and then
// publishes how many leading floats are in; the compute thread, which got the buffer when the
// weights header came, starts its units at once and waits (Atomics.wait) only when a layer needs
// a tensor whose values are not all there yet. The forward pass of the first layers, the batch's
// data and the tensors' upload into the backend so overlap with the rest of the transfer.
//
// Order: chunk bytes are stored with ordinary writes, then the count with Atomics.store; a
// reader that sees the count through Atomics.load sees the bytes (atomics are sequentially
// consistent). A count never goes down; a transfer that will not complete is marked aborted so
// that a waiting thread fails its unit instead of waiting for ever.
import { WeightsIncompleteError } from '../common/errors.js';

/** progress[READY]: leading floats of `params` that hold their final values. */
const READY = 0;
/** progress[STATE]: OPEN, or ABORTED once the transfer cannot complete. */
const STATE = 1;
const ABORTED = 1;
/** How often a waiting thread looks at the state word even without a notify (a lost wake-up costs at most this). */
const POLL_MS = 1000;

/** One version's weights on their way: shared with the compute thread by postMessage (not transferred). */
export interface WeightsStream {
  /** All the version's parameters, layout order, over a SharedArrayBuffer. */
  readonly params: Float32Array;
  /** Two Int32 words over a SharedArrayBuffer: READY and STATE. */
  readonly progress: Int32Array;
}

/** A float array of `size` values over shared memory, for a WeightsStream. */
export function sharedFloats(size: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(size * Float32Array.BYTES_PER_ELEMENT));
}

function isShared(a: Float32Array): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

export function openWeightsStream(params: Float32Array): WeightsStream {
  if (!isShared(params)) throw new TypeError('a weights stream needs parameters in shared memory (sharedFloats)');
  return { params, progress: new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT)) };
}

/** Session side: the first `floats` values are final. */
export function publishFloats(stream: WeightsStream, floats: number): void {
  Atomics.store(stream.progress, READY, floats);
  Atomics.notify(stream.progress, READY);
}

/** Session side: the transfer will not complete; a thread waiting on it fails its unit. */
export function abortWeightsStream(stream: WeightsStream): void {
  Atomics.store(stream.progress, STATE, ABORTED);
  Atomics.notify(stream.progress, READY);
}

/** Floats published so far. */
export function readyFloats(stream: WeightsStream): number {
  return Atomics.load(stream.progress, READY);
}

let waited = 0;

/** Milliseconds this thread has spent in waitForFloats so far: compute time is reported without them. */
export function weightsWaitMs(): number {
  return waited;
}

/** Compute-thread side: blocks until the first `floats` values are in; throws if the transfer was aborted first. */
export function waitForFloats(stream: WeightsStream, floats: number): void {
  for (;;) {
    const ready = Atomics.load(stream.progress, READY);
    if (ready >= floats) return;
    if (Atomics.load(stream.progress, STATE) === ABORTED) {
      throw new WeightsIncompleteError(`the weights stopped arriving after ${ready} of the ${floats} values this unit needs (connection to the coordinator lost?)`);
    }
    const start = performance.now();
    Atomics.wait(stream.progress, READY, ready, POLL_MS);
    waited += performance.now() - start;
  }
}
