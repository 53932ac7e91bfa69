// Malformed, stale, out-of-order and unassigned messages from a worker are rejected and
// counted, never applied: a run disturbed by them ends with bitwise the same weights as an
// undisturbed run. Real gRPC, real coordinator; the disturbing worker is scripted.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { float32Bytes } from '../../common/protocol.js';
import { describe, it } from 'node:test';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import type { RunSummary } from '../../coordinator/run-summary.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { startCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { ScriptedWorker, type HonestResult, type ScriptContext, type Tamper } from '../helpers/scripted-worker.js';
import { tempDir } from '../helpers/temp-dirs.js';

const JOB = writeJob(smallMultiMnistJob({ steps: 4, shardsPerTask: 2, evalEvery: 2 }));

function coordinatorFor(out: string, jobFile = JOB): Coordinator {
  return new Coordinator({ prepared: prepareRun(loadJobFile(jobFile)), listen: '127.0.0.1:0', outDir: out, minWorkers: 1, waitForWorkersMs: 60_000, logger: silentLogger });
}

async function runWithScriptedWorker(tamper: Tamper, jobFile = JOB): Promise<{ summary: RunSummary; out: string }> {
  const out = tempDir('mtl-hostile-');
  const coordinator = coordinatorFor(out, jobFile);
  const worker = new ScriptedWorker(await coordinator.listen(), tamper);
  await worker.start();
  const summary = await coordinator.runToCompletion();
  await worker.shutdown;
  worker.close();
  await coordinator.close();
  return { summary, out };
}

