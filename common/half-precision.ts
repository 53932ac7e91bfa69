// 16-bit encodings of float32 tensors for the wire (`transport.compression`): IEEE fp16 and
// bfloat16, both rounded to nearest, ties to even, so the same input always gives the same
// bits (docs/design.md, determinism rule). fp16 saturates at ±65504 instead of overflowing to ±∞:
// a large but finite gradient stays finite (and is then checked like any other); NaN stays NaN.
// bf16 keeps float32's exponent range and needs no saturation.

import type { Encoding } from '../proto/generated/mtl/v1/Encoding.js';

export type Compression = 'none' | 'fp16' | 'bf16';

/** The weights header's `encoding` for each setting. */
export const WIRE_ENCODING: Record<Compression, Encoding> = { none: 'ENCODING_F32', fp16: 'ENCODING_F16', bf16: 'ENCODING_BF16' };

/** Bytes per value on the wire. */
export function bytesPerValue(c: Compression): number {
  return c === 'none' ? 4 : 2;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function toBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return (bits >>> 16) | 0x0040; // NaN stays a (quiet) NaN
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

function toFp16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x007fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 : sign | 0x7bff; // NaN; ±∞ saturates like any overflow
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7bff; // saturate at ±65504
  if (e <= 0) {
    // Subnormal or zero in fp16.
    if (e < -10) return sign;
    mant |= 0x00800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  if ((h & 0x7c00) === 0x7c00) return sign | 0x7bff; // rounding carried into the infinity exponent: saturate
  return sign | h;
}

let fp16Table: Float32Array | undefined;

/** All 65 536 fp16 values, decoded once: decoding is then one lookup per value. */
function fp16Values(): Float32Array {
  fp16Table ??= Float32Array.from({ length: 0x10000 }, (_, h) => fromFp16(h));
  return fp16Table;
}

function fromFp16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encodes `values` into `out` (same length). */
export function encodeHalf(values: Float32Array, c: Exclude<Compression, 'none'>, out: Uint16Array = new Uint16Array(values.length)): Uint16Array {
  if (out.length !== values.length) throw new RangeError(`expected ${values.length} values, got room for ${out.length}`);
  const convert = c === 'bf16' ? toBf16 : toFp16;
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i]!;
    out[i] = convert(u32[0]!);
  }
  return out;
}

/** Decodes `half` into `out` (same length). */
export function decodeHalf(half: Uint16Array, c: Exclude<Compression, 'none'>, out: Float32Array = new Float32Array(half.length)): Float32Array {
  if (out.length !== half.length) throw new RangeError(`expected ${half.length} values, got room for ${out.length}`);
  if (c === 'bf16') {
    for (let i = 0; i < half.length; i++) {
      u32[0] = half[i]! << 16;
      out[i] = f32[0]!;
    }
  } else {
    const table = fp16Values();
    for (let i = 0; i < half.length; i++) out[i] = table[half[i]!]!;
  }
  return out;
}

/** The bytes of a Uint16Array, as they go on the wire (little-endian on every platform Node runs on). */
export function uint16Bytes(values: Uint16Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
