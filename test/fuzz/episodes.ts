// Hostile "episodes" for the fuzz suites: fast-check generates their shape, and each is played
// against the unit a worker is about to answer. Every episode is bad by construction (no
// mutation can turn it into a valid result with other numbers, which would be gradient
// poisoning, outside what the coordinator can detect), and says how many rejections it must
// cause, so the suites can check the counters as well as the weights.
import fc from 'fast-check';
import type { Unit__Output } from '../../proto/generated/mtl/v1/Unit.js';
import type { UnitKind } from '../../proto/generated/mtl/v1/UnitKind.js';
import type { WorkerMessage } from '../../proto/generated/mtl/v1/WorkerMessage.js';
import { chunkViews, float32Bytes, PROTOCOL_VERSION } from '../../common/protocol.js';
import { maxChunksFor } from '../../common/transfer-assembler.js';
import { encodeWorkerMessage } from '../helpers/fake-call.js';
import type { FakeResult } from '../helpers/in-memory-run.js';

/** Cases the fuzz suites run by default, all properties together (the sum of their `base`s). */
export const DEFAULT_FUZZ_CASES = 9335;

/**
 * How many cases a property runs: `base` by default; with `MTL_FUZZ_RUNS=N` (npm run fuzz)
 * every property is scaled so that all of them together run about N cases.
 */
export function fuzzRuns(base: number): number {
  const total = Number(process.env.MTL_FUZZ_RUNS ?? '');
  return Number.isFinite(total) && total > 0 ? Math.max(1, Math.round((base * total) / DEFAULT_FUZZ_CASES)) : base;
}

/** fast-check parameters shared by the suites: a new seed every run (a failure prints it), or MTL_FUZZ_SEED to replay one. */
export function fuzzParams(numRuns: number): fc.Parameters<unknown> {
  const seed = process.env.MTL_FUZZ_SEED;
  return { numRuns, ...(seed ? { seed: Number(seed) } : {}), endOnFailure: true };
}

export type HeaderField = 'kind' | 'step' | 'weightsVersion' | 'task' | 'shard' | 'sampleCount' | 'byteLength' | 'loss' | 'metric';
export type ChunkViolation = 'transfer' | 'gap' | 'misaligned' | 'overlap' | 'oversize' | 'empty' | 'overrun' | 'non-finite' | 'too-many';

export type Episode =
  /** The unit's own header with one field wrong; optionally followed by its payload (dropped quietly). */
  | { t: 'bad-header'; field: HeaderField; pick: number; withPayload: boolean }
  /** A valid header, then chunks of which one breaks a rule. */
  | { t: 'bad-chunk'; violation: ChunkViolation; at: number; pick: number }
  /** A valid header, part of its payload, then a header for a unit that does not exist. */
  | { t: 'truncated'; keep: number }
  | { t: 'unknown-unit'; suffix: string; withPayload: boolean }
  | { t: 'orphan-chunk'; transferId: number; offset: number; size: number }
  /** An earlier result of this worker, sent again in full. */
  | { t: 'replay'; pick: number }
  /** A header for a unit of the other worker. */
  | { t: 'stranger'; pick: number }
  | { t: 'unit-failed'; suffix: string }
  | { t: 'hello' }
  | { t: 'heartbeat' }
  | { t: 'no-kind' }
  | { t: 'bytes'; bytes: Uint8Array }
  | { t: 'mutated'; base: 'header' | 'chunk'; ops: Array<{ op: 'set' | 'truncate' | 'insert'; at: number; value: number }> };

const HEADER_FIELDS: HeaderField[] = ['kind', 'step', 'weightsVersion', 'task', 'shard', 'sampleCount', 'byteLength', 'loss', 'metric'];
const VIOLATIONS: ChunkViolation[] = ['transfer', 'gap', 'misaligned', 'overlap', 'oversize', 'empty', 'overrun', 'non-finite', 'too-many'];

