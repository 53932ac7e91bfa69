// Coordinator checkpoints: everything the step loop needs to continue exactly where it was
// (parameters, optimizer and aggregator state, step, weights version, counters). There is no
// random generator state to save: every random draw of a run is a pure function of the job's
// seed and a key (step, task, shard, ...), so the seed in the job is the RNG state.
//
// File format (one file per checkpoint, `ckpt-<step>.mtlckpt`):
//   "MTLCKPT1" | u32 LE header length | header JSON | f32 sections | SHA-256 of all before it
// Written to a temporary file, fsynced, renamed, and the directory fsynced: a crash leaves
// either the old set of files or the new one. A torn or corrupted file fails its checksum and
// the previous checkpoint is used instead.
import type { AffinityState } from './task-affinity.js';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { OptimizerState } from '../common/optimizers.js';

const MAGIC = Buffer.from('MTLCKPT1', 'ascii');
const FORMAT = 1;
const DIGEST_BYTES = 32;

export interface FaultCounters {
  /** Workers declared dead or whose connection broke while they were members. */
  deaths: number;
  /** Workers that left on purpose (Goodbye). */
  departures: number;
  /** Units given to another worker after theirs died, left or sent an invalid result. */
  reassignedUnits: number;
  /** Backup copies of slow units. */
  backupUnits: number;
  /** Results that arrived after their unit was already done (backups, late workers). */
  discardedResults: number;
  /** Times this run was resumed from a checkpoint. */
  resumes: number;
  /** Connections refused for a missing or wrong join token (Hello or GetStatus). */
  authFailures: number;
  /** TLS handshakes that failed at the gRPC port: no client certificate, one from another CA, plaintext, or a client that refused ours. */
  tlsFailures: number;
  /** Messages from workers rejected by validation (logged, never applied). */
  rejectedMessages: number;
  /** Connections refused because the coordinator already had its maximum of sessions. */
  sessionsRefused: number;
  /** Sessions closed for too many rejected messages in a short time. */
  sessionsClosedForErrors: number;
  /** Results with non-finite values dropped (and their units reassigned) under `training.nonFinite: skip-unit`. */
  skippedUnits: number;
  /** Steps whose update was not applied because a result was not finite (`training.nonFinite: skip-step`). */
  skippedSteps: number;
}

export function zeroCounters(): FaultCounters {
  return {
    deaths: 0,
    departures: 0,
    reassignedUnits: 0,
    backupUnits: 0,
    discardedResults: 0,
    resumes: 0,
    authFailures: 0,
    tlsFailures: 0,
    rejectedMessages: 0,
    sessionsRefused: 0,
    sessionsClosedForErrors: 0,
    skippedUnits: 0,
    skippedSteps: 0,
  };
}

export interface CheckpointData {
  runId: string;
  /** Hash of the resolved job spec: a checkpoint only resumes the job that wrote it. */
  jobHash: string;
  /** Directory of the original job file (relative data paths resolve against it). */
  jobDir: string;
  /** Steps completed. */
  step: number;
  /** Weights version after `step` steps. */
  version: number;
  params: Float32Array;
  optimizer: OptimizerState;
  /** The aggregator's JSON state. */
  aggregator: unknown;
  /** Training examples and training time so far (for samples/s across resumes). */
  samples: number;
  trainMs: number;
  counters: FaultCounters;
  /** Running sums of the task-affinity diagnostics (absent in checkpoints of older versions). */
  affinity?: AffinityState;
  /** Sequential mode: stage progress (JSON) and the forgetting penalties' arrays. */
  extras?: CheckpointExtras;
  /** Workers the run waited for before training: a resume waits for as many unless told otherwise. */
  minWorkers?: number;
  /** Wall-clock time of the run up to this checkpoint, over all its segments (so that a resumed run's wallTimeS covers them all). */
  wallMs?: number;
  createdAt: string;
}

export interface CheckpointExtras {
  json: unknown;
  arrays: Record<string, Float32Array>;
}

interface Header {
  format: number;
  runId: string;
  jobHash: string;
  jobDir: string;
  step: number;
  version: number;
  optimizer: { name: string; t: number; slots: string[] };
  aggregator: unknown;
  samples: number;
  trainMs: number;
  counters: FaultCounters;
  affinity?: AffinityState;
  extras?: { json: unknown; arrays: string[] };
  minWorkers?: number;
  wallMs?: number;
  createdAt: string;
  /** Float32 sections in payload order: params, the optimizer slots, then the extra arrays. */
  sections: Array<{ name: string; length: number }>;
}

export class CorruptCheckpointError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'CorruptCheckpointError';
  }
}

export function encodeCheckpoint(data: CheckpointData): Buffer {
  const slotNames = Object.keys(data.optimizer.slots).sort();
  const extraNames = Object.keys(data.extras?.arrays ?? {}).sort();
  const arrays = [data.params, ...slotNames.map((n) => data.optimizer.slots[n]!), ...extraNames.map((n) => data.extras!.arrays[n]!)];
  const header: Header = {
    format: FORMAT,
    runId: data.runId,
    jobHash: data.jobHash,
    jobDir: data.jobDir,
    step: data.step,
    version: data.version,
    optimizer: { name: data.optimizer.name, t: data.optimizer.t, slots: slotNames },
    aggregator: data.aggregator,
    samples: data.samples,
    trainMs: data.trainMs,
    counters: data.counters,
    ...(data.affinity ? { affinity: data.affinity } : {}),
    ...(data.extras ? { extras: { json: data.extras.json, arrays: extraNames } } : {}),
    ...(data.minWorkers !== undefined ? { minWorkers: data.minWorkers } : {}),
    ...(data.wallMs !== undefined ? { wallMs: data.wallMs } : {}),
    createdAt: data.createdAt,
    sections: [
      { name: 'params', length: data.params.length },
      ...slotNames.map((n) => ({ name: `optimizer.${n}`, length: data.optimizer.slots[n]!.length })),
      ...extraNames.map((n) => ({ name: `extra.${n}`, length: data.extras!.arrays[n]!.length })),
    ],
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(headerBytes.byteLength);
  const parts = [MAGIC, length, headerBytes, ...arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))];
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return Buffer.concat([...parts, hash.digest()]);
}

