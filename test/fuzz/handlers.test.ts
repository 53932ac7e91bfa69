// Fuzzing the coordinator's message handlers one by one, many thousand cases a second:
// - checkResultHeader against an oracle written from the protocol's rules: a header passes
//   exactly when every checked field is right, and anything else is a rejection error;
// - a WorkerSession fed honest transfers with garbage interleaved (through the real Connect
//   serializer): every payload it completes is exactly an honest one, and every honest
//   transfer that nothing interrupted completes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { UnitKind } from '../../proto/generated/mtl/v1/UnitKind.js';
import type { UnitResult__Output } from '../../proto/generated/mtl/v1/UnitResult.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { isRejectedMessage, UnknownUnitError } from '../../common/errors.js';
import { validateJob } from '../../common/job-spec.js';
import { silentLogger } from '../../common/logging.js';
import { PROTOCOL_VERSION } from '../../common/protocol.js';
import { AssignmentIds, checkResultHeader, newUnit, Phase, WIRE_KIND, type PendingUnit } from '../../coordinator/units.js';
import { WorkerSession, type ResultSink, type SessionHandler } from '../../coordinator/worker-session.js';
import { FakeCall } from '../helpers/fake-call.js';
import { fuzzJob } from '../helpers/in-memory-run.js';
import { fuzzParams, fuzzRuns } from './episodes.js';

const job = validateJob(fuzzJob(), 'fuzz');

/** A train phase and an eval phase with units in every state a result can meet. */
function phases() {
  const ids = new AssignmentIds();
  const train = [newUnit('train', 'task0', 0, 2, 8, 196), newUnit('train', 'task0', 1, 2, 8, 196), newUnit('train', 'task1', 0, 2, 8, 196)];
  const trainPhase = new Phase('train', 5, 5, train, () => undefined, () => undefined, ids);
  trainPhase.assign(train[0]!, 'w1', 0);
  trainPhase.assign(train[1]!, 'w2', 0);
  const done = trainPhase.assign(train[2]!, 'w1', 0);
  trainPhase.assign(train[2]!, 'w2', 0, { backup: true });
  train[2]!.train = { sampleCount: 8, loss: 1, grads: new Float32Array(49) };
  trainPhase.complete(train[2]!, done);
  const evals = [newUnit('eval', 'task0', 0, 1, 60, 0), newUnit('eval', 'task1', 0, 1, 60, 0)];
  const evalPhase = new Phase('eval', 6, 6, evals, () => undefined, () => undefined, ids);
  evalPhase.assign(evals[0]!, 'w1', 0);
  const withdrawn = evalPhase.assign(evals[1]!, 'w1', 0);
  withdrawn.active = false;
  return [trainPhase, evalPhase];
}

const KINDS: UnitKind[] = ['UNIT_KIND_UNSPECIFIED', 'UNIT_KIND_TRAIN', 'UNIT_KIND_EVAL', 'UNIT_KIND_FISHER'];
const anyNumber = fc.oneof(fc.nat({ max: 10 }), fc.nat(), fc.constantFrom(0xffffffff, 2 ** 40, 2 ** 53));
const anyDouble = fc.oneof(fc.double({ noNaN: true, min: -1e6, max: 1e6 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE));
/** The right value most of the time, anything else now and then. */
const mostly = <T>(right: T, other: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ weight: 6, arbitrary: fc.constant(right) }, { weight: 1, arbitrary: other });

