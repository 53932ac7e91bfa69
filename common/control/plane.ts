// The NATS control plane (nats.js v3): one connection per process, the JetStream streams,
// buckets and subjects every role agrees on, and the connection state the publishers need to
// ride out an outage. Works with nats-server 2.9 (no per-key TTL, no multi-filter consumers).
//
//   stream MTL_JOBS  (work queue)  mtl.jobs.<pool>           one message per submitted run
//   stream MTL_RUNS  (limits)      mtl.runs.<run>.events     lifecycle, workers, warnings
//                                  mtl.runs.<run>.metrics    one JSON record per step
//   KV     mtl-runs                <run>                     the run registry (RunRecord)
//   object mtl-checkpoints         <run>/ckpt-<step>         coordinator checkpoints
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { AuthorizationError, credsAuthenticator, TimeoutError, UserAuthenticationExpiredError, type NatsConnection } from '@nats-io/nats-core';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { randomInt } from 'node:crypto';
import { ControlPlaneError, errorMessage } from '../errors.js';
import type { Logger } from '../logging.js';
import { redactUrl, type NatsSecurity } from '../security.js';
import { tlsErrorCode } from '../tls-errors.js';

export const JOBS_STREAM = 'MTL_JOBS';
export const RUNS_STREAM = 'MTL_RUNS';
export const REGISTRY_BUCKET = 'mtl-runs';
export const CHECKPOINT_BUCKET = 'mtl-checkpoints';

/** Run ids and pool names are subject tokens and KV keys: letters, digits, `-` and `_`. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export const subjects = {
  jobs: (pool: string) => `mtl.jobs.${pool}`,
  events: (run: string) => `mtl.runs.${run}.events`,
  metrics: (run: string) => `mtl.runs.${run}.metrics`,
  run: (run: string) => `mtl.runs.${run}.>`,
} as const;

export function checkId(kind: 'run id' | 'pool', id: string): string {
  if (!ID_PATTERN.test(id)) throw new ControlPlaneError(`invalid ${kind} ${JSON.stringify(id)}: expected letters, digits, - and _ (at most 128)`);
  return id;
}

export interface ControlPlaneOptions {
  /** nats://host:port (comma-separated for several servers). */
  url: string;
  /** Connection name shown by the server (`nats server report connections`). */
  name: string;
  logger: Logger;
  /** How long the first connection may take. Default 5 s. */
  connectTimeoutMs?: number;
  /** First pause between reconnection attempts; it doubles up to 10 s (±25% jitter). Default 250 ms. */
  reconnectWaitMs?: number;
  /** How long events and metrics stay in MTL_RUNS. Default 7 days. */
  eventsMaxAgeS?: number;
  /** TLS (CA, client certificate) and a credentials file; see loadNatsSecurity. Default: none. */
  security?: NatsSecurity;
}

const RECONNECT_MAX_MS = 10_000;

/**
 * A pointer to the flags when a connection failure is a TLS or credentials problem: a TLS
 * error (by its code), an authorization refusal, or, with a client certificate, a timeout
 * (a server that refuses the certificate closes the connection before its greeting).
 */
function tlsHint(opts: ControlPlaneOptions, err: unknown): string {
  const security = opts.security?.tls !== undefined || opts.security?.creds !== undefined;
  const relevant =
    tlsErrorCode(err) !== undefined ||
    err instanceof AuthorizationError ||
    err instanceof UserAuthenticationExpiredError ||
    (err instanceof TimeoutError && opts.security?.tls !== undefined);
  if (!relevant) return '';
  return security
    ? ' (check --nats-ca, --nats-cert, --nats-key and --nats-creds against the server)'
    : ' (the server wants TLS or credentials: --nats-ca, --nats-cert, --nats-key, --nats-creds)';
}

export type ConnectionListener = (connected: boolean) => void;

