// The NATS control plane pieces against a real nats-server (own port, JetStream in a temp dir):
// registry compare-and-set and leases, the object-store checkpoint store, and the bounded
// event buffer across a server restart.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlane, RUNS_STREAM, subjects } from '../../common/control/plane.js';
import type { RunRecord } from '../../common/control/registry.js';
import { ControlPlaneError, LeaseHeldError, RunNotFoundError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { decodeCheckpoint, encodeCheckpoint, zeroCounters, type CheckpointData } from '../../coordinator/checkpoints.js';
import { NatsCheckpointStore } from '../../coordinator/nats-checkpoints.js';
import { BufferedPublisher } from '../../coordinator/run-reporter.js';
import { controlPlaneFixture } from '../helpers/control-plane-fixture.js';
import { natsServerBinary } from '../helpers/nats-server.js';

function record(runId: string, extra: Partial<RunRecord> = {}): RunRecord {
  return { runId, name: 'job', status: 'queued', pool: 'default', updatedAt: '', step: 0, totalSteps: 10, workers: 0, attempts: 0, ...extra };
}

function checkpoint(step: number, runId = 'run-ckpt'): CheckpointData {
  const params = Float32Array.from({ length: 300_000 }, (_, i) => Math.sin(i + step));
  return {
    runId,
    jobHash: 'h',
    jobDir: '/tmp',
    step,
    version: step,
    params,
    optimizer: { name: 'adam', t: step, slots: { m: params.map((x) => x / 2), v: params.map((x) => x * x) } },
    aggregator: { step },
    samples: step * 64,
    trainMs: step * 10,
    counters: zeroCounters(),
    createdAt: new Date(0).toISOString(),
  };
}

async function waitUntil(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

void describe('NATS control plane', () => {
  const nats = controlPlaneFixture();


  void it('names the package to install when nats-server is missing', () => {
    const saved = process.env.NATS_SERVER;
    process.env.NATS_SERVER = '/nonexistent/nats-server';
    try {
      assert.throws(() => natsServerBinary(), /apt-get install -y nats-server/);
    } finally {
      if (saved === undefined) delete process.env.NATS_SERVER;
      else process.env.NATS_SERVER = saved;
    }
  });

  void it('fails with a clear error when no server listens', async () => {
    await assert.rejects(ControlPlane.connect({ url: 'nats://127.0.0.1:1', name: 'x', logger: silentLogger, connectTimeoutMs: 1000 }), (err: unknown) => {
      assert.ok(err instanceof ControlPlaneError);
      assert.match(err.message, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
      return true;
    });
  });

  void it('registry: create refuses a taken id; concurrent mutations are all applied (compare-and-set)', async () => {
    await nats.registry.create(record('run-cas'));
    await assert.rejects(nats.registry.create(record('run-cas')), ControlPlaneError);
    await Promise.all(Array.from({ length: 8 }, () => nats.registry.mutate('run-cas', (r) => ({ ...r!, step: r!.step + 1 }))));
    assert.equal((await nats.registry.require('run-cas')).step, 8);
    await assert.rejects(nats.registry.require('no-such-run'), RunNotFoundError);
    await assert.rejects(nats.registry.get('bad id with spaces'), /invalid run id/);
    assert.ok((await nats.registry.list()).some((r) => r.runId === 'run-cas'));
  });

  void it('lease: one owner at a time; an expired lease can be taken over and the old owner learns it', async () => {
    await nats.registry.create(record('run-lease'));
    const running = (r: RunRecord | undefined) => ({ ...r!, status: 'running' as const });
    await nats.registry.acquire('run-lease', 'A', 600, running);
    await assert.rejects(nats.registry.acquire('run-lease', 'B', 600, running), LeaseHeldError);
    await nats.registry.renew('run-lease', 'A', 600, (r) => ({ ...r, step: 3 }));
    // The renewal restarted the watch: B must see the lease unrenewed for 600 ms from now.
    await assert.rejects(nats.registry.acquire('run-lease', 'B', 600, running), LeaseHeldError);
    await sleep(700);
    const taken = await nats.registry.acquire('run-lease', 'B', 10_000, running);
    assert.equal(taken.lease?.owner, 'B');
    assert.equal(taken.step, 3);
    await assert.rejects(nats.registry.renew('run-lease', 'A', 600), LeaseHeldError);
    await assert.rejects(nats.registry.release('run-lease', 'A', (r) => r), LeaseHeldError);
    const released = await nats.registry.release('run-lease', 'B', (r) => ({ ...r, status: 'succeeded' }));
    assert.equal(released.lease, undefined);
    assert.equal((await nats.registry.require('run-lease')).status, 'succeeded');
  });

  void it('object-store checkpoints: newest first, keeps the last N, skips a damaged one', async () => {
    const store = new NatsCheckpointStore(nats.plane, 'run-ckpt', 3);
    for (const step of [5, 10, 15, 20]) await store.save(checkpoint(step));
    await store.settled();
    assert.deepEqual((await store.list()).map((c) => c.step), [20, 15, 10]);
    const latest = await store.loadLatest();
    assert.ok(latest);
    assert.deepEqual(encodeCheckpoint(latest), encodeCheckpoint(checkpoint(20)));
    // Another run's checkpoints are not this run's.
    assert.equal(await new NatsCheckpointStore(nats.plane, 'run-ckpt-other').loadLatest(), undefined);

    // A newer object that is not a valid checkpoint (torn write, foreign data) is passed over.
    const bytes = encodeCheckpoint(checkpoint(25));
    bytes[100] = bytes[100]! ^ 0xff;
    const os = await nats.plane.checkpointStore();
    await os.putBlob({ name: 'run-ckpt/ckpt-000000025' }, bytes);
    assert.throws(() => decodeCheckpoint(bytes));
    const skipped: string[] = [];
    const fallback = await store.loadLatest((name, reason) => skipped.push(`${name}: ${reason}`));
    assert.equal(fallback?.step, 20);
    assert.equal(skipped.length, 1);
    assert.match(skipped[0]!, /ckpt-000000025: .*checksum/);
    await store.removeAll();
    assert.deepEqual(await store.list(), []);
  });

  void it('events survive a server restart: buffered while down (oldest dropped past the bound), sent after reconnecting', async () => {
    const publisher = new BufferedPublisher(nats.plane, 50);
    const subject = subjects.events('run-outage');
    publisher.publish(subject, JSON.stringify({ n: 0 }));
    await nats.plane.nc.flush();
    await nats.server.stop();
    await waitUntil('the client to notice the outage', () => !nats.plane.connected);
    for (let n = 1; n <= 80; n++) publisher.publish(subject, JSON.stringify({ n }));
    assert.equal(publisher.buffered, 50);
    assert.equal(publisher.dropped, 30);
    await nats.server.restart();
    await waitUntil('reconnection', () => nats.plane.connected);
    await waitUntil('the buffer to drain', () => publisher.buffered === 0);
    await nats.plane.nc.flush();
    // What the stream holds now: message 0, then the newest 50 (31..80), in order.
    const consumer = await nats.plane.js.consumers.get(RUNS_STREAM, { filter_subjects: subject });
    const seen: number[] = [];
    const iter = await consumer.fetch({ max_messages: 100, expires: 2000 });
    for await (const m of iter) seen.push(m.json<{ n: number }>().n);
    assert.deepEqual(seen, [0, ...Array.from({ length: 50 }, (_, i) => i + 31)]);
    assert.equal(publisher.delivered, 50);
    publisher.close();
  });
});