void describe('fuzz: message handlers one by one', () => {
  void it('checkResultHeader accepts exactly the headers the protocol allows, and rejects the rest with a rejection error', (t) => {
    const runs = fuzzRuns(5000);
    const all = phases();
    const entries = all.flatMap((phase) => phase.ids().map(([id]) => ({ phase, id, ...phase.lookup(id)! })));
    let accepted = 0;
    let late = 0;
    fc.assert(
      fc.property(
        fc.nat({ max: entries.length - 1 }).chain((k) => {
          const { phase, id, unit, assignment } = entries[k]!;
          const metricsRight = Object.fromEntries(job.tasks[unit.task]!.metrics.map((m) => [m, 0.5]));
          return fc.record({
            k: fc.constant(k),
            phaseIndex: mostly(all.indexOf(phase), fc.constantFrom(0, 1, -1)),
            worker: mostly(assignment.worker, fc.constantFrom('w1', 'w2', 'w3', '')),
            header: fc.record({
              unitId: mostly(id, fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom(...entries.map((e) => e.id)))),
              kind: mostly(WIRE_KIND[unit.kind], fc.constantFrom(...KINDS)),
              step: mostly(phase.step, anyNumber),
              weightsVersion: mostly(phase.version, anyNumber),
              task: mostly(unit.task, fc.constantFrom('task0', 'task1', '', 'task2')),
              shard: mostly(unit.shard, anyNumber),
              sampleCount: mostly(unit.expectedSamples, anyNumber),
              byteLength: mostly(unit.expectedBytes, anyNumber),
              loss: mostly(0.75, anyDouble),
              metrics: mostly(metricsRight, fc.dictionary(fc.constantFrom('mse', 'mae', 'accuracy'), anyDouble, { maxKeys: 3 })),
              transferId: fc.nat(),
              computeMs: anyDouble,
            }),
          });
        }),
        ({ phaseIndex, worker, header }) => {
          const phase = phaseIndex < 0 ? undefined : all[phaseIndex];
          const h = header as UnitResult__Output;
          const found = phase?.lookup(h.unitId);
          const unit: PendingUnit | undefined = found?.unit;
          const structural =
            found !== undefined &&
            unit !== undefined &&
            found.assignment.worker === worker &&
            h.kind === WIRE_KIND[unit.kind] &&
            h.step === phase!.step &&
            h.weightsVersion === phase!.version &&
            h.task === unit.task &&
            h.shard === unit.shard &&
            h.sampleCount === unit.expectedSamples &&
            h.byteLength === unit.expectedBytes;
          const isLate = structural && (unit.train !== undefined || unit.eval !== undefined || !found.assignment.active);
          const values = Number.isFinite(h.loss) && (unit?.kind !== 'eval' || job.tasks[unit.task]!.metrics.every((m) => Number.isFinite(h.metrics[m])));
          const valid = structural && (isLate || values);
          let result: ReturnType<typeof checkResultHeader> | undefined;
          try {
            result = checkResultHeader(phase, worker, h, job);
          } catch (err) {
            assert.ok(isRejectedMessage(err), `not a rejection: ${String(err)}`);
            assert.ok(!valid, `a valid header was rejected: ${(err as Error).message}`);
            return;
          }
          assert.ok(valid, 'an invalid header was accepted');
          assert.equal(result.unit, unit);
          assert.equal(result.late, isLate);
          accepted++;
          if (isLate) late++;
        },
      ),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} headers, ${accepted} accepted (${late} as late copies)`);
    assert.ok(accepted > runs / 20 && accepted < runs, 'both outcomes are exercised');
  });

  void it('a WorkerSession completes exactly the honest transfers, with their bytes, whatever garbage comes between', (t) => {
    const runs = fuzzRuns(2500);
    const CHUNK = 64;
    const sizes = new Map([
      ['unit-known-a', 40],
      ['unit-known-b', 7],
      ['unit-known-c', 1],
    ]);
    const pattern = (transferId: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (transferId * 131 + i * 7 + 3) & 0xff);
    const honestArb = fc.record({
      unitId: fc.constantFrom(...sizes.keys()),
      transferId: fc.integer({ min: 1, max: 999 }),
      // Whole values, down to one: within the chunk-count budget of the largest payload (maxChunksFor).
      chunk: fc.integer({ min: 1, max: CHUNK / 4 }).map((n) => 4 * n),
      /** The chunks' order: as written, last first (buckets as the backward makes them), or shuffled by this seed. */
      order: fc.oneof(fc.constant('ascending' as const), fc.constant('descending' as const), fc.nat()),
      /** Garbage inserted before the chunk at this index (none: the transfer is uninterrupted). */
      interrupt: fc.option(fc.nat(), { nil: undefined }),
    });
    const garbageArb: fc.Arbitrary<WorkerMessage | Uint8Array> = fc.oneof(
      fc.record({ chunk: fc.record({ transferId: fc.integer({ min: 1_000_000, max: 0xffffffff }), offset: fc.oneof(fc.nat({ max: 200 }), fc.constant(2 ** 53)), data: fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.from(a)) }) }),
      fc.record({ unitResult: fc.record({ unitId: fc.string({ maxLength: 10 }), byteLength: fc.nat({ max: 400 }), transferId: fc.nat() }) }),
      fc.record({ unitResult: fc.record({ unitId: fc.constantFrom(...sizes.keys()), byteLength: fc.constantFrom(0, 3, 8, 2 ** 40), transferId: fc.nat() }) }),
      fc.constant({ heartbeat: { sentAtMs: 5 } }),
      fc.record({ resultEnd: fc.record({ transferId: fc.nat(), computeMs: fc.double(), busyMs: fc.double() }) }),
      fc.constant({}),
      fc.uint8Array({ maxLength: 60 }),
    );
    let completed = 0;
    let messages = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(honestArb, fc.array(garbageArb, { maxLength: 3 })), { maxLength: 12 }), (plan) => {
        const got: Array<{ header: UnitResult__Output; payload: Float32Array | null }> = [];
        const handler: SessionHandler = {
          onHello: () => undefined,
          beginResult: (_s, header) => {
            const floats = sizes.get(header.unitId);
            if (floats === undefined || header.byteLength !== floats * 4) throw new UnknownUnitError(`unit ${header.unitId} is not outstanding`);
            return { payload: new Float32Array(floats), discard: false } satisfies ResultSink;
          },
          completeResult: (_s, header, sink) => void got.push({ header, payload: sink.payload }),
          onUnitFailed: () => undefined,
          onGoodbye: () => undefined,
          onRejected: () => undefined,
          onClosed: () => undefined,
        };
        const call = new FakeCall();
        const session = new WorkerSession('w1', 'fake:1', call.asCall, handler, silentLogger, { maxChunkBytes: CHUNK, maxRejections: 1e9 });
        const deliver = (m: WorkerMessage | Uint8Array) => {
          messages++;
          if (m instanceof Uint8Array) call.deliverBytes(m);
          else call.deliver(m);
        };
        deliver({ hello: { name: 'w', protocolVersion: PROTOCOL_VERSION } });
        const expected: number[] = [];
        for (const [honest, garbage] of plan) {
          for (const g of garbage) deliver(g);
          const bytes = pattern(honest.transferId, sizes.get(honest.unitId)! * 4);
          deliver({ unitResult: { unitId: honest.unitId, byteLength: bytes.byteLength, transferId: honest.transferId } });
          const count = Math.ceil(bytes.byteLength / honest.chunk);
          const cut = honest.interrupt === undefined ? -1 : honest.interrupt % count;
          const offsets = Array.from({ length: count }, (_, k) => k * honest.chunk);
          if (honest.order === 'descending') offsets.reverse();
          else if (typeof honest.order === 'number') {
            for (let i = offsets.length - 1, r = honest.order; i > 0; i--, r = (r * 1103515245 + 12345) % 2 ** 31) {
              const j = r % (i + 1);
              [offsets[i], offsets[j]] = [offsets[j]!, offsets[i]!];
            }
          }
          offsets.forEach((offset, k) => {
            // An interruption: a chunk of another transfer. The open one is dropped, its remaining chunks and ResultEnd quietly.
            if (k === cut) deliver({ chunk: { transferId: 4_000_000_000, offset, data: Buffer.alloc(4) } });
            deliver({ chunk: { transferId: honest.transferId, offset, data: Buffer.from(bytes.subarray(offset, offset + honest.chunk)) } });
          });
          deliver({ resultEnd: { transferId: honest.transferId, computeMs: 1, busyMs: 1 } });
          if (cut < 0) expected.push(honest.transferId);
        }
        assert.equal(session.state, 'ready');
        for (const r of got) {
          const payload = new Uint8Array(r.payload!.buffer);
          assert.deepEqual(payload, pattern(r.header.transferId, payload.byteLength), 'a completed payload is not the honest bytes');
        }
        // Every uninterrupted honest transfer completed (garbage between transfers never leaves one open).
        assert.deepEqual(got.map((r) => r.header.transferId), expected);
        completed += got.length;
      }),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} sessions, ${messages} messages, ${completed} honest transfers completed`);
  });
});
