// The run registry: one KV entry per run, keyed by run id. Every change is a compare-and-set
// on the entry's revision, so concurrent writers (a coordinator renewing its lease, `mtl
// cancel`, a second coordinator trying to take the run over) never overwrite each other
// blindly. The lease is part of the entry: only the coordinator named in it may run the job.
//
// Leases never compare clocks of different machines. The holder bumps the lease's `beat` on
// every renewal; another coordinator may take the run over only once it has itself watched
// the same beat stay unchanged for the lease's whole length, timed on its own monotonic
// clock. A holder whose clock is hours off, or a challenger whose clock is, changes nothing:
// only the rate of each machine's clock matters, and the compare-and-set on the revision makes
// a renewal that lands in between win over the takeover.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { ControlPlaneError, LeaseHeldError, RunNotFoundError, errorMessage } from '../errors.js';
import { checkId, type ControlPlane } from './plane.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatusName = (typeof RUN_STATUSES)[number];
export const TERMINAL: ReadonlySet<RunStatusName> = new Set(['succeeded', 'failed', 'cancelled']);

export interface RunLease {
  /** Who holds it: `host/pid/random`. */
  owner: string;
  /** How long the holder may go without renewing before another coordinator may take over. */
  ttlMs: number;
  /** Bumped by every renewal: what another coordinator watches for a sign of life. */
  beat: number;
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

/** A compare-and-set that lost to another writer (the revision moved on, or the key exists): read again and redo. */
export function isWriteConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

export interface RegistryOptions {
  /** Milliseconds on a monotonic clock, for timing how long a lease went unrenewed. Default performance.now(). */
  clock?: () => number;
}

/** Someone else's lease as we last saw it, and since when (on our clock) it has not changed. */
interface LeaseSighting {
  key: string;
  since: number;
}

type Entry = { record: RunRecord; revision: number };

export class RunRegistry {
  private readonly clock: () => number;
  private readonly sightings = new Map<string, LeaseSighting>();

  private constructor(
    private readonly kv: KV,
    options: RegistryOptions,
  ) {
    this.clock = options.clock ?? (() => performance.now());
  }

  static async open(plane: ControlPlane, options: RegistryOptions = {}): Promise<RunRegistry> {
    return new RunRegistry(await plane.registryKv(), options);
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    return (await this.entry(checkId('run id', runId)))?.record;
  }

  async require(runId: string): Promise<RunRecord> {
    const record = await this.get(runId);
    if (!record) throw new RunNotFoundError(`no run ${runId} in the registry`);
    return record;
  }

  private async entry(runId: string): Promise<Entry | undefined> {
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
  mutate(runId: string, change: (current: RunRecord | undefined) => RunRecord): Promise<RunRecord> {
    return this.mutateEntry(runId, (e) => change(e?.record));
  }

  private async mutateEntry(runId: string, change: (current: Entry | undefined) => RunRecord): Promise<RunRecord> {
    checkId('run id', runId);
    for (let attempt = 0; ; attempt++) {
      const current = await this.entry(runId);
      const next = { ...change(current), updatedAt: now() };
      try {
        if (current) await this.kv.update(runId, JSON.stringify(next), current.revision);
        else await this.kv.create(runId, JSON.stringify(next));
        return next;
      } catch (err) {
        // Someone wrote in between: read again and redo the change.
        if (attempt < 10 && isWriteConflict(err)) continue;
        throw new ControlPlaneError(`cannot update run ${runId} in the registry: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  /**
   * Takes the run's lease for `owner` (LeaseHeldError while another coordinator may still hold
   * it). Someone else's lease on a running run is taken over only once this registry client
   * has watched it go unrenewed for its whole length: the first attempts throw and start the
   * watch, a later one succeeds. `update` makes the rest of the record (it gets undefined for a
   * run not registered yet) in the same write.
   */
  acquire(runId: string, owner: string, ttlMs: number, update: (r: RunRecord | undefined) => RunRecord): Promise<RunRecord> {
    return this.mutateEntry(runId, (e) => {
      const r = e?.record;
      // Entries written before leases had beats carry neither beat nor ttlMs.
      const lease = r?.lease as (Partial<RunLease> & Pick<RunLease, 'owner'>) | undefined;
      if (e && lease && lease.owner !== owner && e.record.status === 'running') {
        // Such a lease changes the entry's revision on every renewal instead.
        const key = `${lease.owner}\u0000${lease.beat ?? `r${e.revision}`}`;
        const length = lease.ttlMs ?? ttlMs;
        const t = this.clock();
        let seen = this.sightings.get(runId);
        if (seen?.key !== key) {
          seen = { key, since: t };
          this.sightings.set(runId, seen);
        }
        const quiet = t - seen.since;
        if (quiet < length) {
          throw new LeaseHeldError(`run ${runId} is held by ${lease.owner} (a ${Math.ceil(length / 1000)} s lease; no renewal seen for ${Math.floor(quiet / 1000)} s so far)`);
        }
      }
      this.sightings.delete(runId);
      return { ...update(r), lease: { owner, ttlMs, beat: (lease?.beat ?? 0) + 1 } };
    });
  }

  /** Renews the lease (a new beat) and applies `update`; LeaseHeldError when another coordinator has taken the run. */
  renew(runId: string, owner: string, ttlMs: number, update: (r: RunRecord) => RunRecord = (r) => r): Promise<RunRecord> {
    return this.mutate(runId, (r) => {
      if (!r) throw new RunNotFoundError(`run ${runId} disappeared from the registry`);
      if (r.lease && r.lease.owner !== owner) throw new LeaseHeldError(`run ${runId} was taken over by ${r.lease.owner}`);
      return update({ ...r, lease: { owner, ttlMs, beat: (r.lease?.beat ?? 0) + 1 } });
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
