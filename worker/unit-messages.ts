// How the session turns an assigned unit into a compute request, and a computed unit into the
// messages that carry its result: pure functions, no I/O.
import type { Unit__Output } from '../proto/generated/mtl/v1/Unit.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { ProtocolViolationError } from '../common/errors.js';
import { chunkViews, float32Bytes } from '../common/protocol.js';
import { bytesPerValue, encodeHalf, uint16Bytes, type Compression } from '../common/half-precision.js';
import type { ComputeRequest, PayloadPiece, StreamEvent, UnitOutput } from './compute-messages.js';

/** A result header echoes its unit, so the coordinator can check it against what it assigned. */
export function echoOf(unit: Unit__Output) {
  return { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion };
}

/** What the compute thread is asked for a unit. */
export function requestOf(unit: Unit__Output, bucketBytes?: number): ComputeRequest {
  const train = { task: unit.task, step: unit.step, shard: unit.shard };
  switch (unit.kind) {
    case 'UNIT_KIND_TRAIN':
      return { kind: 'train', units: [train], ...(bucketBytes === undefined ? {} : { bucketBytes }) };
    case 'UNIT_KIND_FISHER':
      return { kind: 'fisher', unit: { ...train, shardCount: unit.shardCount } };
    case 'UNIT_KIND_LOOKAHEAD':
      return { kind: 'lookahead', unit: train };
    case 'UNIT_KIND_EVAL':
      return { kind: 'eval', unit: { task: unit.task, shard: unit.shard, shardCount: unit.shardCount } };
    default:
      throw new ProtocolViolationError(`unit ${unit.unitId} has no kind`);
  }
}

export interface ResultTiming {
  /** This unit's share of the computation. */
  computeMs: number;
  /** The whole computation it came out of (a shared-batch group as a whole). */
  busyMs: number;
}

export interface ResultWire {
  compression: Compression;
  maxChunkBytes: number;
}

/** The chunks of payload piece `piece` of transfer `transferId`, at its place in the payload. */
export function pieceChunks(piece: PayloadPiece, transferId: number, wire: ResultWire): WorkerMessage[] {
  const c = wire.compression;
  const bytes = c === 'none' ? float32Bytes(piece.data) : uint16Bytes(encodeHalf(piece.data, c));
  const messages: WorkerMessage[] = [];
  let offset = piece.offset * bytesPerValue(c);
  for (const data of chunkViews(bytes, wire.maxChunkBytes)) {
    messages.push({ chunk: { transferId, offset, data } });
    offset += data.byteLength;
  }
  return messages;
}

/** The header of a train or Fisher unit's result (its timings come in the ResultEnd). */
export function payloadHeader(unit: Unit__Output, sampleCount: number, loss: number, payloadSize: number, transferId: number, compression: Compression): WorkerMessage {
  return { unitResult: { ...echoOf(unit), sampleCount, loss, metrics: {}, byteLength: payloadSize * bytesPerValue(compression), transferId, computeMs: 0, busyMs: 0 } };
}

/**
 * The messages of a unit's result: for eval and lookahead units the header alone; for train and
 * Fisher units the header, the payload in chunks of at most `maxChunkBytes` (piece after piece
 * in offset order; the pieces must cover the payload exactly, without gaps), then the ResultEnd
 * with the timings.
 */
export function resultMessages(unit: Unit__Output, out: UnitOutput, time: ResultTiming, wire: ResultWire & { transferId: number }): WorkerMessage[] {
  const echo = echoOf(unit);
  if (unit.kind !== 'UNIT_KIND_TRAIN' && unit.kind !== 'UNIT_KIND_FISHER') {
    const metrics = unit.kind === 'UNIT_KIND_EVAL' ? out.metrics : {};
    return [{ unitResult: { ...echo, sampleCount: out.sampleCount, loss: out.loss, metrics, byteLength: 0, transferId: 0, ...time } }];
  }
  const pieces = [...out.pieces].sort((a, b) => a.offset - b.offset);
  let covered = 0;
  for (const p of pieces) {
    if (p.offset !== covered) throw new ProtocolViolationError(`unit ${unit.unitId}: payload piece at ${p.offset}, expected ${covered}`);
    covered += p.data.length;
  }
  if (covered !== out.payloadSize) throw new ProtocolViolationError(`unit ${unit.unitId}: payload pieces hold ${covered} of ${out.payloadSize} values`);
  const { transferId } = wire;
  return [
    payloadHeader(unit, out.sampleCount, out.loss, covered, transferId, wire.compression),
    ...pieces.flatMap((p) => pieceChunks(p, transferId, wire)),
    { resultEnd: { transferId, ...time } },
  ];
}

/**
 * The results of a streaming train request (units computed together, or one), message by
 * message as the compute thread's StreamEvents come: a unit's header at `begin`, its chunks at
 * each `piece`, its ResultEnd at `end`. Units one after the other: the coordinator has one
 * result transfer open per worker.
 */
export class ResultStream {
  private open: { unit: number; transferId: number; covered: number; size: number } | undefined;
  /** Units whose ResultEnd went out. */
  readonly ended = new Set<number>();

  constructor(
    private readonly units: readonly Unit__Output[],
    private readonly wire: ResultWire,
    private readonly nextTransferId: () => number,
    private readonly send: (message: WorkerMessage) => void,
  ) {}

  /** The unit whose result has begun and not ended, if any (a failure there leaves it open). */
  get unfinished(): Unit__Output | undefined {
    return this.open && this.units[this.open.unit];
  }

  on(event: StreamEvent): void {
    const unit = this.units[event.unit];
    if (!unit) throw new ProtocolViolationError(`the compute thread streamed unit ${event.unit} of ${this.units.length}`);
    if (event.kind === 'begin') {
      if (this.open) throw new ProtocolViolationError(`unit ${unit.unitId} began while ${this.units[this.open.unit]!.unitId} is open`);
      const transferId = this.nextTransferId();
      this.open = { unit: event.unit, transferId, covered: 0, size: event.payloadSize };
      this.send(payloadHeader(unit, event.sampleCount, event.loss, event.payloadSize, transferId, this.wire.compression));
      return;
    }
    const open = this.open;
    if (!open || open.unit !== event.unit) throw new ProtocolViolationError(`the compute thread streamed unit ${unit.unitId} before its start`);
    if (event.kind === 'piece') {
      open.covered += event.piece.data.length;
      for (const m of pieceChunks(event.piece, open.transferId, this.wire)) this.send(m);
      return;
    }
    if (open.covered !== open.size) throw new ProtocolViolationError(`unit ${unit.unitId}: streamed ${open.covered} of ${open.size} values`);
    this.open = undefined;
    this.ended.add(event.unit);
    // A unit's share of the computation is the time since the previous one ended: the units
    // after the first reuse its trunk forward pass, which that time includes.
    this.send({ resultEnd: { transferId: open.transferId, computeMs: event.computeMs, busyMs: event.computeMs } });
  }
}
