// Finiteness of float32 payloads: every gradient, direction and decoded transfer is checked
// before it is used, so one scan per payload has to be cheap.

/** Exponent bits of a float32: all ones exactly for NaN and ±Infinity. */
const EXPONENT = 0x7f800000;

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: Float32Array): number {
  // The bits, not the values: an int32 AND per element instead of a float load and subtract.
  // Eight at a time, with one compare of their largest exponent (none exceeds EXPONENT), the
  // loop runs about three times as fast as one compare per element (coordinator profile,
  // issue 18); the group holding a non-finite value is then scanned element by element for the
  // first one. A Float32Array's byteOffset is always a multiple of 4, so the view is valid.
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  const n = bits.length;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const top = Math.max(
      bits[i]! & EXPONENT,
      bits[i + 1]! & EXPONENT,
      bits[i + 2]! & EXPONENT,
      bits[i + 3]! & EXPONENT,
      bits[i + 4]! & EXPONENT,
      bits[i + 5]! & EXPONENT,
      bits[i + 6]! & EXPONENT,
      bits[i + 7]! & EXPONENT,
    );
    if (top === EXPONENT) break;
  }
  for (; i < n; i++) if ((bits[i]! & EXPONENT) === EXPONENT) return i;
  return -1;
}
