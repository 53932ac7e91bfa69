// Fuzzing over the network: a Coordinator in this process on 127.0.0.1:0.
// - A scripted worker (real gRPC, real compute) plays fast-check-generated hostile episodes
//   before its honest results, next to an honest one: the run ends with the weights of an
//   undisturbed run, and the rejected messages are counted.
// - Random bytes on raw TCP connections (with and without the HTTP/2 preface, random frames),
//   and random or mutated messages on real Connect streams, while a real worker process
//   trains: the coordinator stays up and that worker finishes with the expected weights.
import * as grpc from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { loadJobFile } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { CHANNEL_OPTIONS, MAX_CHUNK_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION } from '../../common/protocol.js';
import { Coordinator } from '../../coordinator/coordinator.js';
import type { RunSummary } from '../../coordinator/run-summary.js';
import { prepareRun } from '../../coordinator/prepare-run.js';
import { MAX_INVALID_RESULTS } from '../../coordinator/result-intake.js';
import { startCli } from '../helpers/cli-process.js';
import { decodeWorkerMessage, encodeWorkerMessage } from '../helpers/fake-call.js';
import type { FakeResult } from '../helpers/in-memory-run.js';
import { writeJob } from '../helpers/jobs.js';
import { ScriptedWorker, type HonestResult, type ScriptContext, type Tamper } from '../helpers/scripted-worker.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { episodeArb, fuzzParams, fuzzRuns, playEpisode, type Episode, type EpisodeWorker } from './episodes.js';

const base = tinyJob(4) as { training: Record<string, unknown> };
const JOB = writeJob({ ...base, training: { ...base.training, shardsPerTask: 2, evalEvery: 2, nonFinite: 'skip-unit' } });

const escapedGlobally: unknown[] = [];
const onUnhandled = (err: unknown) => escapedGlobally.push(err);

function coordinator(out: string, extra: Partial<ConstructorParameters<typeof Coordinator>[0]> = {}): Coordinator {
  return new Coordinator({ prepared: prepareRun(loadJobFile(JOB)), listen: '127.0.0.1:0', outDir: out, minWorkers: 2, waitForWorkersMs: 60_000, logger: silentLogger, ...extra });
}

