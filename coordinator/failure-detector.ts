// When is a worker dead, and when is it merely slow? Pure functions of what the coordinator
// observed and the clock, so tests can drive them with fake times.
//
// A worker computes its units one after another and cannot talk while it computes (tfjs runs
// on its event loop), so silence alone is ambiguous. Its expected silence is the wall time of
// one computation (`meanBusyMs`; units that share a batch are computed together, and the whole
// group counts). The rules:
// - dead: silent for `deadAfterMs`, or, while it holds work, for 3× its expected computation if
//   that is longer (a worker is never expected to finish faster than it has been);
//   before any computation time is known, busy workers get FIRST_UNIT_GRACE_MS.
// - stalled: holds work but has not finished a unit for `backupAfter` × the median computation time
//   (and at least `minBackupMs`; FIRST_UNIT_BACKUP_FACTOR times that for a worker's first
//   unit, which includes its warm-up): its units get backup copies on idle workers.

export const FIRST_UNIT_GRACE_MS = 60_000;
/** How much longer than usual a worker's first unit may take before it gets a backup. */
export const FIRST_UNIT_BACKUP_FACTOR = 4;

export interface ObservedWorker {
  id: string;
  /** Last message of any kind. */
  lastSeenMs: number;
  /** Last finished unit, or when it was given work while idle. */
  lastProgressMs: number;
  /** Mean wall time of its computations (a shared-batch group as a whole), once known. */
  meanBusyMs?: number;
  /** Holds at least one active assignment. */
  busy: boolean;
}

export interface FaultSettings {
  deadAfterMs: number;
  backupAfter: number;
  minBackupMs: number;
}

export function medianBusyMs(workers: readonly ObservedWorker[]): number | undefined {
  const known = workers
    .map((w) => w.meanBusyMs)
    .filter((m): m is number => m !== undefined && m > 0)
    .sort((a, b) => a - b);
  if (known.length === 0) return undefined;
  const mid = Math.floor(known.length / 2);
  return known.length % 2 === 1 ? known[mid]! : (known[mid - 1]! + known[mid]!) / 2;
}

export function deadWorkers(workers: readonly ObservedWorker[], now: number, settings: FaultSettings): Array<{ id: string; silentMs: number; limitMs: number }> {
  const median = medianBusyMs(workers);
  const out: Array<{ id: string; silentMs: number; limitMs: number }> = [];
  for (const w of workers) {
    const expected = w.meanBusyMs ?? median;
    const limitMs = w.busy ? Math.max(settings.deadAfterMs, expected === undefined ? FIRST_UNIT_GRACE_MS : 3 * expected) : settings.deadAfterMs;
    const silentMs = now - w.lastSeenMs;
    if (silentMs > limitMs) out.push({ id: w.id, silentMs, limitMs });
  }
  return out;
}

/** Busy workers whose progress has stalled long enough that their units deserve a backup. */
export function stalledWorkers(workers: readonly ObservedWorker[], now: number, settings: FaultSettings): string[] {
  if (settings.backupAfter <= 0) return [];
  const median = medianBusyMs(workers);
  if (median === undefined) return [];
  const threshold = Math.max(settings.minBackupMs, settings.backupAfter * median);
  // A worker's first unit includes its warm-up (backend init, kernel compilation): give it
  // FIRST_UNIT_BACKUP_FACTOR times longer before doubting it.
  return workers
    .filter((w) => w.busy && now - w.lastProgressMs > (w.meanBusyMs === undefined ? FIRST_UNIT_BACKUP_FACTOR * threshold : threshold))
    .map((w) => w.id);
}