export function decodeCheckpoint(bytes: Buffer, file = 'checkpoint'): CheckpointData {
  if (bytes.byteLength < MAGIC.byteLength + 4 + DIGEST_BYTES || !bytes.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    throw new CorruptCheckpointError(file, 'not a checkpoint file (bad magic or too short)');
  }
  const body = bytes.subarray(0, bytes.byteLength - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.byteLength - DIGEST_BYTES))) throw new CorruptCheckpointError(file, 'checksum mismatch (torn or corrupted file)');
  const headerLength = body.readUInt32LE(MAGIC.byteLength);
  const headerStart = MAGIC.byteLength + 4;
  let header: Header;
  try {
    header = JSON.parse(body.subarray(headerStart, headerStart + headerLength).toString('utf8')) as Header;
  } catch {
    throw new CorruptCheckpointError(file, 'unreadable header');
  }
  if (header.format !== FORMAT) throw new CorruptCheckpointError(file, `format ${header.format}, expected ${FORMAT}`);
  let offset = headerStart + headerLength;
  const arrays: Float32Array[] = [];
  for (const section of header.sections) {
    const bytesLength = section.length * 4;
    if (offset + bytesLength > body.byteLength) throw new CorruptCheckpointError(file, `section ${section.name} runs past the end`);
    const copy = new Float32Array(section.length);
    new Uint8Array(copy.buffer).set(body.subarray(offset, offset + bytesLength));
    arrays.push(copy);
    offset += bytesLength;
  }
  if (offset !== body.byteLength) throw new CorruptCheckpointError(file, 'trailing bytes after the last section');
  const slotCount = header.optimizer.slots.length;
  if (arrays.length !== 1 + slotCount + (header.extras?.arrays.length ?? 0)) throw new CorruptCheckpointError(file, 'section count does not match the header');
  const [params, ...rest] = arrays;
  const slots = rest.slice(0, slotCount);
  const extraArrays = rest.slice(slotCount);
  return {
    runId: header.runId,
    jobHash: header.jobHash,
    jobDir: header.jobDir,
    step: header.step,
    version: header.version,
    params: params!,
    optimizer: { name: header.optimizer.name, t: header.optimizer.t, slots: Object.fromEntries(header.optimizer.slots.map((n, i) => [n, slots[i]!])) },
    aggregator: header.aggregator,
    samples: header.samples,
    trainMs: header.trainMs,
    counters: header.counters,
    ...(header.affinity ? { affinity: header.affinity } : {}),
    ...(header.extras ? { extras: { json: header.extras.json, arrays: Object.fromEntries(header.extras.arrays.map((n, i) => [n, extraArrays[i]!])) } } : {}),
    // Absent in checkpoints of older versions.
    ...(typeof header.minWorkers === 'number' ? { minWorkers: header.minWorkers } : {}),
    ...(typeof header.wallMs === 'number' ? { wallMs: header.wallMs } : {}),
    createdAt: header.createdAt,
  };
}

/** Where checkpoints live. The file system store here; a NATS object store implements the same interface. */
export interface CheckpointStore {
  save(data: CheckpointData): Promise<void>;
  /** The newest checkpoint that reads back intact; damaged ones are reported to `onSkipped` and passed over. */
  loadLatest(onSkipped?: (file: string, reason: string) => void): Promise<CheckpointData | undefined>;
}

const FILE = /^ckpt-(\d+)\.mtlckpt$/;

export class FileCheckpointStore implements CheckpointStore {
  constructor(
    readonly dir: string,
    private readonly keep = 3,
  ) {}

  /** The checkpoint files in the directory, newest first. */
  files(): Array<{ file: string; step: number }> {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .map((name) => ({ name, m: FILE.exec(name) }))
      .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
      .map((e) => ({ file: path.join(this.dir, e.name), step: Number(e.m[1]) }))
      .sort((a, b) => b.step - a.step);
  }

  save(data: CheckpointData): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(path.join(this.dir, `ckpt-${String(data.step).padStart(9, '0')}.mtlckpt`), encodeCheckpoint(data));
    // The rename is durable only once the directory entry is.
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    for (const old of this.files().slice(this.keep)) rmSync(old.file, { force: true });
    return Promise.resolve();
  }

  loadLatest(onSkipped?: (file: string, reason: string) => void): Promise<CheckpointData | undefined> {
    for (const { file } of this.files()) {
      try {
        return Promise.resolve(decodeCheckpoint(readFileSync(file), file));
      } catch (err) {
        onSkipped?.(file, err instanceof Error ? err.message : String(err));
      }
    }
    return Promise.resolve(undefined);
  }
}

/** Hash of a resolved job (canonical JSON: sorted keys). */
export function jobHash(job: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canonical) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, x]) => [k, canonical(x)])) : v;
  return createHash('sha256').update(JSON.stringify(canonical(job))).digest('hex');
}
