// Aggregator state must be JSON (checkpoints); float arrays travel as base64 of their bytes,
// which round-trips bitwise (a JSON number array would too, but at ~3× the size).
import { AggregationInputError } from '../../common/errors.js';

export function encodeFloat32(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

export function decodeFloat32(text: unknown): Float32Array {
  if (typeof text !== 'string') throw new AggregationInputError('aggregator state: expected a base64 string');
  const bytes = Buffer.from(text, 'base64');
  if (bytes.byteLength % 4 !== 0) throw new AggregationInputError('aggregator state: float array has a partial value');
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Reads a record field of a restored state, failing with a typed error when the shape is wrong. */
export function stateRecord(state: unknown, method: string): Record<string, unknown> {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) {
    throw new AggregationInputError(`${method}: state must be an object, got ${state === null ? 'null' : typeof state}`);
  }
  return state as Record<string, unknown>;
}
