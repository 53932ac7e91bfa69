// The run registry: one KV entry per run, keyed by run id. Every change is a compare-and-set
// on the entry's revision, so concurrent writers (a coordinator renewing its lease, `mtl
// cancel`, a second coordinator trying to take the run over) never overwrite each other
// blindly. The lease is part of the entry: only the coordinator named in it, before it
// expires, may run the job.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { ControlPlaneError, LeaseHeldError, RunNotFoundError, errorMessage } from '../errors.js';
import { checkId, type ControlPlane } from './plane.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatusName = (typeof RUN_STATUSES)[number];
export const TERMINAL: ReadonlySet<RunStatusName> = new Set(['succeeded', 'failed', 'cancelled']);

export interface RunLease {
  /** Who holds it: `host/pid/random`. */
  owner: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export interface RunRecord {
  runId: string;
  name: string;
  status: RunStatusName;
  /** Worker pool this run takes workers from (`mtl worker --pool`). */
  pool: string;
  /** The sweep point this run is, as path → value. */
  sweep?: Record<string, unknown>;
  submittedAt?: string;
  startedAt?: string;
  finishedAt?: string;
  updatedAt: string;
  /** gRPC address workers connect to, while running. */
  coordinator?: string;
  lease?: RunLease;
  step: number;
  totalSteps: number;
  /** Workers taking units, and how many the coordinator waits for before it starts. */
  workers: number;
  wantWorkers?: number;
  /** Latest training loss per task. */
  losses?: Record<string, number>;
  /** Latest held-out metrics per task (final ones once succeeded). */
  evaluation?: Record<string, Record<string, number>>;
  lastCheckpoint?: number;
  /** Times a coordinator started this run (1 + resumptions and retries). */
  attempts: number;
  /** Why it failed, or why the last attempt failed. */
  error?: string;
  cancelRequested?: boolean;
  /** Run directory on the coordinator that ran it last. */
  outDir?: string;
  /** Sequence of its message in MTL_JOBS while queued (to delete it on cancel). */
  queueSeq?: number;
  /** Events and metrics the coordinator dropped during a NATS outage. */
  droppedEvents?: number;
}

export function newOwnerId(): string {
  return `${os.hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

const now = () => new Date().toISOString();

/** Thrown by a mutation to leave the entry unchanged and report why. */
export class AbortMutation extends Error {}

export class RunRegistry {
  private constructor(private readonly kv: KV) {}

  static async open(plane: ControlPlane): Promise<RunRegistry> {
    return new RunRegistry(await plane.registryKv());
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    return (await this.entry(checkId('run id', runId)))?.record;
  }

  async require(runId: string): Promise<RunRecord> {
    const record = await this.get(runId);
    if (!record) throw new RunNotFoundError(`no run ${runId} in the registry`);
    return record;
  }

  private async entry(runId: string): Promise<{ record: RunRecord; revision: number } | undefined> {
    const e = await this.kv.get(runId);
    if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
    try {
      return { record: e.json<RunRecord>(), revision: e.revision };
    } catch (err) {
      throw new ControlPlaneError(`registry entry ${runId} is not valid JSON: ${errorMessage(err)}`);
    }
  }

  async list(): Promise<RunRecord[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    const records = await Promise.all(keys.map((k) => this.get(k).catch(() => undefined)));
    return records.filter((r): r is RunRecord => r !== undefined).sort((a, b) => (a.submittedAt ?? a.updatedAt).localeCompare(b.submittedAt ?? b.updatedAt));
  }

  /** Adds a new run; fails if the id is taken. */
  async create(record: RunRecord): Promise<void> {
    try {
      await this.kv.create(checkId('run id', record.runId), JSON.stringify({ ...record, updatedAt: now() }));
    } catch (err) {
      throw new ControlPlaneError(`cannot register run ${record.runId}: ${errorMessage(err)}`, { cause: err });
    }
  }

  /**
   * Read-modify-write with compare-and-set, retried on conflicting writes. `change` gets the
   * current record (undefined when absent) and returns the new one; it may throw (e.g.
   * LeaseHeldError, AbortMutation) to leave the entry as it is.
   */
  async mutate(runId: string, change: (current: RunRecord | undefined) => RunRecord): Promise<RunRecord> {
    checkId('run id', runId);
    for (let attempt = 0; ; attempt++) {
      const current = await this.entry(runId);
      const next = { ...change(current?.record), updatedAt: now() };
      try {
        if (current) await this.kv.update(runId, JSON.stringify(next), current.revision);
        else await this.kv.create(runId, JSON.stringify(next));
        return next;
      } catch (err) {
        // "wrong last sequence": someone wrote in between. Read again and redo the change.
        if (attempt < 10 && /wrong last sequence|key exists/i.test(errorMessage(err))) continue;
        throw new ControlPlaneError(`cannot update run ${runId} in the registry: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  /**
   * Takes the run's lease for `owner` for `ttlMs`, unless someone else holds an unexpired one
   * (LeaseHeldError). `update` makes the rest of the record (it gets undefined for a run not
   * registered yet) in the same write.
   */
  acquire(runId: string, owner: string, ttlMs: number, update: (r: RunRecord | undefined) => RunRecord): Promise<RunRecord> {
    return this.mutate(runId, (r) => {
      const lease = r?.lease;
      if (lease && lease.owner !== owner && lease.expiresAt > Date.now() && r.status === 'running') {
        throw new LeaseHeldError(`run ${runId} is held by ${lease.owner} for another ${Math.ceil((lease.expiresAt - Date.now()) / 1000)} s`);
      }
      return { ...update(r), lease: { owner, expiresAt: Date.now() + ttlMs } };
    });
  }

  /** Extends the lease and applies `update`; LeaseHeldError when another coordinator has taken the run. */
  renew(runId: string, owner: string, ttlMs: number, update: (r: RunRecord) => RunRecord = (r) => r): Promise<RunRecord> {
    return this.mutate(runId, (r) => {
      if (!r) throw new RunNotFoundError(`run ${runId} disappeared from the registry`);
      if (r.lease && r.lease.owner !== owner) throw new LeaseHeldError(`run ${runId} was taken over by ${r.lease.owner}`);
      return update({ ...r, lease: { owner, expiresAt: Date.now() + ttlMs } });
    });
  }

  /** Gives the lease up (with a final update), if still ours. */
  release(runId: string, owner: string, update: (r: RunRecord) => RunRecord): Promise<RunRecord> {
    return this.mutate(runId, (r) => {
      if (!r) throw new RunNotFoundError(`run ${runId} disappeared from the registry`);
      if (r.lease && r.lease.owner !== owner) throw new LeaseHeldError(`run ${runId} was taken over by ${r.lease.owner}`);
      const { lease: _lease, ...rest } = r;
      return update(rest);
    });
  }
}