void describe('hostile worker messages', () => {
  void it('rejects and counts each bad message, and the final weights equal an undisturbed run', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');

    // Undisturbed: one real worker process on the same backend.
    const cleanOut = tempDir('mtl-clean-');
    const clean = coordinatorFor(cleanOut);
    const real = startCli(['worker', '--coordinator', await clean.listen(), '--backend', 'cpu']);
    const cleanSummary = await clean.runToCompletion();
    await clean.close();
    await real.result;
    assert.equal(cleanSummary.status, 'succeeded');
    assert.equal(cleanSummary.rejectedMessages, 0);

    let sentBad = 0;
    const tampered = new Set<string>();
    const bad = async (ctx: ScriptContext, message: Parameters<ScriptContext['send']>[0]) => {
      sentBad++;
      await ctx.send(message);
    };
    const scripts: Array<(unit: Unit__Output, honest: HonestResult, ctx: ScriptContext) => Promise<void>> = [
      async (_u, honest, ctx) => {
        await bad(ctx, { unitResult: { ...honest.header, unitId: 'no-such-unit' } });
        await bad(ctx, { chunk: { transferId: 77, offset: 0, data: Buffer.alloc(8) } });
        await bad(ctx, { unitResult: { ...honest.header, byteLength: 12 } });
      },
      async (_u, honest, ctx) => {
        await ctx.send({ unitResult: honest.header }); // a valid header opens the transfer...
        await bad(ctx, { chunk: { transferId: honest.header.transferId, offset: 2, data: Buffer.alloc(8) } }); // ...then a chunk off the value boundaries
      },
      async (_u, honest, ctx) => {
        // Chunks in any order are fine (buckets, last layers first), but the ResultEnd needs every byte.
        await ctx.send({ unitResult: honest.header });
        const bytes = float32Bytes(honest.payload!);
        const half = 4 * Math.floor(bytes.byteLength / 8);
        await ctx.send({ chunk: { transferId: honest.header.transferId, offset: half, data: Buffer.from(bytes.subarray(half, Math.min(bytes.byteLength, half + (1 << 20)))) } });
        await bad(ctx, { resultEnd: { transferId: honest.header.transferId, computeMs: 1, busyMs: 1 } });
      },
      async (_u, honest, ctx) => {
        await ctx.send({ unitResult: honest.header });
        const first = Buffer.from(float32Bytes(honest.payload!).subarray(0, 4096));
        await ctx.send({ chunk: { transferId: honest.header.transferId, offset: 0, data: first } });
        await bad(ctx, { chunk: { transferId: honest.header.transferId, offset: 0, data: first } }); // the same bytes again
        await ctx.send({ resultEnd: { transferId: honest.header.transferId, computeMs: 1, busyMs: 1 } }); // dropped quietly with its transfer
      },
      async (_u, honest, ctx) => {
        await bad(ctx, { unitResult: { ...honest.header, weightsVersion: ctx.weightsVersion + 5 } });
      },
      async (_u, honest, ctx) => {
        await bad(ctx, { unitResult: { ...honest.header, sampleCount: (honest.header.sampleCount ?? 0) + 1 } });
      },
      async (_u, honest, ctx) => {
        await ctx.send({ unitResult: honest.header });
        await bad(ctx, { chunk: { transferId: (honest.header.transferId ?? 0) + 1, offset: 0, data: Buffer.alloc(8) } });
      },
      async (_u, honest, ctx) => {
        // A result for a unit the coordinator never assigned to anyone: a copy of the honest one with another step.
        await bad(ctx, { unitResult: { ...honest.header, step: (honest.header.step ?? 0) + 1 } });
      },
    ];
    let evalTampered = false;
    const { summary, out } = await runWithScriptedWorker(async (unit, honest, ctx) => {
      if (unit.kind === 'UNIT_KIND_EVAL') {
        if (evalTampered) return true;
        evalTampered = true;
        await bad(ctx, { unitResult: { ...honest.header, metrics: {} } }); // lacks its accuracy
        return false;
      }
      // Each (step, task, shard) is disturbed at most once, so no unit runs out of attempts.
      const key = `${unit.step}/${unit.task}/${unit.shard}`;
      const script = scripts[tampered.size];
      if (tampered.has(key) || !script) return true;
      tampered.add(key);
      await script(unit, honest, ctx);
      return false; // the coordinator reassigns the unit; the honest result goes to the new assignment
    });

    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.equal(tampered.size, scripts.length, 'every script ran');
    assert.ok(evalTampered);
    assert.equal(summary.rejectedMessages, sentBad);
    const weights = readFileSync(path.join(out, 'model', 'weights.bin'));
    assert.ok(weights.equals(readFileSync(path.join(cleanOut, 'model', 'weights.bin'))), 'disturbed run ended with other weights');
    assert.deepEqual(summary.tasks, cleanSummary.tasks);
  });

  void it('fails the run with a clear message when a gradient is not finite', async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const { summary } = await runWithScriptedWorker(async (unit, honest, ctx) => {
      if (unit.kind !== 'UNIT_KIND_TRAIN') return true;
      const poisoned = honest.payload!.slice();
      poisoned[3] = Number.NaN;
      await ctx.sendResult({ header: honest.header, payload: poisoned });
      return false;
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.error?.code, 'NON_FINITE');
    assert.match(summary.error?.message ?? '', /training diverged: .*non-finite gradient \(NaN\) at index 3/);
  });

  for (const compression of ['none', 'fp16', 'bf16'] as const) {
    void it(`an infinite gradient is not finite with transport.compression ${compression}: training.nonFinite decides`, async () => {
      // fp16 once turned ±∞ into ±65504, so an infinite gradient passed as finite and was applied.
      tf.enableProdMode();
      await tf.setBackend('cpu');
      const poison: Tamper = async (unit, honest, ctx) => {
        if (unit.kind !== 'UNIT_KIND_TRAIN' || unit.step !== 1 || unit.task !== 'left' || unit.shard !== 0) return true;
        const poisoned = honest.payload!.slice();
        poisoned[5] = -Infinity;
        await ctx.sendResult({ header: honest.header, payload: poisoned });
        return false;
      };
      const jobOf = (nonFinite: string) => {
        const doc = smallMultiMnistJob({ steps: 3, shardsPerTask: 2 }) as { training: object };
        return writeJob({ ...doc, training: { ...doc.training, nonFinite }, transport: { compression } });
      };
      const failed = await runWithScriptedWorker(poison, jobOf('fail'));
      assert.equal(failed.summary.status, 'failed');
      assert.equal(failed.summary.error?.code, 'NON_FINITE');
      assert.match(failed.summary.error?.message ?? '', /training diverged: .*non-finite gradient \(-Infinity\) at index 5/);

      const skipped = await runWithScriptedWorker(poison, jobOf('skip-step'));
      assert.equal(skipped.summary.status, 'succeeded', JSON.stringify(skipped.summary.error));
      assert.equal(skipped.summary.faults.skippedSteps, 1, 'step 2 was skipped, not applied');
    });
  }
});
