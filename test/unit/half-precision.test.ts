// The wire's 16-bit encodings: every fp16 / bf16 value round-trips exactly, and every float32
// is encoded as the nearest representable value (ties to even), checked against its neighbours.
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstNonFinite } from '../../common/finite.js';
import { bytesPerValue, decodeHalf, encodeHalf } from '../../common/half-precision.js';

const ALL = Uint16Array.from({ length: 0x10000 }, (_, i) => i);

function isNaNBits(h: number, c: 'fp16' | 'bf16'): boolean {
  return c === 'fp16' ? (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0 : (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;
}

void describe('half-precision codecs', () => {
  for (const c of ['fp16', 'bf16'] as const) {
    void it(`${c}: every value round-trips bit for bit (±∞ included; NaN stays NaN)`, () => {
      const values = decodeHalf(ALL, c);
      const again = encodeHalf(values, c);
      for (let h = 0; h < 0x10000; h++) {
        if (isNaNBits(h, c)) {
          assert.ok(Number.isNaN(values[h]!) && isNaNBits(again[h]!, c), `NaN ${h.toString(16)} stays NaN`);
        } else {
          assert.equal(again[h], h, `${c} ${h.toString(16)} (${values[h]})`);
        }
      }
    });

    void it(`${c}: rounds every float32 to the nearest value, ties to even`, () => {
      const decoded = decodeHalf(ALL, c);
      const max = c === 'fp16' ? 65504 : 3.3895313892515355e38;
      fc.assert(
        fc.property(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-max), max: Math.fround(max) }), (x) => {
          const h = encodeHalf(Float32Array.of(x), c)[0]!;
          const v = decoded[h]!;
          const err = Math.abs(v - x);
          for (const n of [h - 1, h + 1]) {
            if (n < 0 || n > 0xffff || (n & 0x7fff) === 0 || !Number.isFinite(decoded[n]!) || Math.sign(decoded[n]!) !== Math.sign(v) && v !== 0) continue;
            const other = Math.abs(decoded[n]! - x);
            assert.ok(err < other || (err === other && (h & 1) === 0), `${x} → ${v} (0x${h.toString(16)}), but ${decoded[n]} is closer`);
          }
        }),
        { numRuns: 20000 },
      );
    });
  }

  void it('fp16 saturates finite values at ±65504 instead of overflowing; bf16 keeps large values finite', () => {
    const big = Float32Array.of(1e6, -1e6, 65520, 3.4e38);
    assert.deepEqual([...decodeHalf(encodeHalf(big, 'fp16'), 'fp16')], [65504, -65504, 65504, 65504]);
    assert.ok(Math.abs(decodeHalf(encodeHalf(Float32Array.of(1e30), 'bf16'), 'bf16')[0]! / 1e30 - 1) < 0.004);
    assert.deepEqual([bytesPerValue('none'), bytesPerValue('fp16'), bytesPerValue('bf16')], [4, 2, 2]);
  });

  for (const c of ['fp16', 'bf16'] as const) {
    void it(`${c}: ±∞ and NaN stay non-finite, so the receiver's finiteness check sees them`, () => {
      const decoded = decodeHalf(encodeHalf(Float32Array.of(Infinity, -Infinity, NaN, 1), c), c);
      assert.deepEqual([...decoded.subarray(0, 2)], [Infinity, -Infinity]);
      assert.ok(Number.isNaN(decoded[2]));
      assert.equal(firstNonFinite(decoded), 0);
      assert.equal(firstNonFinite(decoded.subarray(3)), -1);
    });
  }
});
