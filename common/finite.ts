// Finiteness of float32 payloads: every gradient, direction and decoded transfer is checked
// before it is used, so one scan per payload has to be cheap.

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // v - v is NaN exactly when v is NaN or infinite; cheaper than Number.isFinite per element.
    if (v - v !== 0) return i;
  }
  return -1;
}
