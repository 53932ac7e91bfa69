// How `mtl serve` ends its turn with a queued job: what the registry records and what
// JetStream is told (ack: done; term: never again; nak: deliver again later). No job is left
// without one of them: a job that cannot be retried any more is failed and recorded.
//
// Which failures are which:
//   - the job's own fault (PERMANENT: invalid spec, unreadable data, non-finite numbers,
//     impossible aggregation input): failed at once, retrying cannot help;
//   - anything else (a checkpoint that will not read or restore, a port that will not bind, a
//     run that failed for another reason): back to the queue with a growing delay (2 s, 4 s,
//     ... at most 60 s), here or on another server, until its last delivery (--max-deliver),
//     which fails it for good.
import type { JsMsg } from '@nats-io/jetstream';
import type { RunRecord } from '../common/control/registry.js';
import { errorMessage, MtlError, type ErrorCode } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import type { RunSummary } from './run-summary.js';
import { finishedRecord } from './run-claim.js';
import type { RunReporter } from './run-reporter.js';

/** Failures that a retry cannot fix: the job is termed at once. */
export const PERMANENT: ReadonlySet<ErrorCode> = new Set(['JOB_SPEC_INVALID', 'DATASET_ERROR', 'NON_FINITE', 'AGGREGATION_INPUT']);

export type JobOutcome = 'succeeded' | 'failed' | 'cancelled' | 'retry' | 'released' | 'lease-lost' | 'skipped';

/** One delivery of a job to a slot that holds its lease. */
export interface JobTurn {
  msg: JsMsg;
  runId: string;
  reporter: RunReporter;
  maxDeliver: number;
  log: Logger;
  end: (outcome: JobOutcome, detail: string) => void;
}

/** Delay before delivering a job again after its `deliveries`-th attempt failed. */
export function retryDelayMs(deliveries: number): number {
  return Math.min(60_000, 2000 * 2 ** (deliveries - 1));
}

/**
 * The run could not start here (its checkpoint would not read or restore, its listener would
 * not bind): failed if it is the job's fault or its last delivery, else back to the queue.
 */
export async function notStarted(t: JobTurn, what: string, err: unknown): Promise<void> {
  const deliveries = t.msg.info.deliveryCount;
  const reason = `${what}: ${errorMessage(err)}`;
  const permanent = err instanceof MtlError && PERMANENT.has(err.code);
  const last = deliveries >= t.maxDeliver;
  const fail = permanent || last;
  const why = permanent ? reason : last ? `${reason} (attempt ${deliveries} of ${t.maxDeliver}, giving up)` : `attempt ${deliveries} ${reason}`;
  t.log.error('the run could not start', { runId: t.runId, error: why });
  const written = await t.reporter.finish((r) => {
    const { coordinator: _gone, ...rest } = r;
    const next: RunRecord = { ...rest, status: fail ? 'failed' : 'queued', error: why };
    return fail ? { ...next, finishedAt: new Date().toISOString() } : next;
  });
  if (t.reporter.leaseLost) return t.end('lease-lost', 'another coordinator took the run over');
  if (fail && (written !== undefined || last)) {
    t.msg.term();
    return t.end('failed', written !== undefined ? why : `${why}; could not record it in the registry`);
  }
  // Back to the queue; a permanent failure the registry could not record yet is recorded by a later delivery.
  t.msg.nak(retryDelayMs(deliveries));
  t.end('retry', why);
}

/** Records how a run that trained here ended, and acks, terms or naks its message accordingly. */
export async function settle(t: JobTurn, summary: RunSummary, stopReason: 'cancel' | 'lease' | undefined, removeCheckpoints: () => Promise<void>): Promise<void> {
  const { msg, reporter } = t;
  if (stopReason === 'lease' || reporter.leaseLost) {
    // Someone else owns the run now; its message was redelivered to them.
    reporter.abandon();
    return t.end('lease-lost', 'another coordinator took the run over');
  }
  if (summary.status === 'succeeded') {
    await reporter.finish((r) => finishedRecord(r, summary, 'succeeded'));
    msg.ack();
    await removeCheckpoints().catch(() => undefined);
    return t.end('succeeded', `${summary.stepsCompleted} steps in ${summary.wallTimeS.toFixed(1)} s`);
  }
  if (stopReason === 'cancel' || reporter.cancelRequested) {
    await reporter.finish((r) => finishedRecord(r, summary, 'cancelled', 'cancelled (mtl cancel)'));
    msg.term();
    return t.end('cancelled', `at step ${summary.stepsCompleted}`);
  }
  if (summary.status === 'stopped') {
    // This server is shutting down: the job goes back to the queue and resumes elsewhere.
    await reporter.finish((r) => ({ ...finishedRecord(r, summary, 'queued', `coordinator stopped at step ${summary.stepsCompleted}: ${summary.error?.message ?? ''}`), finishedAt: undefined }));
    msg.nak();
    return t.end('released', `stopped at step ${summary.stepsCompleted}; back in the queue`);
  }
  const code = summary.error?.code as ErrorCode | undefined;
  const reason = `${summary.error?.code ?? 'INTERNAL'}: ${summary.error?.message ?? 'unknown error'}`;
  const deliveries = msg.info.deliveryCount;
  if ((code !== undefined && PERMANENT.has(code)) || deliveries >= t.maxDeliver) {
    const why = deliveries >= t.maxDeliver ? `${reason} (attempt ${deliveries} of ${t.maxDeliver}, giving up)` : reason;
    await reporter.finish((r) => finishedRecord(r, summary, 'failed', why));
    msg.term();
    return t.end('failed', why);
  }
  await reporter.finish((r) => ({ ...finishedRecord(r, summary, 'queued', `attempt ${deliveries} failed: ${reason}`), finishedAt: undefined }));
  msg.nak(retryDelayMs(deliveries));
  t.end('retry', `attempt ${deliveries} failed: ${reason}`);
}
