// The worker's lifecycle contract: run() once, close() idempotent, one exit however it ends.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IllegalStateError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { ComputeThread } from '../../worker/compute-thread.js';
import { Worker } from '../../worker/worker.js';

void describe('Worker lifecycle', () => {
  void it('ends with code 1 when the coordinator is unreachable; close() is idempotent; run() only once', async () => {
    const worker = new Worker({ coordinator: '127.0.0.1:1', backend: 'cpu', connectTimeoutMs: 300, logger: silentLogger });
    const exit = await worker.run();
    assert.equal(exit.code, 1);
    assert.match(exit.reason, /cannot reach coordinator at 127\.0\.0\.1:1/);
    assert.equal(worker.currentState, 'closed');
    const a = worker.close(0, 'again');
    assert.equal(worker.close(), a, 'close() returns the same promise');
    assert.deepEqual(await a, exit, 'the first exit reason stays');
    await assert.rejects(worker.run(), IllegalStateError);
    assert.equal(ComputeThread.running, 0, 'its compute thread ended with it');
  });

  void it('close() while connecting ends the session with the given code', async () => {
    const worker = new Worker({ coordinator: '127.0.0.1:1', backend: 'cpu', connectTimeoutMs: 5000, logger: silentLogger });
    const running = worker.run();
    const closed = worker.close(3, 'asked to stop');
    const [r, c] = await Promise.all([running, closed]);
    assert.deepEqual(r, { code: 3, reason: 'asked to stop' });
    assert.deepEqual(c, r);
    assert.equal(ComputeThread.running, 0, 'its compute thread ended with it');
  });
});
