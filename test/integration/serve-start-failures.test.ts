// `mtl serve` when a claimed job cannot start: its checkpoint does not restore (the Coordinator
// constructor throws), or its port is taken (listen() throws). The job must not be lost: it
// goes back to the queue and is retried, and on its last delivery it is failed and recorded;
// the in-progress timer of the message is cleared on every path. A real nats-server, the real
// JobServer in this process, jobs submitted with the real `mtl submit`.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJobMessage } from '../../common/control/jobs.js';
import { JOBS_STREAM } from '../../common/control/plane.js';
import type { RunRecord } from '../../common/control/registry.js';
import { silentLogger } from '../../common/logging.js';
import { aggregatorNames } from '../../coordinator/aggregation/registry.js';
import { jobHash, zeroCounters } from '../../coordinator/checkpoints.js';
import { NatsCheckpointStore } from '../../coordinator/nats-checkpoints.js';
import { consumerName, JobServer, type JobServerOptions } from '../../coordinator/serve.js';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { controlPlaneFixture } from '../helpers/control-plane-fixture.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** The ack wait of these servers; their in-progress timer ticks every third of it. */
const ACK_WAIT_MS = 4500;
const IN_PROGRESS_EVERY_MS = ACK_WAIT_MS / 3;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Every setInterval and clearInterval of the test, to tell which in-progress timers were left running. */
function watchIntervals(t: TestContext): () => { started: number; leaked: number } {
  const set = t.mock.method(globalThis, 'setInterval');
  const clear = t.mock.method(globalThis, 'clearInterval');
  return () => {
    const cleared = new Set(clear.mock.calls.map((c) => c.arguments[0] as unknown));
    const ours = set.mock.calls.filter((c) => c.arguments[1] === IN_PROGRESS_EVERY_MS).map((c) => c.result as unknown);
    return { started: ours.length, leaked: ours.filter((timer) => !cleared.has(timer)).length };
  };
}

void describe('mtl serve: a claimed job that cannot start is retried, then failed, never lost', () => {
  const nats = controlPlaneFixture();

  async function submit(pool: string): Promise<string> {
    const r = await runCli(['submit', writeJob(tinyJob()), '--nats', nats.server.url, '--pool', pool]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  /** Runs a JobServer until `runId` has failed; returns the outcomes it reported. */
  async function serveUntilFailed(runId: string, options: Partial<JobServerOptions> & Pick<JobServerOptions, 'pool'>): Promise<{ outcomes: string[]; record: RunRecord }> {
    const outcomes: string[] = [];
    const jobs = new JobServer({
      plane: nats.plane,
      concurrency: 1,
      listenHost: '127.0.0.1',
      listenPort: 0,
      advertiseHost: '127.0.0.1',
      outRoot: tempDir('mtl-serve-fail-'),
      minWorkers: 1,
      waitForWorkersMs: 60_000,
      ackWaitMs: ACK_WAIT_MS,
      leaseMs: 30_000,
      maxDeliver: 2,
      owner: 'test-server',
      logger: silentLogger,
      onJobEnd: (id, outcome, detail) => void (id === runId && outcomes.push(`${outcome}: ${detail}`)),
      ...options,
    });
    const serving = jobs.run();
    try {
      const record = await waitFor(`run ${runId} to fail`, async () => {
        const r = await nats.registry.get(runId);
        return r?.status === 'failed' && outcomes.some((o) => o.startsWith('failed')) ? r : undefined;
      });
      return { outcomes, record };
    } finally {
      jobs.stop('test over');
      await serving;
    }
  }

  async function queueIsEmpty(pool: string): Promise<void> {
    const consumer = await nats.plane.jsm.consumers.info(JOBS_STREAM, consumerName(pool));
    assert.equal(consumer.num_pending + consumer.num_ack_pending + consumer.num_redelivered, 0, JSON.stringify(consumer));
    assert.equal((await nats.plane.jsm.streams.info(JOBS_STREAM)).state.messages, 0, 'the failed job was removed from the work queue');
  }

  void it('a checkpoint that does not restore (the Coordinator constructor throws): retried once, then failed and recorded', async (t) => {
    const pool = 'restore-fails';
    const runId = await submit(pool);
    // A checkpoint of this very job (its hash matches) whose Adam state does not fit the model.
    const { queueSeq } = await nats.registry.require(runId);
    const queued = decodeJobMessage((await nats.plane.jsm.streams.getMessage(JOBS_STREAM, { seq: queueSeq! }))!.string(), { aggregatorNames });
    await new NatsCheckpointStore(nats.plane, runId).save({
      runId,
      jobHash: jobHash(queued.spec),
      jobDir: queued.jobDir,
      step: 3,
      version: 3,
      params: new Float32Array(10),
      optimizer: { name: 'adam', t: 3, slots: { m: new Float32Array(3), v: new Float32Array(3) } },
      aggregator: {},
      samples: 48,
      trainMs: 1,
      counters: zeroCounters(),
      createdAt: new Date().toISOString(),
    });
    const intervals = watchIntervals(t);
    const { outcomes, record } = await serveUntilFailed(runId, { pool });
    assert.deepEqual(outcomes, [
      'retry: attempt 1 could not resume from the checkpoint at step 3: adam state does not match the model',
      'failed: could not resume from the checkpoint at step 3: adam state does not match the model (attempt 2 of 2, giving up)',
    ]);
    assert.equal(record.error, 'could not resume from the checkpoint at step 3: adam state does not match the model (attempt 2 of 2, giving up)');
    assert.equal(record.attempts, 2);
    assert.equal(record.lease, undefined, 'the lease was given up');
    assert.equal(record.coordinator, undefined);
    assert.ok(record.finishedAt);
    await queueIsEmpty(pool);
    assert.deepEqual(intervals(), { started: 2, leaked: 0 }, 'one in-progress timer per delivery, each cleared');
  });

  void it('a port that is taken (listen() throws) on the last delivery: failed and recorded at once', async (t) => {
    const pool = 'listen-fails';
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const runId = await submit(pool);
      const intervals = watchIntervals(t);
      const { outcomes, record } = await serveUntilFailed(runId, { pool, listenPort: port, maxDeliver: 1 });
      assert.equal(outcomes.length, 1, outcomes.join('\n'));
      assert.match(outcomes[0]!, new RegExp(`^failed: could not listen on 127\\.0\\.0\\.1:${port}: .* \\(attempt 1 of 1, giving up\\)$`));
      assert.equal(record.lease, undefined);
      await queueIsEmpty(pool);
      assert.deepEqual(intervals(), { started: 1, leaked: 0 });
    } finally {
      taken.close();
    }
  });
});
