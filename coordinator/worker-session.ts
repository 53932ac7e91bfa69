// One worker's Connect stream, seen from the coordinator: message framing and validation of
// the stream itself (order, transfers, sizes). What the messages mean for the run is the
// handler's business (training-run.ts). A rejected message is counted and dropped; it never
// reaches the run's state.
import type * as grpc from '@grpc/grpc-js';
import type { Goodbye__Output } from '../proto/generated/mtl/v1/Goodbye.js';
import type { Hello__Output } from '../proto/generated/mtl/v1/Hello.js';
import type { ResultEnd__Output } from '../proto/generated/mtl/v1/ResultEnd.js';
import type { TensorChunk__Output } from '../proto/generated/mtl/v1/TensorChunk.js';
import type { UnitFailed__Output } from '../proto/generated/mtl/v1/UnitFailed.js';
import type { UnitResult__Output } from '../proto/generated/mtl/v1/UnitResult.js';
import type { WorkerMessage__Output } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { ByteLengthError, errorMessage, isRejectedMessage, ProtocolViolationError } from '../common/errors.js';
import { toGrpcStatus } from '../common/grpc-status.js';
import type { Logger } from '../common/logging.js';
import { OrderedWriter } from '../common/ordered-writer.js';
import type { OutgoingCoordinatorMessage } from '../common/protocol.js';
import { float32Bytes, MAX_CHUNK_BYTES } from '../common/protocol.js';
import { ResultAssembler } from '../common/result-assembler.js';
import { uint16Bytes } from '../common/half-precision.js';

export type SessionState = 'awaiting-hello' | 'ready' | 'closed';

/** Where a result's payload goes: a buffer, or nothing (eval units); `discard` drops it once read. */
export interface ResultSink {
  payload: Float32Array | null;
  /** Compressed transfers: the wire values (16 bits each), decoded into `payload` by the handler. */
  wire?: Uint16Array;
  discard: boolean;
}

export interface SessionHandler {
  /** Validates Hello; returns nothing or throws (the session is then closed with that error). */
  onHello(session: WorkerSession, hello: Hello__Output): void;
  /**
   * Validates a result header and says where its payload goes (or that it is read and
   * dropped: a late copy). Throws a rejection error otherwise.
   */
  beginResult(session: WorkerSession, header: UnitResult__Output): ResultSink;
  /**
   * Values [from, to) of the payload have arrived (in the sink's buffer; chunks come in any
   * order). Throws a rejection error to reject the chunk (a non-finite value, say): the rest of
   * the transfer is then dropped.
   */
  resultChunk?(session: WorkerSession, header: UnitResult__Output, sink: ResultSink, from: number, to: number): void;
  /** The result is whole: every byte, then (with a payload) its ResultEnd, whose timings `header` carries. */
  completeResult(session: WorkerSession, header: UnitResult__Output, sink: ResultSink): void;
  onUnitFailed(session: WorkerSession, failure: UnitFailed__Output): void;
  /** The worker leaves on purpose. */
  onGoodbye(session: WorkerSession, goodbye: Goodbye__Output): void;
  /** A message was rejected; `unitId` is set when it concerned a known unit. */
  onRejected(session: WorkerSession, error: Error, unitId: string | undefined): void;
  onClosed(session: WorkerSession, reason: string): void;
}

/**
 * Checks a Hello before the run sees it (authentication, is the coordinator still serving);
 * throws to refuse the worker. The session is then closed with that error's status, silently:
 * the admission check logs and counts its own refusals.
 */
export type Admission = (session: WorkerSession, hello: Hello__Output) => void;

export type ConnectCall = grpc.ServerDuplexStream<WorkerMessage__Output, OutgoingCoordinatorMessage>;

/** Limits on one session; every message beyond them is rejected, or the session closed. */
export interface SessionLimits {
  /** Largest TensorChunk payload accepted. */
  maxChunkBytes: number;
  /** More than this many rejected messages within `rejectionWindowMs` close the session: the peer is broken or hostile. */
  maxRejections: number;
  rejectionWindowMs: number;
  /** A connection that has not said Hello after this long is closed (it holds a session slot). */
  helloTimeoutMs: number;
}

export const DEFAULT_SESSION_LIMITS: Readonly<SessionLimits> = {
  maxChunkBytes: MAX_CHUNK_BYTES,
  maxRejections: 50,
  rejectionWindowMs: 10_000,
  helloTimeoutMs: 10_000,
};

