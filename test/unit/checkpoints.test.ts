import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CorruptCheckpointError, decodeCheckpoint, encodeCheckpoint, FileCheckpointStore, jobHash, zeroCounters, type CheckpointData } from '../../coordinator/checkpoints.js';
import { tempDir } from '../helpers/temp-dirs.js';

function checkpoint(step: number): CheckpointData {
  return {
    runId: 'r-1',
    jobHash: 'abc',
    jobDir: '/jobs',
    step,
    version: step,
    params: Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i + step)),
    optimizer: { name: 'adam', t: step, slots: { m: Float32Array.from([1, 2, 3]), v: Float32Array.from([-0, 1e-30, 3e38]) } },
    aggregator: { logits: 'AAAA', history: [1, 2.5] },
    samples: 64 * step,
    trainMs: 12.5 * step,
    counters: { ...zeroCounters(), deaths: 2, backupUnits: 1 },
    createdAt: '2026-11-28T00:00:00.000Z',
  };
}

void describe('checkpoint files', () => {
  void it('round-trip bitwise (params, optimizer slots including -0 and extremes, JSON state, counters)', () => {
    const data = checkpoint(7);
    const back = decodeCheckpoint(encodeCheckpoint(data));
    assert.deepEqual(back, data);
    assert.ok(Object.is(back.optimizer.slots.v![0], -0));
  });

  void it('keep the worker count and the accumulated wall time; older checkpoints have neither', () => {
    const data = { ...checkpoint(4), minWorkers: 3, wallMs: 12_345.5 };
    const back = decodeCheckpoint(encodeCheckpoint(data));
    assert.equal(back.minWorkers, 3);
    assert.equal(back.wallMs, 12_345.5);
    const old = decodeCheckpoint(encodeCheckpoint(checkpoint(4)));
    assert.ok(!('minWorkers' in old) && !('wallMs' in old));
  });

  void it('detect truncation, flipped bits and foreign files', () => {
    const bytes = encodeCheckpoint(checkpoint(3));
    assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 10)), CorruptCheckpointError);
    const flipped = Buffer.from(bytes);
    flipped[200] = flipped[200]! ^ 1;
    assert.throws(() => decodeCheckpoint(flipped), /checksum mismatch/);
    assert.throws(() => decodeCheckpoint(Buffer.from('hello world, not a checkpoint at all......')), /not a checkpoint/);
  });
});

void describe('FileCheckpointStore', () => {
  void it('keeps the newest K and loads the newest', async () => {
    const dir = tempDir('mtl-ckpt-');
    const store = new FileCheckpointStore(dir, 2);
    for (const s of [5, 10, 15]) await store.save(checkpoint(s));
    assert.deepEqual(readdirSync(dir).sort(), ['ckpt-000000010.mtlckpt', 'ckpt-000000015.mtlckpt']);
    assert.equal((await store.loadLatest())?.step, 15);
  });

  void it('passes over a torn newest checkpoint to the previous one, reporting it', async () => {
    const dir = tempDir('mtl-ckpt-');
    const store = new FileCheckpointStore(dir, 3);
    await store.save(checkpoint(10));
    await store.save(checkpoint(20));
    const newest = path.join(dir, 'ckpt-000000020.mtlckpt');
    writeFileSync(newest, readFileSync(newest).subarray(0, 100)); // a write cut short
    const skipped: string[] = [];
    const loaded = await store.loadLatest((file, reason) => skipped.push(`${path.basename(file)}: ${reason}`));
    assert.equal(loaded?.step, 10);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0]!, /ckpt-000000020.mtlckpt: .*checksum mismatch/);
  });

  void it('finds nothing in an empty or missing directory', async () => {
    assert.equal(await new FileCheckpointStore(path.join(tempDir(), 'none')).loadLatest(), undefined);
  });
});

void it('jobHash ignores key order and undefined fields', () => {
  assert.equal(jobHash({ a: 1, b: { c: [1, 2], d: undefined } }), jobHash({ b: { c: [1, 2] }, a: 1 }));
  assert.notEqual(jobHash({ a: 1 }), jobHash({ a: 2 }));
});
