// A unit's result as the session sends it: its header, then its payload in chunks, whether the
// compute thread returned the payload whole or in pieces (as bucketed gradients would).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { ProtocolViolationError } from '../../common/errors.js';
import { decodeHalf } from '../../common/half-precision.js';
import type { UnitOutput } from '../../worker/compute-messages.js';
import { requestOf, resultMessages } from '../../worker/unit-messages.js';

const unit = (kind: Unit__Output["kind"]): Unit__Output =>
  ({ unitId: 'u1', kind, step: 4, task: 'left', shard: 1, shardCount: 2, weightsVersion: 9 });
const time = { computeMs: 5, busyMs: 10 };
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 100);
const output = (pieces: UnitOutput['pieces']): UnitOutput => ({ sampleCount: 32, loss: 0.5, metrics: {}, payloadSize: values.length, pieces });

/** The payload bytes the chunks carry, checked to be in order and without gaps. */
function payloadOf(messages: ReturnType<typeof resultMessages>): Buffer {
  let offset = 0;
  const parts: Buffer[] = [];
  for (const m of messages.slice(1)) {
    assert.equal(m.chunk!.offset, offset);
    parts.push(Buffer.from(m.chunk!.data as Uint8Array));
    offset += (m.chunk!.data as Uint8Array).byteLength;
  }
  return Buffer.concat(parts);
}

void describe('unit result messages', () => {
  void it('sends a header echoing the unit, then the payload in chunks of at most the chunk size', () => {
    const messages = resultMessages(unit('UNIT_KIND_TRAIN'), output([{ offset: 0, data: values }]), time, { compression: 'none', maxChunkBytes: 1024, transferId: 7 });
    assert.deepEqual(messages[0]!.unitResult, { unitId: 'u1', kind: 'UNIT_KIND_TRAIN', step: 4, task: 'left', shard: 1, weightsVersion: 9, sampleCount: 32, loss: 0.5, metrics: {}, byteLength: 4000, transferId: 7, ...time });
    assert.equal(messages.length, 1 + 4);
    assert.ok(messages.slice(1).every((m) => m.chunk!.transferId === 7 && (m.chunk!.data as Uint8Array).byteLength <= 1024));
    assert.ok(payloadOf(messages).equals(Buffer.from(values.buffer)));
  });

  void it('sends a payload in pieces (any order) as the same bytes as whole, compressed or not', () => {
    const pieces = [
      { offset: 700, data: values.slice(700) },
      { offset: 0, data: values.slice(0, 300) },
      { offset: 300, data: values.slice(300, 700) },
    ];
    for (const compression of ['none', 'fp16', 'bf16'] as const) {
      const wire = { compression, maxChunkBytes: 512, transferId: 1 };
      const whole = payloadOf(resultMessages(unit('UNIT_KIND_FISHER'), output([{ offset: 0, data: values }]), time, wire));
      const split = payloadOf(resultMessages(unit('UNIT_KIND_FISHER'), output(pieces), time, wire));
      assert.ok(split.equals(whole), compression);
      if (compression !== 'none') {
        const decoded = new Float32Array(values.length);
        decodeHalf(new Uint16Array(split.buffer, split.byteOffset, values.length), compression, decoded);
        assert.ok(decoded.every((v, i) => Math.abs(v - values[i]!) <= Math.abs(values[i]!) * 0.01 + 1e-3), `${compression} decodes back`);
      }
    }
  });

  void it('refuses pieces that leave a gap or do not cover the payload', () => {
    const wire = { compression: 'none' as const, maxChunkBytes: 512, transferId: 1 };
    assert.throws(() => resultMessages(unit('UNIT_KIND_TRAIN'), output([{ offset: 1, data: values }]), time, wire), ProtocolViolationError);
    assert.throws(() => resultMessages(unit('UNIT_KIND_TRAIN'), output([{ offset: 0, data: values.slice(1) }]), time, wire), /999 of 1000/);
  });

  void it('sends eval and lookahead results as a header alone (eval with its metrics)', () => {
    const out = { ...output([]), payloadSize: 0, metrics: { accuracy: 0.75 } };
    const [evalHeader, ...rest] = resultMessages(unit('UNIT_KIND_EVAL'), out, time, { compression: 'none', maxChunkBytes: 512, transferId: 0 });
    assert.deepEqual(rest, []);
    assert.deepEqual(evalHeader!.unitResult!.metrics, { accuracy: 0.75 });
    assert.equal(evalHeader!.unitResult!.byteLength, 0);
    const [lookahead] = resultMessages(unit('UNIT_KIND_LOOKAHEAD'), out, time, { compression: 'none', maxChunkBytes: 512, transferId: 0 });
    assert.deepEqual(lookahead!.unitResult!.metrics, {});
  });

  void it('turns each unit kind into its compute request; a unit without a kind is a protocol violation', () => {
    assert.deepEqual(requestOf(unit('UNIT_KIND_TRAIN')), { kind: 'train', units: [{ task: 'left', step: 4, shard: 1 }] });
    assert.deepEqual(requestOf(unit('UNIT_KIND_FISHER')), { kind: 'fisher', unit: { task: 'left', step: 4, shard: 1, shardCount: 2 } });
    assert.deepEqual(requestOf(unit('UNIT_KIND_EVAL')), { kind: 'eval', unit: { task: 'left', shard: 1, shardCount: 2 } });
    assert.throws(() => requestOf(unit('UNIT_KIND_UNSPECIFIED')), /unit u1 has no kind/);
  });
});
