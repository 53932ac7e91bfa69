// How the session turns an assigned unit into a compute request, and a computed unit into the
// messages that carry its result: pure functions, no I/O.
import type { Unit__Output } from '../proto/generated/mtl/v1/Unit.js';
import type { WorkerMessage } from '../proto/generated/mtl/v1/WorkerMessage.js';
import { ProtocolViolationError } from '../common/errors.js';
import { chunkViews, float32Bytes } from '../common/protocol.js';
import { bytesPerValue, encodeHalf, uint16Bytes, type Compression } from '../common/half-precision.js';
import type { ComputeRequest, UnitOutput } from './compute-messages.js';

/** A result header echoes its unit, so the coordinator can check it against what it assigned. */
export function echoOf(unit: Unit__Output) {
  return { unitId: unit.unitId, kind: unit.kind, step: unit.step, task: unit.task, shard: unit.shard, weightsVersion: unit.weightsVersion };
}

/** What the compute thread is asked for a unit. */
export function requestOf(unit: Unit__Output): ComputeRequest {
  const train = { task: unit.task, step: unit.step, shard: unit.shard };
  switch (unit.kind) {
    case 'UNIT_KIND_TRAIN':
      return { kind: 'train', units: [train] };
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

/**
 * The messages of a unit's result: its header, then (for train and Fisher units) the payload
 * in chunks of at most `maxChunkBytes`, piece after piece in offset order. The pieces must
 * cover the payload exactly, without gaps.
 */
export function resultMessages(
  unit: Unit__Output,
  out: UnitOutput,
  time: ResultTiming,
  wire: { compression: Compression; maxChunkBytes: number; transferId: number },
): WorkerMessage[] {
  const echo = echoOf(unit);
  if (unit.kind !== 'UNIT_KIND_TRAIN' && unit.kind !== 'UNIT_KIND_FISHER') {
    const metrics = unit.kind === 'UNIT_KIND_EVAL' ? out.metrics : {};
    return [{ unitResult: { ...echo, sampleCount: out.sampleCount, loss: out.loss, metrics, byteLength: 0, transferId: 0, ...time } }];
  }
  const c = wire.compression;
  const perValue = bytesPerValue(c);
  const pieces = [...out.pieces].sort((a, b) => a.offset - b.offset);
  let covered = 0;
  for (const p of pieces) {
    if (p.offset !== covered) throw new ProtocolViolationError(`unit ${unit.unitId}: payload piece at ${p.offset}, expected ${covered}`);
    covered += p.data.length;
  }
  if (covered !== out.payloadSize) throw new ProtocolViolationError(`unit ${unit.unitId}: payload pieces hold ${covered} of ${out.payloadSize} values`);
  const { transferId } = wire;
  const messages: WorkerMessage[] = [{ unitResult: { ...echo, sampleCount: out.sampleCount, loss: out.loss, metrics: {}, byteLength: covered * perValue, transferId, ...time } }];
  for (const p of pieces) {
    const bytes = c === 'none' ? float32Bytes(p.data) : uint16Bytes(encodeHalf(p.data, c));
    let offset = p.offset * perValue;
    for (const data of chunkViews(bytes, wire.maxChunkBytes)) {
      messages.push({ chunk: { transferId, offset, data } });
      offset += data.byteLength;
    }
  }
  return messages;
}
