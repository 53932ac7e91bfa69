// Taking a run in the registry and writing its final entry: shared by `mtl serve` (one claim
// per queued job) and `mtl coordinator --nats` / `mtl run --nats` (one run, registered on start).
import type { RunRecord } from '../common/control/registry.js';
import type { RunSummary } from './run-summary.js';
import { RunReporter, type RunReporterOptions } from './run-reporter.js';

export interface ClaimOptions extends Omit<RunReporterOptions, 'intervalMs' | 'bufferLimit'> {
  /** Fields for a run the registry does not know yet (mtl run/coordinator --nats). */
  fresh: Pick<RunRecord, 'name' | 'pool' | 'totalSteps'> & Partial<RunRecord>;
}

/** Takes the run's lease and marks it running; LeaseHeldError when another coordinator has it. */
export async function claimRun(o: ClaimOptions): Promise<RunReporter> {
  const started = new Date().toISOString();
  await o.registry.acquire(o.runId, o.owner, o.leaseMs, (r) => {
    const base: RunRecord = r ?? { runId: o.runId, status: 'running', step: 0, workers: 0, attempts: 0, updatedAt: started, ...o.fresh };
    const { queueSeq: _seq, coordinator: _address, ...rest } = base;
    return { ...rest, status: 'running', attempts: base.attempts + 1, startedAt: base.startedAt ?? started };
  });
  const { fresh: _fresh, ...reporter } = o;
  return new RunReporter(reporter);
}

/** The registry entry of a finished run. */
export function finishedRecord(r: RunRecord, summary: RunSummary, status: RunRecord['status'], error?: string): RunRecord {
  const { coordinator: _address, error: _oldError, ...rest } = r;
  return {
    ...rest,
    status,
    step: summary.stepsCompleted,
    finishedAt: new Date().toISOString(),
    outDir: summary.outDir,
    ...(Object.keys(summary.tasks).length > 0 ? { evaluation: Object.fromEntries(Object.entries(summary.tasks).map(([t, { samples: _s, ...m }]) => [t, m])) } : {}),
    ...(summary.lastCheckpoint !== undefined ? { lastCheckpoint: summary.lastCheckpoint } : {}),
    ...(error !== undefined ? { error } : {}),
  };
}
