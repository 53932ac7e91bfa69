// Run leases and compare-and-set retries against a real nats-server. Two registry clients
// whose clocks disagree by hours never both hold a run: a lease is taken over only once the
// challenger watched it go unrenewed for its length on its own clock. Write conflicts are
// recognised by the typed JetStream error, not by its message.
import assert from 'node:assert/strict';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlane } from '../../common/control/plane.js';
import { isWriteConflict, RunRegistry, type RunRecord } from '../../common/control/registry.js';
import { ControlPlaneError, LeaseHeldError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { NatsServer } from '../helpers/nats-server.js';

const HOUR = 3_600_000;

function record(runId: string, extra: Partial<RunRecord> = {}): RunRecord {
  return { runId, name: 'job', status: 'queued', pool: 'default', updatedAt: '', step: 0, totalSteps: 10, workers: 0, attempts: 0, ...extra };
}

const running = (r: RunRecord | undefined) => ({ ...r!, status: 'running' as const });

/** A clock the test moves by hand. */
function manualClock(start: number): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return assert.fail('expected a rejection');
}

void describe('run leases and write conflicts (real nats-server)', () => {
  let server: NatsServer;
  let plane: ControlPlane;
  before(async () => {
    server = await NatsServer.start();
    plane = await ControlPlane.connect({ url: server.url, name: 'test', logger: silentLogger });
  });
  after(async () => {
    await plane.close();
    await server.stop();
  });

  void it('clocks hours apart: the challenger never takes a renewed lease; it takes an unrenewed one after watching it for its length', async () => {
    // A's clock is 3 hours behind, B's 5 hours ahead of real time; only each one's own rate matters.
    const clockA = manualClock(performance.now() - 3 * HOUR);
    const clockB = manualClock(performance.now() + 5 * HOUR);
    const a = await RunRegistry.open(plane, { clock: clockA.now });
    const b = await RunRegistry.open(plane, { clock: clockB.now });
    const ttl = 1000;
    await a.create(record('skewed'));
    await a.acquire('skewed', 'A', ttl, running);
    for (let i = 0; i < 5; i++) {
      assert.ok((await rejection(b.acquire('skewed', 'B', ttl, running))) instanceof LeaseHeldError, `B takes the lease A keeps renewing (round ${i})`);
      // Ten lease lengths pass on B's clock (and on A's), but A renews in between.
      clockB.advance(10 * ttl);
      clockA.advance(10 * ttl);
      await a.renew('skewed', 'A', ttl, (r) => ({ ...r, step: i + 1 }));
      assert.equal((await a.require('skewed')).lease?.owner, 'A');
    }
    // A stops renewing. B saw the last beat just now; it must watch it for a whole lease first.
    assert.ok((await rejection(b.acquire('skewed', 'B', ttl, running))) instanceof LeaseHeldError);
    clockB.advance(ttl - 1);
    assert.ok((await rejection(b.acquire('skewed', 'B', ttl, running))) instanceof LeaseHeldError, 'one millisecond short of the lease');
    clockB.advance(1);
    const taken = await b.acquire('skewed', 'B', ttl, running);
    assert.equal(taken.lease?.owner, 'B');
    assert.equal(taken.step, 5, 'the takeover keeps the record');
    // The old holder learns it at its next renewal and cannot release what is not its own.
    assert.ok((await rejection(a.renew('skewed', 'A', ttl))) instanceof LeaseHeldError);
    assert.ok((await rejection(a.release('skewed', 'A', (r) => r))) instanceof LeaseHeldError);
    // And A, whatever its clock says, cannot take it back while B renews.
    clockA.advance(100 * HOUR);
    assert.ok((await rejection(a.acquire('skewed', 'A', ttl, running))) instanceof LeaseHeldError);
    await b.renew('skewed', 'B', ttl);
    clockA.advance(100 * HOUR);
    assert.ok((await rejection(a.acquire('skewed', 'A', ttl, running))) instanceof LeaseHeldError);
    assert.equal((await b.release('skewed', 'B', (r) => ({ ...r, status: 'succeeded' }))).lease, undefined);
  });

  void it('a renewal racing a takeover: exactly one of them wins (compare-and-set on the revision)', async () => {
    const clockB = manualClock(0);
    const a = await RunRegistry.open(plane);
    const b = await RunRegistry.open(plane, { clock: clockB.now });
    for (let round = 0; round < 5; round++) {
      const runId = `race-${round}`;
      await a.create(record(runId));
      await a.acquire(runId, 'A', 1000, running);
      await rejection(b.acquire(runId, 'B', 1000, running));
      clockB.advance(1000);
      const [renewal, takeover] = await Promise.allSettled([a.renew(runId, 'A', 1000), b.acquire(runId, 'B', 1000, running)]);
      const winners = [renewal, takeover].filter((s) => s.status === 'fulfilled');
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify([renewal.status, takeover.status])}`);
      const loser = [renewal, takeover].find((s) => s.status === 'rejected') as PromiseRejectedResult;
      assert.ok(loser.reason instanceof LeaseHeldError);
      assert.equal((await a.require(runId)).lease?.owner, renewal.status === 'fulfilled' ? 'A' : 'B');
    }
  });

  void it('with the real clock: an expired holder is taken over', async () => {
    const a = await RunRegistry.open(plane);
    const b = await RunRegistry.open(plane);
    await a.create(record('expired'));
    await a.acquire('expired', 'A', 300, running);
    assert.ok((await rejection(b.acquire('expired', 'B', 300, running))) instanceof LeaseHeldError);
    await sleep(400);
    assert.equal((await b.acquire('expired', 'B', 300, running)).lease?.owner, 'B');
  });

  void it('write conflicts are known by their JetStream error code, whatever the message says', async () => {
    const kv = await plane.registryKv();
    const revision = await kv.put('conflict-probe', 'v1');
    await kv.put('conflict-probe', 'v2');
    // The real errors of a lost compare-and-set: an update on an old revision, a create on an existing key.
    const stale = await rejection(kv.update('conflict-probe', 'v3', revision));
    const exists = await rejection(kv.create('conflict-probe', 'v3'));
    for (const err of [stale, exists]) {
      assert.ok(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence, String(err));
      assert.equal(isWriteConflict(err), true);
    }
    // Another real JetStream error (no such stream) is no conflict; neither are look-alike messages.
    const missing = await rejection(plane.jsm.streams.info('NO_SUCH_STREAM'));
    assert.ok(missing instanceof JetStreamApiError);
    assert.equal(isWriteConflict(missing), false);
    assert.equal(isWriteConflict(new Error('wrong last sequence: 7')), false);
    assert.equal(isWriteConflict(new Error('key exists')), false);
    assert.equal(isWriteConflict(new JetStreamApiError({ err_code: JetStreamApiCodes.StreamWrongLastSequence, code: 400, description: 'worded differently' })), true);
  });

  void it('mutate retries a real conflict and gives up at once on any other error', async () => {
    const registry = await RunRegistry.open(plane);
    const kv = await plane.registryKv();
    await registry.create(record('retry-probe'));
    let calls = 0;
    let between: Promise<number> | undefined;
    const result = await registry.mutate('retry-probe', (r) => {
      // The first time round, another write gets in between the read and the write: sent on
      // the same connection just before it, so the server sees it first.
      if (calls++ === 0) between = kv.put('retry-probe', JSON.stringify({ ...r!, step: 100 }));
      return { ...r!, workers: r!.step };
    });
    await between;
    assert.equal(calls, 2, 'the conflicting write made it read again, once');
    assert.equal(result.workers, 100, 'the redone change saw the other write');

    // A write the server refuses for another reason (larger than the server's max_payload) is not retried.
    calls = 0;
    const err = await rejection(registry.mutate('retry-probe', (r) => (calls++, { ...r!, error: 'x'.repeat(2 << 20) })));
    assert.ok(err instanceof ControlPlaneError, String(err));
    assert.match(err.message, /^cannot update run retry-probe in the registry: /);
    assert.equal(calls, 1);
  });
});