/** Longest identifier (worker name, backend, unit id, task, metric name) a message may carry. */
export const MAX_NAME_CHARS = 256;
/** Longest free text (a failure message, a goodbye reason). */
export const MAX_TEXT_CHARS = 65_536;
/** Most metrics one result may carry. */
export const MAX_METRICS = 64;

function checkText(what: string, value: string, max: number): void {
  if (value.length > max) throw new ProtocolViolationError(`${what} of ${value.length} characters (limit ${max})`);
}

function checkResultShape(r: UnitResult__Output): void {
  checkText('unit id', r.unitId, MAX_NAME_CHARS);
  checkText('task', r.task, MAX_NAME_CHARS);
  const names = Object.keys(r.metrics);
  if (names.length > MAX_METRICS) throw new ProtocolViolationError(`result with ${names.length} metrics (limit ${MAX_METRICS})`);
  for (const name of names) checkText('metric name', name, MAX_NAME_CHARS);
}

/** Shapes no honest peer sends, whatever the run: checked before the handler sees the message. */
function checkMessageShape(msg: WorkerMessage__Output): void {
  switch (msg.kind) {
    case 'hello':
      checkText('worker name', msg.hello!.name, MAX_NAME_CHARS);
      checkText('backend', msg.hello!.backend, MAX_NAME_CHARS);
      checkText('device', msg.hello!.device, MAX_NAME_CHARS);
      checkText('token', msg.hello!.token, MAX_TEXT_CHARS);
      return;
    case 'unitFailed':
      checkText('unit id', msg.unitFailed!.unitId, MAX_NAME_CHARS);
      checkText('failure code', msg.unitFailed!.code, MAX_NAME_CHARS);
      checkText('failure message', msg.unitFailed!.message, MAX_TEXT_CHARS);
      return;
    case 'goodbye':
      checkText('goodbye reason', msg.goodbye!.reason, MAX_TEXT_CHARS);
      return;
    default:
      return;
  }
}

