// The weights broadcast streamed bucket by bucket: the same messages, byte for byte, as the
// whole-version encoding, produced in parameter order, and a worker that joins mid-stream
// still gets the whole version.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ParameterLayout } from '../../common/parameter-layout.js';
import type { PreEncodedMessage } from '../../common/protocol.js';
import { WeightsBroadcast } from '../../coordinator/weights-broadcast.js';

const LAYOUT = { tensors: [{}, {}] } as unknown as ParameterLayout;
const CHUNK = 64; // 16 floats per chunk

function recorder(): { messages: PreEncodedMessage[]; send(m: PreEncodedMessage): Promise<void> } {
  const messages: PreEncodedMessage[] = [];
  return { messages, send: (m) => (messages.push(m), Promise.resolve()) };
}

const bytesOf = (ms: readonly PreEncodedMessage[]) => ms.map((m) => Buffer.from(m.bytes).toString('hex'));

void describe('weights broadcast streaming', () => {
  void it('sends what update sends, producing buckets in order before encoding them', async () => {
    const n = 16 * 7 + 5; // seven full chunks and a short one
    const target = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
    const whole = new WeightsBroadcast(LAYOUT, CHUNK);
    whole.update(target, 4);
    const expected = recorder();
    whole.sendTo(expected);

    const params = new Float32Array(n);
    const streamed = new WeightsBroadcast(LAYOUT, CHUNK);
    const early = recorder();
    const late = recorder();
    const ranges: Array<[number, number]> = [];
    await streamed.stream(params, 4, 3 * CHUNK, (from, to) => {
      ranges.push([from, to]);
      params.set(target.subarray(from, to), from);
      // A worker joining after the second bucket: it gets what was sent, then the rest.
      if (ranges.length === 2) streamed.sendTo(late);
    }, [early]);
    assert.deepEqual(ranges, [[0, 48], [48, 96], [96, n]]);
    assert.deepEqual(bytesOf(early.messages), bytesOf(expected.messages));
    assert.deepEqual(bytesOf(late.messages), bytesOf(expected.messages));
    // After the stream, a newcomer gets the whole version at once.
    const after = recorder();
    streamed.sendTo(after);
    assert.deepEqual(bytesOf(after.messages), bytesOf(expected.messages));
  });

  void it('refuses to stream compressed weights', async () => {
    const b = new WeightsBroadcast(LAYOUT, CHUNK, 'fp16');
    assert.equal(b.streams, false);
    await assert.rejects(b.stream(new Float32Array(4), 1, CHUNK, () => undefined, []), RangeError);
  });
});