export const episodeArb: fc.Arbitrary<Episode> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('bad-header' as const), field: fc.constantFrom(...HEADER_FIELDS), pick: fc.nat(), withPayload: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('bad-chunk' as const), violation: fc.constantFrom(...VIOLATIONS), at: fc.nat(), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('truncated' as const), keep: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('unknown-unit' as const), suffix: fc.string({ maxLength: 12 }), withPayload: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('orphan-chunk' as const), transferId: fc.integer({ min: 1_000_000, max: 0xffffffff }), offset: fc.oneof(fc.nat(), fc.constant(2 ** 53)), size: fc.integer({ min: 0, max: 300 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('replay' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('stranger' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unit-failed' as const), suffix: fc.string({ maxLength: 12 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'hello' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'heartbeat' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'no-kind' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 80 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('mutated' as const),
      base: fc.constantFrom('header' as const, 'chunk' as const),
      ops: fc.array(fc.record({ op: fc.constantFrom('set' as const, 'truncate' as const, 'insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 3 }),
    }),
  },
);

/** What playing an episode did, for the counters' bounds. */
export interface Played {
  /** Rejections it must cause. */
  certain: number;
  /** Further rejections it may cause (undecodable-or-not bytes, checks that a late copy skips). */
  possible: number;
  /** It may have cost the unit one of its invalid-result attempts. */
  targeted: boolean;
  replays: number;
  nonFinite: number;
}

export interface EpisodeWorker {
  send(message: WorkerMessage): void;
  sendBytes(bytes: Uint8Array): boolean;
  sendResult(result: FakeResult): void;
  nextTransferId(): number;
  readonly sent: readonly FakeResult[];
}

const KINDS: UnitKind[] = ['UNIT_KIND_UNSPECIFIED', 'UNIT_KIND_TRAIN', 'UNIT_KIND_EVAL', 'UNIT_KIND_FISHER'];
const UNIT_ID_PREFIX = 'x'; // real ids start with s, e or f: a prefixed id never names a real unit

function chunksOf(payload: Float32Array, chunkBytes: number): Buffer[] {
  return chunkViews(float32Bytes(payload), chunkBytes).map((b) => Buffer.from(b));
}

/** A different value of a header field, never the honest one. */
function wrongHeader(honest: FakeResult, field: HeaderField, pick: number, tasks: readonly string[]): { header: FakeResult['header']; lateMayHide: boolean } {
  const h = { ...honest.header };
  const away = (v: number) => {
    const choices = [v + 1, v + 2, v + 7, 0xffffffff, v > 0 ? v - 1 : v + 3];
    return choices[pick % choices.length]!;
  };
  switch (field) {
    case 'kind':
      h.kind = KINDS.filter((k) => k !== h.kind)[pick % 3]!;
      return { header: h, lateMayHide: false };
    case 'step':
      h.step = away(h.step ?? 0);
      return { header: h, lateMayHide: false };
    case 'weightsVersion':
      h.weightsVersion = away(h.weightsVersion ?? 0);
      return { header: h, lateMayHide: false };
    case 'task': {
      const choices = [...tasks.filter((t) => t !== h.task), '', 'no-such-task', `${h.task}\u0000`];
      h.task = choices[pick % choices.length]!;
      return { header: h, lateMayHide: false };
    }
    case 'shard':
      h.shard = away(h.shard ?? 0);
      return { header: h, lateMayHide: false };
    case 'sampleCount':
      h.sampleCount = away(h.sampleCount ?? 0);
      return { header: h, lateMayHide: false };
    case 'byteLength': {
      const b = h.byteLength;
      const choices = [b + 4, b > 0 ? b - 4 : 8, b + 1, 2 ** 40, 2 ** 53, b === 0 ? 4 : 0, 2 * b + 4];
      h.byteLength = choices[pick % choices.length]!;
      return { header: h, lateMayHide: false };
    }
    case 'metric':
      if (honest.payload === null) {
        const names = Object.keys(h.metrics ?? {});
        const metrics = { ...h.metrics };
        const name = names[pick % Math.max(1, names.length)];
        if (name !== undefined && pick % 2 === 0) delete metrics[name];
        else if (name !== undefined) metrics[name] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][pick % 3]!;
        else h.loss = Number.NaN;
        h.metrics = metrics;
        return { header: h, lateMayHide: true };
      }
      h.loss = Number.NaN; // a train unit's metrics are not used: break its loss instead
      return { header: h, lateMayHide: true };
    case 'loss':
      h.loss = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][pick % 3]!;
      return { header: h, lateMayHide: true };
  }
}

function mutate(bytes: Buffer, ops: Array<{ op: 'set' | 'truncate' | 'insert'; at: number; value: number }>): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const { op, at, value } of ops) {
    const i = out.length === 0 ? 0 : at % (out.length + (op === 'insert' ? 1 : 0));
    if (op === 'set' && out.length > 0) out[i] = value;
    else if (op === 'truncate') out = out.slice(0, i);
    else if (op === 'insert') out = Uint8Array.from([...out.subarray(0, i), value, ...out.subarray(i)]);
  }
  return out;
}

/**
 * Plays `episode` for `unit` (whose honest result is `honest`) through `worker`.
 * `canTarget`: the episode may cost the unit an invalid-result attempt; if not, targeted
 * episodes are replaced by a harmless-to-the-unit one.
 */
