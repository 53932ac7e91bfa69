// A unit's result as the session sends it: its header, then its payload in chunks, then its
// ResultEnd, whether the compute thread returned the payload whole, in pieces, or streamed it
// bucket by bucket while it computed (ResultStream).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { ProtocolViolationError } from '../../common/errors.js';
import { decodeHalf } from '../../common/half-precision.js';
import type { UnitOutput } from '../../worker/compute-messages.js';
import { requestOf, resultMessages, ResultStream } from '../../worker/unit-messages.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';

const unit = (kind: Unit__Output["kind"]): Unit__Output =>
  ({ unitId: 'u1', kind, step: 4, task: 'left', shard: 1, shardCount: 2, weightsVersion: 9 });
const time = { computeMs: 5, busyMs: 10 };
const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 100);
const output = (pieces: UnitOutput['pieces']): UnitOutput => ({ sampleCount: 32, loss: 0.5, metrics: {}, payloadSize: values.length, pieces });

/** The payload bytes the chunks carry, checked to be in order and without gaps, and the ResultEnd after them. */
function payloadOf(messages: ReturnType<typeof resultMessages>): Buffer {
  let offset = 0;
  const parts: Buffer[] = [];
  assert.deepEqual(messages[messages.length - 1]!.resultEnd, { transferId: messages[0]!.unitResult!.transferId, ...time });
  for (const m of messages.slice(1, -1)) {
    assert.equal(m.chunk!.offset, offset);
    parts.push(Buffer.from(m.chunk!.data as Uint8Array));
    offset += (m.chunk!.data as Uint8Array).byteLength;
  }
  return Buffer.concat(parts);
}

void describe('unit result messages', () => {
  void it('sends a header echoing the unit, then the payload in chunks of at most the chunk size', () => {
    const messages = resultMessages(unit('UNIT_KIND_TRAIN'), output([{ offset: 0, data: values }]), time, { compression: 'none', maxChunkBytes: 1024, transferId: 7 });
    // The timings are known at the end only: they come in the ResultEnd.
    assert.deepEqual(messages[0]!.unitResult, { unitId: 'u1', kind: 'UNIT_KIND_TRAIN', step: 4, task: 'left', shard: 1, weightsVersion: 9, sampleCount: 32, loss: 0.5, metrics: {}, byteLength: 4000, transferId: 7, computeMs: 0, busyMs: 0 });
    assert.equal(messages.length, 1 + 4 + 1);
    assert.ok(messages.slice(1, -1).every((m) => m.chunk!.transferId === 7 && (m.chunk!.data as Uint8Array).byteLength <= 1024));
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

  void it('streams units one after the other: header at begin, chunks per bucket (last layers first), ResultEnd with the time at end', () => {
    const units = [unit('UNIT_KIND_TRAIN'), { ...unit('UNIT_KIND_TRAIN'), unitId: 'u2', task: 'right' }];
    for (const compression of ['none', 'fp16'] as const) {
      const sent: WorkerMessage[] = [];
      let tid = 10;
      const stream = new ResultStream(units, { compression, maxChunkBytes: 512 }, () => ++tid, (m) => sent.push(m));
      for (let k = 0; k < 2; k++) {
        stream.on({ kind: 'begin', unit: k, sampleCount: 32, loss: 0.25 + k, payloadSize: values.length });
        assert.equal(stream.unfinished, units[k]);
        // Buckets in descending offsets, as the backward makes them.
        stream.on({ kind: 'piece', unit: k, piece: { offset: 700, data: values.slice(700) } });
        stream.on({ kind: 'piece', unit: k, piece: { offset: 0, data: values.slice(0, 700) } });
        stream.on({ kind: 'end', unit: k, computeMs: 3 + k });
      }
      assert.equal(stream.unfinished, undefined);
      assert.deepEqual([...stream.ended], [0, 1]);
      const bpv = compression === 'none' ? 4 : 2;
      for (const [k, transferId] of [[0, 11], [1, 12]] as const) {
        const mine = sent.filter((m) => (m.unitResult?.unitId ?? '') === units[k]!.unitId || m.chunk?.transferId === transferId || m.resultEnd?.transferId === transferId);
        assert.deepEqual(mine[0]!.unitResult, { unitId: units[k]!.unitId, kind: 'UNIT_KIND_TRAIN', step: 4, task: units[k]!.task, shard: 1, weightsVersion: 9, sampleCount: 32, loss: 0.25 + k, metrics: {}, byteLength: values.length * bpv, transferId, computeMs: 0, busyMs: 0 });
        assert.deepEqual(mine[mine.length - 1]!.resultEnd, { transferId, computeMs: 3 + k, busyMs: 3 + k });
        const chunks = mine.slice(1, -1).map((m) => m.chunk!);
        assert.equal(chunks[0]!.offset, 700 * bpv, 'the last layers first');
        const whole = Buffer.alloc(values.length * bpv);
        for (const c of chunks) Buffer.from(c.data as Uint8Array).copy(whole, c.offset as number);
        const reference = resultMessages(units[k]!, output([{ offset: 0, data: values }]), time, { compression, maxChunkBytes: 512, transferId });
        assert.ok(whole.equals(Buffer.concat(reference.slice(1, -1).map((m) => Buffer.from(m.chunk!.data as Uint8Array)))), 'the same bytes as sent whole');
      }
      // A unit that began is ended before the next begins; an end short of the payload is refused.
      const bad = new ResultStream(units, { compression, maxChunkBytes: 512 }, () => 1, () => undefined);
      bad.on({ kind: 'begin', unit: 0, sampleCount: 32, loss: 0, payloadSize: values.length });
      assert.throws(() => bad.on({ kind: 'begin', unit: 1, sampleCount: 32, loss: 0, payloadSize: values.length }), /began while u1 is open/);
      assert.throws(() => bad.on({ kind: 'end', unit: 0, computeMs: 1 }), /streamed 0 of 1000/);
    }
  });

  void it('turns each unit kind into its compute request; a unit without a kind is a protocol violation', () => {
    assert.deepEqual(requestOf(unit('UNIT_KIND_TRAIN')), { kind: 'train', units: [{ task: 'left', step: 4, shard: 1 }] });
    assert.deepEqual(requestOf(unit('UNIT_KIND_TRAIN'), 4096), { kind: 'train', units: [{ task: 'left', step: 4, shard: 1 }], bucketBytes: 4096 });
    assert.deepEqual(requestOf(unit('UNIT_KIND_FISHER')), { kind: 'fisher', unit: { task: 'left', step: 4, shard: 1, shardCount: 2 } });
    assert.deepEqual(requestOf(unit('UNIT_KIND_EVAL')), { kind: 'eval', unit: { task: 'left', shard: 1, shardCount: 2 } });
    assert.throws(() => requestOf(unit('UNIT_KIND_UNSPECIFIED')), /unit u1 has no kind/);
  });
});
