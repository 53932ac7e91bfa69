// Checkpoints in the JetStream object store `mtl-checkpoints`, so that a coordinator on another
// node can resume a run. Objects are named `<run>/ckpt-<step>`; the object store chunks them and
// checks their SHA-256 digest, and the file format inside (MTLCKPT1) carries its own checksum.
import { ControlPlaneError, errorMessage } from '../common/errors.js';
import type { ControlPlane } from '../common/control/plane.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointData, type CheckpointStore } from './checkpoints.js';

const NAME = /\/ckpt-(\d+)$/;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ControlPlaneError(`${what}: no answer from NATS within ${Math.round(ms / 1000)} s`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

export class NatsCheckpointStore implements CheckpointStore {
  /** This run's checkpoints as this process knows them (listing the bucket costs ~50 ms). */
  private known: Array<{ name: string; step: number }> | undefined;
  /** Deletions of old checkpoints, in order, off the training loop's path. */
  private pruning: Promise<void> = Promise.resolve();

  constructor(
    private readonly plane: ControlPlane,
    readonly runId: string,
    private readonly keep = 3,
    private readonly timeoutMs = 60_000,
  ) {}

  private objectName(step: number): string {
    return `${this.runId}/ckpt-${String(step).padStart(9, '0')}`;
  }

  /** Waits for the deletion of checkpoints past `keep`. */
  settled(): Promise<void> {
    return this.pruning;
  }

  /** This run's checkpoints, newest first (as stored in the bucket). */
  async list(): Promise<Array<{ name: string; step: number }>> {
    const store = await this.plane.checkpointStore();
    const prefix = `${this.runId}/`;
    return (await store.list())
      .filter((info) => !info.deleted && info.name.startsWith(prefix))
      .map((info) => ({ name: info.name, m: NAME.exec(info.name) }))
      .filter((e): e is { name: string; m: RegExpExecArray } => e.m !== null)
      .map((e) => ({ name: e.name, step: Number(e.m[1]) }))
      .sort((a, b) => b.step - a.step);
  }

  async save(data: CheckpointData): Promise<void> {
    // During an outage a save would only wait for its timeout: fail at once, training goes on.
    if (!this.plane.connected) throw new ControlPlaneError('NATS is disconnected; checkpoint not stored');
    const store = await this.plane.checkpointStore();
    const name = this.objectName(data.step);
    await withTimeout(store.putBlob({ name, description: `mtl checkpoint of run ${this.runId} at step ${data.step}` }, encodeCheckpoint(data)), this.timeoutMs, `storing ${name}`);
    if (this.known === undefined) this.known = await this.list();
    else if (!this.known.some((c) => c.name === name)) this.known = [{ name, step: data.step }, ...this.known].sort((a, b) => b.step - a.step);
    const old = this.known.slice(this.keep);
    this.known = this.known.slice(0, this.keep);
    this.pruning = this.pruning.then(async () => {
      for (const c of old) await store.delete(c.name).catch(() => undefined);
    });
  }

  async loadLatest(onSkipped?: (file: string, reason: string) => void): Promise<CheckpointData | undefined> {
    const store = await this.plane.checkpointStore();
    for (const { name } of await this.list()) {
      try {
        const bytes = await withTimeout(store.getBlob(name), this.timeoutMs, `reading ${name}`);
        if (!bytes) throw new Error('object vanished');
        return decodeCheckpoint(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), `nats:${name}`);
      } catch (err) {
        onSkipped?.(`nats:${name}`, errorMessage(err));
      }
    }
    return undefined;
  }

  /** Removes every checkpoint of the run (after it succeeded). */
  async removeAll(): Promise<void> {
    await this.pruning;
    this.known = [];
    const store = await this.plane.checkpointStore();
    for (const { name } of await this.list()) await store.delete(name).catch(() => undefined);
  }
}