export function playEpisode(
  episode: Episode,
  unit: Unit__Output,
  honest: FakeResult,
  worker: EpisodeWorker,
  ctx: { canTarget: boolean; chunkBytes: number; tasks: readonly string[]; strangerIds: readonly string[] },
): Played {
  const played: Played = { certain: 0, possible: 0, targeted: false, replays: 0, nonFinite: 0 };
  const unknownHeader = (suffix: string) => ({ ...honest.header, unitId: `${UNIT_ID_PREFIX}${suffix}${unit.unitId}`, transferId: worker.nextTransferId() });
  const isTargeted = episode.t === 'bad-header' || episode.t === 'bad-chunk';
  const e: Episode = isTargeted && !ctx.canTarget ? { t: 'unknown-unit', suffix: 'capped', withPayload: true } : episode;
  switch (e.t) {
    case 'bad-header': {
      const { header, lateMayHide } = wrongHeader(honest, e.field, e.pick, ctx.tasks);
      const nonFinite = e.field === 'loss' || (e.field === 'metric' && honest.payload !== null);
      worker.send({ unitResult: header });
      // A non-finite loss in an otherwise valid header is judged only if the copy is current;
      // a rejected non-finite header under the fail policy ends the run.
      if (lateMayHide) played.possible++;
      else played.certain++;
      played.targeted = true;
      if (nonFinite) played.nonFinite++;
      // A header that a late copy may pass (its loss and metrics are not judged) always brings its
      // payload, so that no transfer is left open.
      if ((e.withPayload || lateMayHide) && honest.payload && header.byteLength === honest.header.byteLength) {
        let offset = 0;
        for (const data of chunksOf(honest.payload, ctx.chunkBytes)) {
          worker.send({ chunk: { transferId: header.transferId, offset, data } });
          offset += data.byteLength;
        }
        worker.send({ resultEnd: { transferId: header.transferId, computeMs: 1, busyMs: 1 } });
        // Dropped quietly only when the header was rejected; a late copy's payload is read instead.
      }
      return played;
    }
    case 'bad-chunk': {
      if (!honest.payload) return playEpisode({ t: 'bad-header', field: 'sampleCount', pick: e.pick, withPayload: false }, unit, honest, worker, ctx);
      const header = { ...honest.header, transferId: worker.nextTransferId() };
      const tid = header.transferId;
      const chunks = chunksOf(honest.payload, ctx.chunkBytes);
      const bad = e.at % chunks.length;
      // Violations the payload is too small for become a gap (decided before anything is sent).
      const tooSmall =
        (e.violation === 'overlap' && chunks.length < 2) ||
        (e.violation === 'too-many' && honest.payload.byteLength / 4 <= maxChunksFor(honest.payload.byteLength, ctx.chunkBytes));
      if (tooSmall) return playEpisode({ ...e, violation: 'gap' }, unit, honest, worker, ctx);
      worker.send({ unitResult: header });
      played.targeted = true;
      const upTo = (k: number) => {
        let offset = 0;
        for (let i = 0; i < k; i++) {
          worker.send({ chunk: { transferId: tid, offset, data: chunks[i]! } });
          offset += chunks[i]!.byteLength;
        }
        return offset;
      };
      switch (e.violation) {
        case 'transfer': {
          const offset = upTo(bad);
          worker.send({ chunk: { transferId: tid + 1 + (e.pick % 1000), offset, data: chunks[bad]! } });
          break;
        }
        case 'gap': {
          // Chunks may come in any order, but the result ends only when every byte is in: one
          // chunk left out, the ResultEnd is rejected.
          let offset = upTo(bad) + chunks[bad]!.byteLength;
          for (let i = bad + 1; i < chunks.length; i++) {
            worker.send({ chunk: { transferId: tid, offset, data: chunks[i]! } });
            offset += chunks[i]!.byteLength;
          }
          worker.send({ resultEnd: { transferId: tid, computeMs: 1, busyMs: 1 } });
          break;
        }
        case 'misaligned': {
          const offset = upTo(bad);
          worker.send({ chunk: { transferId: tid, offset: offset + 1 + (e.pick % 3), data: chunks[bad]! } });
          break;
        }
        case 'overlap': {
          const k = Math.max(1, bad);
          const offset = upTo(k);
          worker.send({ chunk: { transferId: tid, offset: offset - 4 * (1 + (e.pick % 4)), data: chunks[k]! } });
          break;
        }
        case 'oversize': {
          const offset = upTo(bad);
          worker.send({ chunk: { transferId: tid, offset, data: Buffer.alloc(ctx.chunkBytes + 1 + (e.pick % 64), 7) } });
          break;
        }
        case 'empty': {
          const offset = upTo(bad);
          worker.send({ chunk: { transferId: tid, offset, data: Buffer.alloc(0) } });
          break;
        }
        case 'overrun': {
          const offset = upTo(chunks.length - 1);
          const last = chunks[chunks.length - 1]!;
          worker.send({ chunk: { transferId: tid, offset, data: Buffer.concat([last, Buffer.alloc(4 * (1 + (e.pick % 4)))]) } });
          break;
        }
        case 'non-finite': {
          const poisoned = honest.payload.slice();
          poisoned[e.pick % poisoned.length] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY][e.at % 3]!;
          const bad = chunksOf(poisoned, ctx.chunkBytes);
          let offset = 0;
          for (const data of bad) {
            worker.send({ chunk: { transferId: tid, offset, data } });
            offset += data.byteLength;
          }
          worker.send({ resultEnd: { transferId: tid, computeMs: 1, busyMs: 1 } });
          played.nonFinite++;
          // Judged only if this copy is still current (a late copy is read and dropped).
          played.possible++;
          return played;
        }
        case 'too-many': {
          const bytes = float32Bytes(honest.payload);
          // One value per chunk: rejected at the first chunk past the budget; the rest of the stream is dropped quietly.
          for (let offset = 0; offset < bytes.byteLength; offset += 4) worker.send({ chunk: { transferId: tid, offset, data: bytes.subarray(offset, offset + 4) } });
          break;
        }
      }
      played.certain++;
      return played;
    }
    case 'truncated': {
      if (!honest.payload) return playEpisode({ t: 'unknown-unit', suffix: 'trunc', withPayload: false }, unit, honest, worker, ctx);
      const header = { ...honest.header, transferId: worker.nextTransferId() };
      const chunks = chunksOf(honest.payload, ctx.chunkBytes);
      worker.send({ unitResult: header });
      let offset = 0;
      for (const data of chunks.slice(0, e.keep % chunks.length)) {
        worker.send({ chunk: { transferId: header.transferId, offset, data } });
        offset += data.byteLength;
      }
      // The next header finds the transfer incomplete: both are dropped, the unit keeps its copy.
      worker.send({ unitResult: unknownHeader('t') });
      played.certain++;
      return played;
    }
    case 'unknown-unit': {
      const header = unknownHeader(e.suffix);
      worker.send({ unitResult: header });
      if (e.withPayload && honest.payload) {
        let offset = 0;
        for (const data of chunksOf(honest.payload, ctx.chunkBytes)) {
          worker.send({ chunk: { transferId: header.transferId, offset, data } });
          offset += data.byteLength;
        }
        worker.send({ resultEnd: { transferId: header.transferId, computeMs: 1, busyMs: 1 } });
      }
      played.certain++;
      return played;
    }
    case 'orphan-chunk':
      worker.send({ chunk: { transferId: e.transferId, offset: e.offset, data: Buffer.alloc(e.size, 9) } });
      played.certain++;
      return played;
    case 'replay': {
      const earlier = worker.sent[e.pick % Math.max(1, worker.sent.length)];
      if (!earlier) return played;
      worker.sendResult(earlier);
      played.replays++;
      return played;
    }
    case 'stranger': {
      const id = ctx.strangerIds[e.pick % Math.max(1, ctx.strangerIds.length)];
      if (id === undefined) return played;
      worker.send({ unitResult: { ...honest.header, unitId: id, transferId: worker.nextTransferId() } });
      played.certain++;
      return played;
    }
    case 'unit-failed':
      worker.send({ unitFailed: { unitId: `${UNIT_ID_PREFIX}${e.suffix}`, code: 'FUZZ', message: 'not really' } });
      played.certain++;
      return played;
    case 'hello':
      worker.send({ hello: { name: 'again', protocolVersion: PROTOCOL_VERSION } });
      played.certain++;
      return played;
    case 'heartbeat':
      worker.send({ heartbeat: { sentAtMs: 1 } });
      return played;
    case 'no-kind':
      worker.send({});
      played.certain++;
      return played;
    case 'bytes':
      if (worker.sendBytes(e.bytes)) played.possible++;
      return played;
    case 'mutated': {
      const base: WorkerMessage =
        e.base === 'header'
          ? { unitResult: unknownHeader('m') }
          : { chunk: { transferId: 1_000_000 + worker.nextTransferId(), offset: 0, data: Buffer.from(float32Bytes(honest.payload ?? new Float32Array(4))) } };
      if (worker.sendBytes(mutate(encodeWorkerMessage(base), e.ops))) played.possible++;
      return played;
    }
  }
}