function weights(out: string): Buffer {
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

async function runScripted(tamper: Tamper): Promise<{ summary: RunSummary; out: string }> {
  const out = tempDir('mtl-fuzz-grpc-');
  const c = coordinator(out);
  const address = await c.listen();
  const workers = [new ScriptedWorker(address, () => Promise.resolve(true), { name: 'honest' }), new ScriptedWorker(address, tamper, { name: 'fuzzed' })];
  await Promise.all(workers.map((w) => w.start()));
  const summary = await c.runToCompletion();
  await Promise.all(workers.map((w) => w.shutdown));
  for (const w of workers) w.close();
  await c.close();
  return { summary, out };
}

/** Plays episodes through a scripted worker's stream (in order with its honest messages). */
function scriptedEpisodeWorker(ctx: ScriptContext, sent: FakeResult[], transfer: { next: number }): { worker: EpisodeWorker; flush: () => Promise<void> } {
  const pending: Array<Promise<void>> = [];
  const send = (m: WorkerMessage) => void pending.push(ctx.send(m).catch(() => undefined));
  const worker: EpisodeWorker = {
    send,
    sendBytes: (bytes) => {
      let decoded: WorkerMessage;
      try {
        decoded = decodeWorkerMessage(bytes);
      } catch {
        return false; // grpc-js would end the stream with INTERNAL; the raw-stream test covers that
      }
      send(decoded);
      return true;
    },
    sendResult: (r) => void pending.push(ctx.sendResult(r as HonestResult).catch(() => undefined)),
    nextTransferId: () => ++transfer.next,
    sent,
  };
  return { worker, flush: async () => void (await Promise.all(pending)) };
}

void describe('fuzz: hostile input over gRPC', () => {
  let reference: Buffer;
  let referenceTasks: RunSummary['tasks'];

  before(async () => {
    process.on('unhandledRejection', onUnhandled).on('uncaughtException', onUnhandled);
    tf.enableProdMode();
    await tf.setBackend('cpu');
    const { summary, out } = await runScripted(() => Promise.resolve(true));
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.equal(summary.rejectedMessages, 0);
    reference = weights(out);
    referenceTasks = summary.tasks;
  });
  after(() => {
    process.off('unhandledRejection', onUnhandled).off('uncaughtException', onUnhandled);
    assert.deepEqual(escapedGlobally, [], 'no exception or rejection escaped');
  });

  void it('a scripted worker playing generated episodes: same weights as undisturbed, rejections counted', async (t) => {
    const runs = fuzzRuns(25);
    let episodes = 0;
    let rejected = 0;
    // Few enough episodes that the session's rejection budget is not reached (a closed session
    // is the in-memory suite's business; here the fuzzed worker must stay to be fuzzed).
    const planArb = fc.array(fc.array(episodeArb, { maxLength: 2 }), { minLength: 4, maxLength: 16 });
    await fc.assert(
      fc.asyncProperty(planArb, async (plan: Episode[][]) => {
        const cost = new Map<string, number>();
        const sent: FakeResult[] = [];
        const transfer = { next: 500_000 };
        let certain = 0;
        let possible = 0;
        let i = 0;
        const { summary, out } = await runScripted(async (unit, honest, ctx) => {
          const key = `${unit.kind}/${unit.step}/${unit.task}/${unit.shard}`;
          const { worker, flush } = scriptedEpisodeWorker(ctx, sent, transfer);
          let targeted = false;
          for (const episode of plan[i++] ?? []) {
            const played = playEpisode(episode, unit, honest as FakeResult, worker, {
              canTarget: !targeted && (cost.get(key) ?? 0) < MAX_INVALID_RESULTS - 1,
              chunkBytes: MAX_CHUNK_BYTES,
              tasks: ['task0', 'task1'],
              strangerIds: [],
            });
            episodes++;
            certain += played.certain;
            possible += played.possible;
            if (played.targeted) {
              targeted = true;
              cost.set(key, (cost.get(key) ?? 0) + 1);
            }
          }
          await flush();
          if (!targeted) sent.push(honest as FakeResult);
          return !targeted;
        });
        assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
        assert.ok(weights(out).equals(reference), 'the final weights differ from the undisturbed run');
        assert.deepEqual(summary.tasks, referenceTasks);
        assert.equal(summary.faults.sessionsClosedForErrors, 0);
        assert.ok(summary.rejectedMessages >= certain && summary.rejectedMessages <= certain + possible, `${summary.rejectedMessages} rejected, expected ${certain}..${certain + possible}`);
        rejected += summary.rejectedMessages;
      }),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} runs over gRPC, ${episodes} episodes, ${rejected} messages rejected`);
  });

  void it('random bytes on raw TCP and random messages on Connect streams: the coordinator serves a real worker to the expected weights', async (t) => {
    const out = tempDir('mtl-fuzz-tcp-');
    const c = coordinator(out, { minWorkers: 1, sessionLimits: { helloTimeoutMs: 2000 } });
    const address = await c.listen();
    const port = Number(address.slice(address.lastIndexOf(':') + 1));

    const frameArb = fc.record({
      type: fc.integer({ min: 0, max: 12 }),
      flags: fc.integer({ min: 0, max: 255 }),
      stream: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      payload: fc.uint8Array({ maxLength: 64 }),
      length: fc.option(fc.integer({ min: 0, max: 2 ** 24 - 1 }), { nil: undefined }),
    });
    const connectionArb = fc.record({
      preface: fc.constantFrom('none', 'http2', 'http1'),
      frames: fc.array(frameArb, { maxLength: 6 }),
      junk: fc.uint8Array({ maxLength: 200 }),
    });
    const tcpRuns = fuzzRuns(150);
    const sendRaw = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        const done = () => {
          clearTimeout(timer);
          socket.destroy();
          resolve();
        };
        const timer = setTimeout(done, 30);
        socket.on('error', done).on('close', done);
        socket.on('connect', () => socket.write(bytes));
      });
    const tcpFlood = fc.assert(
      fc.asyncProperty(connectionArb, async ({ preface, frames, junk }) => {
        const parts: Buffer[] = [];
        if (preface === 'http2') parts.push(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
        if (preface === 'http1') parts.push(Buffer.from('POST /mtl.v1.Coordinator/Connect HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc\r\n\r\n'));
        for (const f of frames) {
          const header = Buffer.alloc(9);
          header.writeUIntBE(f.length ?? f.payload.length, 0, 3);
          header.writeUInt8(f.type, 3);
          header.writeUInt8(f.flags, 4);
          header.writeUInt32BE(f.stream, 5);
          parts.push(header, Buffer.from(f.payload));
        }
        parts.push(Buffer.from(junk));
        await sendRaw(Buffer.concat(parts));
      }),
      fuzzParams(tcpRuns),
    );

    // Whole gRPC messages of random or mutated bytes on Connect streams (identity serializers).
    const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const hello = encodeWorkerMessage({ hello: { name: 'raw', protocolVersion: PROTOCOL_VERSION, backend: 'cpu' } });
    const messageArb = fc.oneof(
      fc.uint8Array({ maxLength: 120 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([at, v]) => {
        const b = Buffer.from(hello);
        b[at % b.length] = v;
        return b;
      }),
      fc.constant(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0x0a)), // above the message size limit
    );
    const streamRuns = fuzzRuns(60);
    const statuses = new Map<number, number>();
    const streamFlood = fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(messageArb, { minLength: 1, maxLength: 4 }), async (withHello, messages) => {
        const call = client.makeBidiStreamRequest<Buffer, Buffer>('/mtl.v1.Coordinator/Connect', (b) => b, (b) => b);
        const ended = new Promise<void>((resolve) => {
          call.on('status', (s: grpc.StatusObject) => {
            statuses.set(s.code, (statuses.get(s.code) ?? 0) + 1);
            resolve();
          });
        });
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        if (withHello) call.write(hello);
        for (const m of messages) call.write(m);
        call.end();
        // A session that joined is closed on our end of stream; others on their error.
        await Promise.race([ended, new Promise((r) => setTimeout(r, 200))]);
        call.cancel();
        await ended;
      }),
      fuzzParams(streamRuns),
    );

    const started = performance.now();
    await new Promise((r) => setTimeout(r, 100));
    const real = startCli(['worker', '--coordinator', address, '--backend', 'cpu']);
    const [summary] = await Promise.all([c.runToCompletion(), tcpFlood, streamFlood]);
    const r = await real.result;
    client.close();
    await c.close();
    t.diagnostic(`${tcpRuns} raw TCP connections and ${streamRuns} raw Connect streams in ${((performance.now() - started) / 1000).toFixed(1)} s; stream statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.error));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(weights(out).equals(reference), 'the final weights differ from the undisturbed run');
    assert.ok(statuses.get(grpc.status.RESOURCE_EXHAUSTED), 'the oversized message was refused');
  });
});
