// The control plane of one `mtl run|coordinator --nats` run: its registry entry and lease, its
// events, its checkpoints in the NATS object store. With `--run-id ID` the run is resumable by
// name: a coordinator started again with the same arguments (a pod the Job controller
// replaced) finds the run's newest checkpoint in NATS and continues from it, once the lease of
// the coordinator it replaces has lapsed; a run that already ended is not started again.
import { LeaseHeldError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { newRunId } from '../common/control/jobs.js';
import { ControlPlane, checkId } from '../common/control/plane.js';
import { newOwnerId, RunRegistry, type RunRecord } from '../common/control/registry.js';
import { redactUrl, type NatsSecurity } from '../common/security.js';
import { jobHash, type CheckpointData } from '../coordinator/checkpoints.js';
import type { Coordinator } from '../coordinator/coordinator.js';
import { NatsCheckpointStore } from '../coordinator/nats-checkpoints.js';
import type { PreparedRun } from '../coordinator/prepare-run.js';
import { claimRun } from '../coordinator/run-claim.js';
import type { RunReporter } from '../coordinator/run-reporter.js';

export const DEFAULT_LEASE_SECONDS = 30;

export interface ControlFlags {
  nats?: string;
  pool?: string;
  /** The run's id in the registry: a run started again with the same id continues from its checkpoints in NATS. */
  runId?: string;
  /** Length of the run's lease (a replacement coordinator takes over after watching it unrenewed this long). */
  lease?: number;
  /** --resume DIR (local checkpoints), which --nats does not combine with. */
  resume?: string;
}

export interface RunControl {
  plane: ControlPlane;
  runId: string;
  reporter: RunReporter;
  /** The checkpoint to continue from: the run's newest in NATS (with --run-id), if any. */
  resume?: CheckpointData;
}

/** What opening the control plane gave: the run's control, the record of a run that already ended, or a reason to exit. */
export type ControlOutcome = { kind: 'control'; control: RunControl } | { kind: 'ended'; record: RunRecord } | { kind: 'error'; exit: 'usage' | 'failed' };

const ENDED: ReadonlyArray<RunRecord['status']> = ['succeeded', 'cancelled'];
/** This process's name as a lease holder. */
const owner = newOwnerId();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Checks the flags that do not need NATS; a message when they do not go together. */
export function controlFlagsProblem(opts: ControlFlags): string | undefined {
  if (opts.runId !== undefined && opts.nats === undefined) return '--run-id names a run in the NATS registry: it needs --nats';
  if (opts.resume !== undefined && opts.nats !== undefined) {
    return '--resume reads checkpoints from the run directory: it cannot be combined with --nats; with --nats a run continues from its checkpoints in NATS when started again with the same --run-id (queued runs resume by themselves: mtl submit / mtl serve)';
  }
  if (opts.runId !== undefined) {
    try {
      checkId('run id', opts.runId);
    } catch (err) {
      return `--run-id: ${errorMessage(err)}`;
    }
  }
  return undefined;
}

/**
 * Connects, finds the run's checkpoint to continue from (with --run-id), takes the run's lease
 * (waiting for a lapsed one to be taken over) and marks it running. The run stops when
 * `mtl cancel` asks or the lease is lost.
 */
export async function openControl(
  opts: ControlFlags & { nats: string },
  job: PreparedRun['loaded']['spec'],
  wantWorkers: number,
  log: Logger,
  coordinator: () => Coordinator | undefined,
  natsSecurity: NatsSecurity,
): Promise<ControlOutcome> {
  const pool = opts.pool ?? 'default';
  let plane: ControlPlane;
  try {
    checkId('pool', pool);
    plane = await ControlPlane.connect({ url: opts.nats, name: `mtl coordinator ${job.name}`, logger: log.child('nats'), security: natsSecurity });
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return { kind: 'error', exit: 'failed' };
  }
  const runId = opts.runId ?? newRunId(job.name);
  const leaseMs = (opts.lease ?? DEFAULT_LEASE_SECONDS) * 1000;
  try {
    await plane.ensureStreams();
    const registry = await RunRegistry.open(plane);
    let resume: CheckpointData | undefined;
    if (opts.runId !== undefined) {
      const record = await registry.get(runId);
      if (record !== undefined && ENDED.includes(record.status)) {
        await plane.close();
        return { kind: 'ended', record };
      }
      resume = await new NatsCheckpointStore(plane, runId, job.checkpoint.keep).loadLatest((name, reason) => log.warn('skipping a damaged checkpoint', { name, reason }));
      if (resume !== undefined && resume.jobHash !== jobHash(job)) {
        process.stderr.write(`run ${runId}: its checkpoints in NATS were written by another job (resolved specs differ); give another --run-id\n`);
        await plane.close();
        return { kind: 'error', exit: 'usage' };
      }
    }
    const reporter = await claimPatiently(runId, leaseMs, log, () =>
      claimRun({
        plane,
        registry,
        runId,
        owner,
        leaseMs,
        logger: log.child('nats'),
        fresh: { name: job.name, pool, totalSteps: job.training.steps, wantWorkers },
        onCancel: () => coordinator()?.stop('cancelled (mtl cancel)'),
        onLeaseLost: (reason) => coordinator()?.stop(`lease lost: ${reason}`),
      }),
    );
    log.info('registered with the control plane', { run: runId, nats: redactUrl(opts.nats), ...(resume ? { resumesFrom: resume.step } : {}) });
    return { kind: 'control', control: { plane, runId, reporter, ...(resume ? { resume } : {}) } };
  } catch (err) {
    process.stderr.write(`cannot register the run with NATS: ${errorMessage(err)}\n`);
    await plane.close();
    return { kind: 'error', exit: 'failed' };
  }
}

/**
 * Claims the run, retrying while another coordinator's lease may still be alive: a replacement
 * takes over only after watching it unrenewed for its whole length (RunRegistry.acquire), so
 * this waits about one lease length for a coordinator that died, and gives up after three.
 */
async function claimPatiently(runId: string, leaseMs: number, log: Logger, claim: () => Promise<RunReporter>): Promise<RunReporter> {
  const started = performance.now();
  let told = false;
  for (;;) {
    try {
      return await claim();
    } catch (err) {
      if (!(err instanceof LeaseHeldError) || performance.now() - started > 3 * leaseMs) throw err;
      if (!told) log.warn('the run is leased by another coordinator; taking it over once the lease lapses', { run: runId, reason: errorMessage(err) });
      told = true;
      await sleep(Math.min(2000, Math.max(100, leaseMs / 10)));
    }
  }
}
