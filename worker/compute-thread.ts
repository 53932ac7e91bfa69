// The session thread's handle on its compute thread (compute-thread-main.ts): starts it, shares
// weights with it as they arrive (streamed-weights.ts) and posts units, and turns its replies into promises. A thread
// that dies (an uncaught error, out of memory, terminated) fails every pending and later
// request with ComputeThreadError instead of leaving them waiting. The thread keeps the process
// alive only while a request is pending.
import { Worker as NodeThread, type ResourceLimits } from 'node:worker_threads';
import { BackendUnavailableError, ComputeThreadError, errorMessage } from '../common/errors.js';
import type { BackendChoice } from './backend-choices.js';
import type { SelectedBackend } from './backend.js';
import { sharedFloats, type WeightsStream } from './streamed-weights.js';
import type { ComputeDone, ComputeRequest, ComputeThreadData, EnvironmentReady, EnvironmentRequest, FromThread, StreamedDataStats, StreamEvent, ThreadErrorInfo, ToThread } from './compute-messages.js';

/** An error the thread reported for a request (a unit it could not compute, a job it could not load): the thread goes on. */
export class ThreadReportedError extends Error {
  constructor(
    readonly info: ThreadErrorInfo,
    /** The error's code when it was an MtlError there. */
    readonly code = info.code,
  ) {
    super(info.message);
    this.name = info.name;
  }
}

interface Pending {
  resolve: (reply: Extract<FromThread, { type: 'reply' }>) => void;
  reject: (err: Error) => void;
  /** A streaming compute request's events, ahead of its reply. */
  onStream?: (event: StreamEvent) => void;
}

export interface ComputeThreadOptions {
  /** Heap limits of the thread (tests use them to make it run out of memory). */
  resourceLimits?: ResourceLimits;
}

export class ComputeThread {
  /** Threads started in this process that have not exited yet (tests check none is left behind). */
  static running = 0;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lost: ComputeThreadError | undefined;
  private terminating: Promise<void> | undefined;
  private readonly exited: Promise<void>;
  /** Weights buffers (shared memory) the thread no longer reads, for the next versions. */
  private readonly spare: Float32Array[] = [];
  private onStarted: ((m: Extract<FromThread, { type: 'started' }>) => void) | undefined;

  private constructor(private readonly thread: NodeThread) {
    ComputeThread.running++;
    thread.on('message', (m: FromThread) => this.onMessage(m));
    thread.on('messageerror', (err) => this.die(`a message from the compute thread could not be read: ${errorMessage(err)}`));
    thread.on('error', (err) => {
      const oom = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.die(oom ? `the compute thread ran out of memory (${err.message})` : `the compute thread failed: ${errorMessage(err)}`);
    });
    this.exited = new Promise((resolve) =>
      thread.once('exit', (code) => {
        ComputeThread.running--;
        this.die(`the compute thread exited (code ${code})`);
        resolve();
      }),
    );
  }

  /** Starts a compute thread and loads its backend (`choice`, as `selectBackend` does). */
  static async start(choice: BackendChoice, options: ComputeThreadOptions = {}): Promise<{ thread: ComputeThread; backend: SelectedBackend }> {
    const data: ComputeThreadData = { backend: choice };
    const handle = new ComputeThread(
      new NodeThread(new URL('./compute-thread-main.js', import.meta.url), { workerData: data, ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}) }),
    );
    const started = await new Promise<Extract<FromThread, { type: 'started' }>>((resolve, reject) => {
      handle.onStarted = resolve;
      handle.pending.set(0, { resolve: () => undefined, reject });
    }).finally(() => {
      handle.pending.delete(0);
      handle.refreshRef();
    });
    if (started.backend) return { thread: handle, backend: started.backend };
    await handle.terminate();
    const message = started.error?.message ?? 'the compute thread loaded no backend';
    throw started.error?.code === 'BACKEND_UNAVAILABLE' ? new BackendUnavailableError(message) : new ComputeThreadError(message);
  }

  /** Why the thread is gone, once it is. */
  get failure(): ComputeThreadError | undefined {
    return this.lost;
  }

  private onMessage(m: FromThread): void {
    switch (m.type) {
      case 'started':
        this.onStarted?.(m);
        return;
      case 'buffer':
        if (this.spare.length < 2) this.spare.push(m.params);
        return;
      case 'fatal':
        this.die(`the compute thread cannot go on: ${m.error.message}`);
        void this.thread.terminate();
        return;
      case 'stream':
        this.pending.get(m.id)?.onStream?.(m.event);
        return;
      case 'reply': {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        this.refreshRef();
        if (m.error) p.reject(new ThreadReportedError(m.error));
        else p.resolve(m);
      }
    }
  }

  private die(reason: string): void {
    if (this.lost) return;
    this.lost = new ComputeThreadError(this.terminating ? 'the compute thread was stopped' : reason);
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(this.lost);
  }

  /** Ref'd while a request waits for its answer, so a process does not exit under it; unref'd when idle. */
  private refreshRef(): void {
    if (this.pending.size > 0) this.thread.ref();
    else this.thread.unref();
  }

  private request(message: Extract<ToThread, { id: number }>, onStream?: (event: StreamEvent) => void): Promise<Extract<FromThread, { type: 'reply' }>> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject, ...(onStream ? { onStream } : {}) });
      this.refreshRef();
      this.thread.postMessage(message);
    });
  }

  /** Builds the environment of a job in the thread (replacing the previous one). */
  async prepare(request: EnvironmentRequest): Promise<EnvironmentReady> {
    const reply = await this.request({ type: 'environment', id: this.nextId++, request });
    if (!reply.environment) throw new ComputeThreadError('the compute thread answered a job without its environment');
    return reply.environment;
  }

  /**
   * Computes a unit (or training units sharing a batch): one output per unit, in order. A train
   * request with `bucketBytes` on the fast path streams its units to `onStream` as they are
   * computed (their outputs then say `streamed`); everything else comes in the outputs.
   */
  async compute(request: ComputeRequest, onStream?: (event: StreamEvent) => void): Promise<ComputeDone> {
    const reply = await this.request({ type: 'compute', id: this.nextId++, request }, onStream);
    if (!reply.done) throw new ComputeThreadError('the compute thread answered a unit without its result');
    return reply.done;
  }

  /** What the current job's streamed datasets read (empty without any, or once the thread is gone). */
  async streamedStats(): Promise<StreamedDataStats[]> {
    if (this.lost) return [];
    const reply = await this.request({ type: 'stats', id: this.nextId++ });
    return reply.streamed ?? [];
  }

  /**
   * Hands the thread the next weights, still arriving or whole (streamed-weights.ts): compute
   * requests posted later start at once and wait inside the thread for the values they need;
   * those posted earlier do not see them. The session goes on filling `stream` and must abort it
   * if the transfer cannot complete.
   */
  streamWeights(stream: WeightsStream): void {
    if (this.lost) throw this.lost;
    this.thread.postMessage({ type: 'weights-stream', stream } satisfies ToThread);
  }

  /** A shared buffer of `size` floats for the next weights (streamWeights): one the thread handed back, or a new one. */
  weightsBuffer(size: number): Float32Array {
    for (;;) {
      const b = this.spare.pop();
      if (b === undefined) return sharedFloats(size);
      if (b.length === size) return b;
    }
  }

  /** Stops the thread (idempotent); pending requests fail with ComputeThreadError. */
  terminate(): Promise<void> {
    this.terminating ??= this.thread.terminate().then(
      () => this.exited,
      () => this.exited,
    );
    return this.terminating;
  }
}
