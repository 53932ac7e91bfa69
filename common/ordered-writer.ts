// Writes messages to a gRPC stream in order, honouring backpressure: when `write()` returns
// false the next message waits for 'drain'. Callers may fire many writes without awaiting;
// they are queued and sent one after another, so a transfer's header and chunks never
// interleave with another transfer's.

export interface WritableStreamLike<T> {
  write(message: T): boolean;
  once(event: 'drain' | 'close' | 'error' | 'finish', listener: (...args: unknown[]) => void): unknown;
  removeListener(event: 'drain' | 'close' | 'error' | 'finish', listener: (...args: unknown[]) => void): unknown;
}

export class StreamClosedError extends Error {
  constructor(message = 'stream closed') {
    super(message);
    this.name = 'StreamClosedError';
  }
}

export class OrderedWriter<T> {
  private tail: Promise<void> = Promise.resolve();
  private closedReason: string | undefined;
  private pendingCount = 0;

  constructor(private readonly stream: WritableStreamLike<T>) {
    const onEnd = () => this.markClosed('stream closed');
    stream.once('close', onEnd);
    stream.once('error', onEnd);
    stream.once('finish', onEnd);
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Messages accepted but not yet handed to the stream. */
  get pending(): number {
    return this.pendingCount;
  }

  markClosed(reason: string): void {
    this.closedReason ??= reason;
  }

  /** Queues a message; the promise settles when the stream has taken it (or was closed). */
  write(message: T): Promise<void> {
    this.pendingCount++;
    const next = this.tail.then(() => this.writeNow(message)).finally(() => this.pendingCount--);
    // The chain itself must never reject, or one failed write would poison all later ones.
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async writeNow(message: T): Promise<void> {
    if (this.closedReason !== undefined) throw new StreamClosedError(this.closedReason);
    if (this.stream.write(message)) return;
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.stream.removeListener('drain', onDrain);
        this.stream.removeListener('close', onClose);
        this.stream.removeListener('error', onClose);
        this.stream.removeListener('finish', onClose);
      };
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onClose = () => {
        cleanup();
        this.markClosed('stream closed while waiting for drain');
        reject(new StreamClosedError('stream closed while waiting for drain'));
      };
      this.stream.once('drain', onDrain);
      this.stream.once('close', onClose);
      this.stream.once('error', onClose);
      // A stream ended while full emits only 'finish' (its read side may stay open).
      this.stream.once('finish', onClose);
    });
  }

  /** Resolves when everything queued so far has been handed to the stream. */
  flush(): Promise<void> {
    return this.tail;
  }
}