/** A connected control plane. Reconnects forever with backoff until close(). */
export class ControlPlane {
  readonly js: JetStreamClient;
  private connectedNow = true;
  private readonly listeners = new Set<ConnectionListener>();
  private registryBucket: Promise<KV> | undefined;
  private checkpointBucket: Promise<ObjectStore> | undefined;
  private streamsReady: Promise<void> | undefined;

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly opts: ControlPlaneOptions,
    private readonly backoff: { since: number | undefined },
  ) {
    this.js = jetstream(nc);
    void this.watchStatus();
  }

  static async connect(opts: ControlPlaneOptions): Promise<ControlPlane> {
    let nc: NatsConnection;
    const backoff: { since: number | undefined } = { since: undefined };
    const first = opts.reconnectWaitMs ?? 250;
    try {
      nc = await connect({
        servers: opts.url.split(',').map((s) => s.trim()),
        name: opts.name,
        ...(opts.security?.tls ? { tls: opts.security.tls } : {}),
        ...(opts.security?.creds ? { authenticator: credsAuthenticator(opts.security.creds) } : {}),
        timeout: opts.connectTimeoutMs ?? 5000,
        maxReconnectAttempts: -1,
        // Exponential backoff with jitter. The client asks for the pause on every turn of its
        // reconnect loop, so the pause is derived from the outage's length: the next attempt
        // comes once the time since the last one reaches a quarter of the time since the
        // disconnect, so attempt times grow by 4/3 (0.25, 0.33, 0.44 ... 2.5, 3.3 s ...) up to one
        // every 10 s. Reset by a successful reconnect.
        reconnectDelayHandler: () => {
          const now = Date.now();
          backoff.since ??= now;
          const base = Math.min(RECONNECT_MAX_MS, Math.max(first, (now - backoff.since) / 4));
          return Math.round(base * (0.75 + randomInt(1_000_000) / 2_000_000));
        },
        pingInterval: 10_000,
        maxPingOut: 3,
      });
    } catch (err) {
      throw new ControlPlaneError(`cannot connect to NATS at ${redactUrl(opts.url)}: ${errorMessage(err)}${tlsHint(opts, err)}`, { cause: err });
    }
    try {
      // The handler also ran for the first connection: the outage clock starts at a disconnect.
      backoff.since = undefined;
      const jsm = await jetstreamManager(nc, { timeout: 10_000 });
      return new ControlPlane(nc, jsm, opts, backoff);
    } catch (err) {
      await nc.close();
      throw new ControlPlaneError(`NATS at ${redactUrl(opts.url)} has no JetStream (start nats-server with -js): ${errorMessage(err)}`, { cause: err });
    }
  }

  get url(): string {
    return this.opts.url;
  }

  /** False between a disconnect and the next successful reconnect. */
  get connected(): boolean {
    return this.connectedNow && !this.nc.isClosed();
  }

  onConnectionChange(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async watchStatus(): Promise<void> {
    const log = this.opts.logger;
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.backoff.since = Date.now();
        if (!this.connectedNow) continue;
        this.connectedNow = false;
        log.warn('NATS connection lost; reconnecting (training goes on, events are buffered)', { server: s.server });
        for (const l of this.listeners) l(false);
      } else if (s.type === 'reconnect') {
        this.connectedNow = true;
        this.backoff.since = undefined;
        log.info('NATS connection restored', { server: s.server });
        for (const l of this.listeners) l(true);
      } else if (s.type === 'error') {
        log.warn('NATS error', { error: errorMessage(s.error) });
      }
    }
  }

  /** Creates the streams the queue and the event subjects need, where missing. Idempotent. */
  ensureStreams(): Promise<void> {
    this.streamsReady ??= (async () => {
      await this.ensureStream(JOBS_STREAM, {
        subjects: ['mtl.jobs.>'],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        // Submitting the same run id twice within this window publishes it once.
        duplicate_window: 120 * 1e9,
      });
      await this.ensureStream(RUNS_STREAM, {
        subjects: ['mtl.runs.>'],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: (this.opts.eventsMaxAgeS ?? 7 * 86400) * 1e9,
        max_bytes: 1024 ** 3,
        discard: DiscardPolicy.Old,
      });
    })().catch((err: unknown) => {
      this.streamsReady = undefined;
      throw err;
    });
    return this.streamsReady;
  }

  private async ensureStream(name: string, config: Partial<StreamConfig>): Promise<void> {
    try {
      await this.jsm.streams.info(name);
    } catch {
      try {
        await this.jsm.streams.add({ name, ...config });
      } catch (err) {
        // Another process created it in between.
        await this.jsm.streams.info(name).catch(() => {
          throw new ControlPlaneError(`cannot create JetStream stream ${name}: ${errorMessage(err)}`, { cause: err });
        });
      }
    }
  }

  /** The run registry bucket (created on first use). */
  registryKv(): Promise<KV> {
    this.registryBucket ??= new Kvm(this.nc).create(REGISTRY_BUCKET, { history: 1 }).catch((err: unknown) => {
      this.registryBucket = undefined;
      throw new ControlPlaneError(`cannot open the run registry (KV ${REGISTRY_BUCKET}): ${errorMessage(err)}`, { cause: err });
    });
    return this.registryBucket;
  }

  /** The checkpoint object store (created on first use). */
  checkpointStore(): Promise<ObjectStore> {
    this.checkpointBucket ??= new Objm(this.nc).create(CHECKPOINT_BUCKET).catch((err: unknown) => {
      this.checkpointBucket = undefined;
      throw new ControlPlaneError(`cannot open the checkpoint store (object store ${CHECKPOINT_BUCKET}): ${errorMessage(err)}`, { cause: err });
    });
    return this.checkpointBucket;
  }

  /** Publishes on a core subject (captured by MTL_RUNS). Throws when disconnected. */
  publish(subject: string, payload: string): void {
    this.nc.publish(subject, payload);
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => undefined);
    }
  }
}
