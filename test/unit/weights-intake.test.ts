// A worker's intake of a weights broadcast (worker/weights-intake.ts): after every chunk the
// values whole so far are published to the compute thread's stream, fp16 ones decoded as they
// come; a bad header or chunk is refused and publishes nothing; a cut-off transfer is aborted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteLengthError, ProtocolViolationError, WeightsIncompleteError } from '../../common/errors.js';
import { decodeHalf, encodeHalf, uint16Bytes, WIRE_ENCODING, type Compression } from '../../common/half-precision.js';
import { chunkViews, float32Bytes } from '../../common/protocol.js';
import { readyFloats, sharedFloats, waitForFloats, type WeightsStream } from '../../worker/streamed-weights.js';
import { WeightsIntake, type WeightsTarget } from '../../worker/weights-intake.js';
import type { WeightsHeader__Output } from '../../proto/generated/mtl/v1/WeightsHeader.js';

class Target implements WeightsTarget {
  readonly streams: WeightsStream[] = [];
  streamWeights(stream: WeightsStream): void {
    this.streams.push(stream);
  }
  weightsBuffer(size: number): Float32Array {
    return sharedFloats(size);
  }
}

const SIZE = 1000;
const values = Float32Array.from({ length: SIZE }, (_, i) => Math.sin(i) * 3);
const header = (c: Compression, over: Partial<WeightsHeader__Output> = {}): WeightsHeader__Output => ({
  version: 7,
  tensors: [0, 1, 2],
  byteLength: SIZE * (c === 'none' ? 4 : 2),
  transferId: 8,
  encoding: WIRE_ENCODING[c] as WeightsHeader__Output['encoding'],
  ...over,
});

function intake(c: Compression, target = new Target()): WeightsIntake {
  return new WeightsIntake(target, { totalSize: SIZE, tensors: 3, compression: c, maxChunkBytes: 1024 });
}

void describe('weights intake', () => {
  for (const c of ['none', 'fp16'] as const) {
    void it(`${c}: publishes the whole values after each chunk, and the values are the broadcast's`, () => {
      const target = new Target();
      const w = intake(c, target);
      w.begin(header(c));
      assert.equal(target.streams.length, 1, 'the stream goes to the thread with the header');
      const stream = target.streams[0]!;
      assert.equal(readyFloats(stream), 0);
      const bytes = c === 'none' ? float32Bytes(values) : uint16Bytes(encodeHalf(values, c));
      const expected = c === 'none' ? values : decodeHalf(encodeHalf(values, c), c);
      let offset = 0;
      // 300-byte chunks: fp16 chunks end on whole values, float32 ones sometimes mid-value.
      const chunks = chunkViews(bytes, 300);
      chunks.forEach((data, k) => {
        const done = w.chunk({ transferId: 8, offset, data });
        offset += data.byteLength;
        const whole = Math.floor(offset / (c === 'none' ? 4 : 2));
        assert.equal(readyFloats(stream), whole, `after chunk ${k}`);
        assert.deepEqual(stream.params.subarray(0, whole), expected.subarray(0, whole));
        assert.equal(done?.version, k === chunks.length - 1 ? 7 : undefined);
      });
      assert.equal(w.open, false);
      waitForFloats(stream, SIZE);
    });
  }

  void it('refuses a header that does not match the job, and a second one while a transfer is open', () => {
    const w = intake('none');
    assert.throws(() => w.begin(header('none', { byteLength: 12 })), ProtocolViolationError);
    assert.throws(() => w.begin(header('none', { encoding: WIRE_ENCODING.fp16 as WeightsHeader__Output['encoding'] })), /the job says transport.compression none/);
    w.begin(header('none'));
    assert.throws(() => w.begin(header('none')), /another weights transfer is open/);
  });

  void it('a bad chunk publishes nothing; an abort fails whoever waits for the rest', () => {
    const target = new Target();
    const w = intake('none', target);
    assert.throws(() => w.chunk({ transferId: 8, offset: 0, data: new Uint8Array(4) }), /without an open transfer/);
    w.begin(header('none'));
    const stream = target.streams[0]!;
    const bytes = float32Bytes(values);
    w.chunk({ transferId: 8, offset: 0, data: bytes.subarray(0, 400) });
    assert.throws(() => w.chunk({ transferId: 8, offset: 800, data: bytes.subarray(800, 1200) }), /out-of-order chunk/);
    const rest = new Uint8Array(bytes.byteLength);
    let at = 400;
    for (; at + 1000 <= bytes.byteLength - 400; at += 1000) w.chunk({ transferId: 8, offset: at, data: rest.subarray(0, 1000) });
    assert.throws(() => w.chunk({ transferId: 8, offset: at, data: rest.subarray(0, 1000) }), ByteLengthError);
    assert.equal(readyFloats(stream), at / 4, 'the refused chunks published nothing');
    w.abort();
    assert.equal(w.open, false);
    waitForFloats(stream, at / 4);
    assert.throws(() => waitForFloats(stream, at / 4 + 1), WeightsIncompleteError);
  });
});
