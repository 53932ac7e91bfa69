// Retrying a fetch of remote data: exponential backoff with jitter within a time budget, and an
// idle timer that gives up on a transfer that stopped moving. A DatasetError (a missing object, a
// digest that does not match, HTTP 404) is final and never retried; anything else is a transport
// problem, retried until the budget is spent and then reported as a DataFetchError.
import { randomInt } from 'node:crypto';
import { DataFetchError, DatasetError, errorMessage } from '../errors.js';
import type { Logger } from '../logging.js';

export interface RetryPolicy {
  /** How long one file may take, retries included, before giving up. Default 120 s. */
  budgetMs: number;
  /** First pause between attempts; it doubles up to maxMs (±25% jitter). Default 250 ms. */
  initialMs: number;
  maxMs: number;
  /** A transfer that receives nothing for this long is abandoned and retried. Default 30 s. */
  idleMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { budgetMs: 120_000, initialMs: 250, maxMs: 5_000, idleMs: 30_000 };

/** A transfer that stalled (no bytes for idleMs): retried like a dropped connection. */
export class StalledTransferError extends Error {}

/**
 * Runs `attempt` until it succeeds, a DatasetError says retrying cannot help, or `policy.budgetMs`
 * is spent. `what` names the file in messages. The jitter only spreads the retries of many
 * workers; it never touches what is fetched.
 */
export async function withRetry<T>(what: string, policy: RetryPolicy, log: Logger, attempt: (n: number) => Promise<T>): Promise<T> {
  const deadline = Date.now() + policy.budgetMs;
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (err instanceof DatasetError) throw err;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new DataFetchError(`${what}: cannot fetch within ${Math.round(policy.budgetMs / 1000)} s (${n + 1} attempt(s)): ${errorMessage(err)}`, { cause: err });
      }
      const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(n, 20));
      const delay = Math.min(left, Math.round(base * (0.75 + randomInt(1_000_000) / 2_000_000)));
      log.warn('data fetch failed, retrying', { data: what, attempt: n + 1, error: errorMessage(err), delayMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** An idle timer: `touch()` on every chunk; `expired` rejects once nothing came for `ms`. */
export class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  private reject!: (err: Error) => void;
  readonly expired: Promise<never>;

  constructor(
    private readonly ms: number,
    private readonly what: string,
    private readonly onExpire?: () => void,
  ) {
    this.expired = new Promise<never>((_, reject) => (this.reject = reject));
    // Nobody may be waiting on it when it fires (the transfer ended another way).
    this.expired.catch(() => undefined);
    this.touch();
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fire(`${this.what}: no data for ${Math.round(this.ms / 1000)} s`), this.ms);
    this.timer.unref();
  }

  /** Gives up on the transfer now (e.g. its connection was replaced). */
  fire(reason: string): void {
    clearTimeout(this.timer);
    this.onExpire?.();
    this.reject(new StalledTransferError(reason));
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