export class WorkerSession {
  state: SessionState = 'awaiting-hello';
  name = '';
  backend = '';
  device = '';
  rejected = 0;
  unitsDone = 0;
  /** Wall clock (ms) of the last message of any kind; the failure detector reads it. */
  lastSeenMs = Date.now();
  /** Wall clock (ms) of the last finished unit, or of being given work while idle. */
  lastProgressMs = Date.now();
  /** Said Goodbye: its departure is not a failure. */
  leaving = false;
  /** Mean of this worker's unit compute times (ms; a shared-batch group's units each count their share), for the scheduler. */
  meanUnitMs: number | undefined;
  /**
   * Mean wall time (ms) of this worker's computations, a shared-batch group counting whole: how
   * long it is silent while it computes. The failure detector judges its silence by this.
   */
  meanBusyMs: number | undefined;
  /** Why the worker said it is leaving (UnitFailed without a unit), if it did. */
  leavingReason: string | undefined;
  private readonly writer: OrderedWriter<OutgoingCoordinatorMessage>;
  /** Closed by the coordinator for too many rejected messages. */
  closedForErrors = false;
  /** Resolves with the reason once the session is closed, whoever closed it. */
  readonly done: Promise<string>;
  private resolveDone!: (reason: string) => void;
  private inbound: { header: UnitResult__Output; sink: ResultSink; assembler: ResultAssembler } | undefined;
  /**
   * The transfer whose header or a chunk was rejected: its remaining chunks (any order, within
   * its announced length, at most that many bytes in all) and its ResultEnd are dropped quietly
   * (never applied), so that one bad result counts as one rejection, not one per chunk.
   * Heartbeats do not end it; any other message does.
   */
  private dropping: { transferId: number; bytes: number; received: number } | undefined;
  private readonly rejectionTimes: number[] = [];
  private readonly limits: SessionLimits;
  private helloTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly peer: string,
    private readonly call: ConnectCall,
    private readonly handler: SessionHandler,
    private readonly log: Logger,
    limits: Partial<SessionLimits> = {},
    private readonly admit?: Admission,
  ) {
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.writer = new OrderedWriter(call);
    this.helloTimer = setTimeout(() => {
      this.log.warn('closing a connection that did not say Hello', { peer: this.peer, ms: this.limits.helloTimeoutMs });
      this.close(new ProtocolViolationError(`no Hello within ${this.limits.helloTimeoutMs} ms`));
    }, this.limits.helloTimeoutMs);
    this.helloTimer.unref();
    call.on('data', (msg: WorkerMessage__Output) => this.onMessage(msg));
    call.on('end', () => {
      this.closed(this.leavingReason ?? 'worker closed the stream');
      // The worker closed its side (after a Goodbye, say): close ours, so it sees a clean end.
      try {
        call.end();
      } catch {
        // Already gone.
      }
    });
    call.on('error', (err: Error) => this.closed(`stream error: ${err.message}`));
    call.on('close', () => this.closed(this.leavingReason ?? 'connection closed'));
    call.on('cancelled', () => this.closed(this.leavingReason ?? 'connection cancelled'));
  }

  get label(): string {
    return this.name ? `${this.id} (${this.name})` : this.id;
  }

  /** Queues a message; rejects if the stream is gone. */
  send(message: OutgoingCoordinatorMessage): Promise<void> {
    return this.writer.write(message);
  }

  private onMessage(msg: WorkerMessage__Output): void {
    if (this.state === 'closed') return;
    this.lastSeenMs = Date.now();
    let unitId: string | undefined;
    if (msg.kind === 'chunk' && this.dropChunk(msg.chunk!)) return;
    if (msg.kind === 'resultEnd' && this.dropping !== undefined && msg.resultEnd!.transferId === this.dropping.transferId) {
      this.dropping = undefined;
      return;
    }
    if (msg.kind !== 'heartbeat') this.dropping = undefined;
    try {
      checkMessageShape(msg);
      switch (msg.kind) {
        case 'hello':
          if (this.state !== 'awaiting-hello') throw new ProtocolViolationError('second Hello on one session');
          try {
            this.admit?.(this, msg.hello!);
          } catch (err) {
            this.close(err instanceof Error ? err : new Error(String(err)));
            return;
          }
          this.name = msg.hello!.name;
          this.backend = msg.hello!.backend;
          this.device = msg.hello!.device;
          // Ready before the handler sees it: the handler may give it work at once (the units a
          // worker that died left behind), and work only goes to ready sessions. A Hello the
          // handler refuses ends the session below.
          this.state = 'ready';
          clearTimeout(this.helloTimer);
          this.handler.onHello(this, msg.hello!);
          return;
        case 'heartbeat':
          return;
        default:
          break;
      }
      if (this.state !== 'ready') throw new ProtocolViolationError(`${msg.kind ?? 'empty message'} before Hello`);
      switch (msg.kind) {
        case 'unitResult':
          this.onResultHeader(msg.unitResult!, (id) => (unitId = id));
          return;
        case 'chunk':
          unitId = this.inbound?.header.unitId;
          this.onChunk(msg.chunk!);
          return;
        case 'resultEnd':
          unitId = this.inbound?.header.unitId;
          this.onResultEnd(msg.resultEnd!);
          return;
        case 'unitFailed':
          // A unit that fails while its result streams: its transfer ends with it.
          if (this.inbound?.header.unitId === msg.unitFailed!.unitId) this.inbound = undefined;
          this.handler.onUnitFailed(this, msg.unitFailed!);
          return;
        case 'goodbye':
          if (this.inbound) throw new ProtocolViolationError('goodbye inside a transfer');
          this.leaving = true;
          this.handler.onGoodbye(this, msg.goodbye!);
          return;
        default:
          throw new ProtocolViolationError('message without a kind');
      }
    } catch (err) {
      this.reject(err, unitId);
    }
  }

  /** `named` learns the unit id once the header's shape is known to be sane (it goes into logs). */
  private onResultHeader(header: UnitResult__Output, named: (unitId: string) => void): void {
    let sink: ResultSink;
    try {
      checkResultShape(header);
      named(header.unitId);
      if (this.inbound) {
        const open = this.inbound.header.unitId;
        this.inbound = undefined;
        throw new ProtocolViolationError(`result for ${header.unitId} while the transfer of ${open} is incomplete`);
      }
      sink = this.handler.beginResult(this, header);
    } catch (err) {
      // The payload that follows a rejected header is dropped as it comes.
      this.startDropping(header.transferId, header.byteLength, 0);
      throw err;
    }
    if (sink.payload === null) {
      this.handler.completeResult(this, header, sink);
      return;
    }
    const dest = sink.wire ? uint16Bytes(sink.wire) : float32Bytes(sink.payload);
    this.inbound = { header, sink, assembler: new ResultAssembler(header.transferId, dest, sink.wire ? 2 : 4, this.limits.maxChunkBytes) };
  }

  private onChunk(chunk: TensorChunk__Output): void {
    const inbound = this.inbound;
    if (!inbound) throw new ProtocolViolationError('chunk without an open transfer');
    const { assembler } = inbound;
    let taken = false;
    try {
      const { from, to } = assembler.accept(chunk);
      taken = true;
      // Decoded and checked as it comes (the handler): the last chunk leaves little to do.
      this.handler.resultChunk?.(this, inbound.header, inbound.sink, from / assembler.valueBytes, to / assembler.valueBytes);
    } catch (err) {
      this.inbound = undefined; // the partial payload is dropped, never applied
      // The sender goes on with the rest of its transfer: drop it as it comes.
      const tid = assembler.transferId;
      const bad = chunk.transferId === tid && !taken ? chunk.data.byteLength : 0;
      this.startDropping(tid, inbound.header.byteLength, Math.min(inbound.header.byteLength, assembler.receivedBytes + bad));
      throw err;
    }
  }

  private onResultEnd(end: ResultEnd__Output): void {
    const inbound = this.inbound;
    if (!inbound) throw new ProtocolViolationError(`result end of transfer ${end.transferId} without an open transfer`);
    this.inbound = undefined; // complete or not, the transfer ends here
    const { assembler } = inbound;
    const bad =
      end.transferId !== assembler.transferId
        ? new ProtocolViolationError(`result end of transfer ${end.transferId} while transfer ${assembler.transferId} is open`)
        : !assembler.complete
          ? new ByteLengthError(`result end after ${assembler.receivedBytes} of the announced ${assembler.byteLength} bytes`)
          : undefined;
    if (bad) {
      // Whatever else the sender has of this transfer is dropped as it comes.
      this.startDropping(assembler.transferId, assembler.byteLength, assembler.receivedBytes);
      throw bad;
    }
    this.handler.completeResult(this, { ...inbound.header, computeMs: end.computeMs, busyMs: end.busyMs }, inbound.sink);
  }

  private startDropping(transferId: number, bytes: number, received: number): void {
    this.dropping = { transferId, bytes, received };
  }

  /** True if `chunk` belongs to a transfer that was rejected: of its id, sane, within its announced length and byte count. */
  private dropChunk(chunk: TensorChunk__Output): boolean {
    const d = this.dropping;
    if (!d || chunk.transferId !== d.transferId) return false;
    const n = chunk.data.byteLength;
    if (n === 0 || n > this.limits.maxChunkBytes || chunk.offset + n > d.bytes || d.received + n > d.bytes) return false;
    d.received += n;
    return true;
  }

  private reject(err: unknown, unitId: string | undefined): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (!isRejectedMessage(error)) {
      // Not a message problem but a failure of ours or of the handshake: end the session.
      this.log.error('closing session', { worker: this.label, peer: this.peer, error: errorMessage(error) });
      this.close(error);
      return;
    }
    this.rejected++;
    this.log.warn('rejected message', { worker: this.label, peer: this.peer, unit: unitId, code: (error as { code?: string }).code, error: error.message });
    this.handler.onRejected(this, error, unitId);
    const now = Date.now();
    this.rejectionTimes.push(now);
    while (this.rejectionTimes[0]! <= now - this.limits.rejectionWindowMs) this.rejectionTimes.shift();
    if (this.rejectionTimes.length > this.limits.maxRejections && this.state !== 'closed') {
      this.closedForErrors = true;
      this.log.warn('closing session: too many rejected messages', { worker: this.label, peer: this.peer, rejected: this.rejectionTimes.length, windowMs: this.limits.rejectionWindowMs });
      this.close(new ProtocolViolationError(`${this.rejectionTimes.length} rejected messages within ${this.limits.rejectionWindowMs} ms`));
    }
  }

  /** Ends the session with an error status (the worker sees it as the call's error). */
  close(error: Error): void {
    if (this.state === 'closed') return;
    const status = toGrpcStatus(error);
    this.closed(`closed by coordinator: ${error.message}`);
    try {
      this.call.emit('error', { code: status.code, details: status.details });
    } catch {
      // The stream may already be gone.
    }
  }

  /** Ends the session normally after everything queued has been sent. */
  async end(): Promise<void> {
    try {
      await this.writer.flush();
    } finally {
      if (this.state !== 'closed') this.call.end();
    }
  }

  private closed(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    this.inbound = undefined;
    this.dropping = undefined;
    this.writer.markClosed(reason);
    this.handler.onClosed(this, reason);
    this.resolveDone(reason);
  }
}
