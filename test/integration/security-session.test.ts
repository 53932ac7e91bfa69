// With a join token configured, a worker is bound to its session: it can only report units
// assigned to it, even when it knows (or guesses) another worker's unit ids. Real gRPC, real
// coordinator, two scripted workers.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { loadJobFile } from '../../common/job-spec.js';
import { createLogger } from '../../common/logging.js';
import { newToken } from '../../common/security.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { writeJob } from '../helpers/jobs.js';
import { ScriptedWorker } from '../helpers/scripted-worker.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('session-bound worker identity (with a join token)', () => {
  void it('rejects results for units of another worker, refuses a Hello without the token, and the run succeeds', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const token = newToken();
    const lines: string[] = [];
    const coordinator = new Coordinator({
      prepared: prepareRun(loadJobFile(writeJob({ ...tinyJob(3), training: { ...(tinyJob(3) as { training: object }).training, shardsPerTask: 2 } }))),
      listen: '127.0.0.1:0',
      outDir: tempDir('mtl-bound-'),
      minWorkers: 2,
      waitForWorkersMs: 60_000,
      token,
      logger: createLogger({ component: 'test', level: 'warn', write: (l) => lines.push(l) }),
    });
    const address = await coordinator.listen();

    const stranger = new ScriptedWorker(address, () => Promise.resolve(true), { name: 'stranger' });
    await stranger.start();
    assert.match(await stranger.shutdown, /authentication failed/);
    stranger.close();

    // A holds its first unit back until B has tried to report it as its own.
    let unitOfA!: (u: Unit__Output) => void;
    const aHolds = new Promise<Unit__Output>((r) => (unitOfA = r));
    let forgedSent!: () => void;
    const forged = new Promise<void>((r) => (forgedSent = r));
    let aFirst = true;
    let bFirst = true;
    const a = new ScriptedWorker(
      address,
      async (unit) => {
        if (unit.kind !== 'UNIT_KIND_TRAIN' || !aFirst) return true;
        aFirst = false;
        unitOfA(unit);
        await forged;
        return true;
      },
      { token, name: 'a' },
    );
    const b = new ScriptedWorker(
      address,
      async (unit, honest, ctx) => {
        if (unit.kind !== 'UNIT_KIND_TRAIN' || !bFirst) return true;
        bFirst = false;
        const theirs = await aHolds;
        // B's own honest header and payload, relabelled as A's unit.
        await ctx.send({ unitResult: { ...honest.header, unitId: theirs.unitId, task: theirs.task, shard: theirs.shard } });
        forgedSent();
        return true;
      },
      { token, name: 'b' },
    );
    await Promise.all([a.start(), b.start()]);
    const summary = await coordinator.runToCompletion();
    await Promise.all([a.shutdown, b.shutdown]);
    a.close();
    b.close();
    await coordinator.close();

    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.equal(summary.rejectedMessages, 1);
    assert.equal(summary.faults.authFailures, 1);
    const theirs = await aHolds;
    assert.ok(lines.some((l) => l.includes('rejected message') && l.includes(`unit ${theirs.unitId} is not assigned to`)), lines.join(''));
    assert.ok(lines.some((l) => /authentication failed peer=\S+ request=Hello reason="no join token"/.test(l)), lines.join(''));
    assert.ok(!lines.some((l) => l.includes(token)));
  });
});
