// Worker discovery through the run registry: `mtl worker --nats URL --run RUN` reads the
// coordinator's address from the run's entry (and reads it again after a lost connection, since
// a resumed run may have moved to another coordinator); `--pool NAME` picks whichever running
// run of the pool has the fewest workers against what it waits for.
import { randomInt } from 'node:crypto';
import { TERMINAL, type RunRecord, type RunRegistry } from '../common/control/registry.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

export interface ResolverOptions {
  registry: RunRegistry;
  runId: string;
  logger: Logger;
  /** Keep waiting while the run is queued (true for --run); false returns undefined then (--pool). */
  waitWhileQueued: boolean;
  pollMs?: number;
}

/** The coordinator address of a run, once it is running; undefined once it is over (or aborted). */
export function registryResolver(o: ResolverOptions): (signal: AbortSignal) => Promise<string | undefined> {
  return async (signal) => {
    let said = '';
    const say = (what: string, fields: Record<string, string>) => {
      if (what !== said) o.logger.info(what, { run: o.runId, ...fields });
      said = what;
    };
    while (!signal.aborted) {
      let record: RunRecord | undefined;
      try {
        record = await o.registry.get(o.runId);
      } catch (err) {
        say('cannot read the run registry; retrying', { error: errorMessage(err) });
        await sleep(o.pollMs ?? 1000, signal);
        continue;
      }
      if (record && TERMINAL.has(record.status)) {
        o.logger.info('the run is over', { run: o.runId, status: record.status });
        return undefined;
      }
      if (record?.status === 'running' && record.coordinator) return record.coordinator;
      if (record?.status === 'queued' && !o.waitWhileQueued) return undefined;
      say(record ? 'waiting for the run to start' : 'waiting for the run to be registered', { status: record?.status ?? 'unknown' });
      await sleep(o.pollMs ?? 1000, signal);
    }
    return undefined;
  };
}

/**
 * The running run of `pool` that most needs a worker: the largest shortfall against the
 * workers it waits for, then the fewest workers; ties broken at random so that workers
 * starting together spread out. Waits until there is one; undefined when aborted.
 */
export async function pickRun(registry: RunRegistry, pool: string, signal: AbortSignal, logger: Logger, pollMs = 1000): Promise<RunRecord | undefined> {
  let waiting = false;
  while (!signal.aborted) {
    let runs: RunRecord[] = [];
    try {
      runs = (await registry.list()).filter((r) => r.pool === pool && r.status === 'running' && r.coordinator !== undefined && !r.cancelRequested);
    } catch (err) {
      logger.warn('cannot read the run registry; retrying', { error: errorMessage(err) });
    }
    if (runs.length > 0) {
      const need = (r: RunRecord) => [(r.wantWorkers ?? 1) - r.workers, -r.workers] as const;
      const best = runs.reduce((a, b) => {
        const [na, wa] = need(a);
        const [nb, wb] = need(b);
        return nb > na || (nb === na && wb > wa) ? b : a;
      });
      const ties = runs.filter((r) => need(r)[0] === need(best)[0] && need(r)[1] === need(best)[1]);
      return ties[randomInt(ties.length)];
    }
    if (!waiting) logger.info('no run in the pool needs workers yet; waiting', { pool });
    waiting = true;
    await sleep(pollMs, signal);
  }
  return undefined;
}
