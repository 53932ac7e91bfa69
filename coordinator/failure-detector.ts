// When is a worker dead, and when is it merely slow? Pure functions of what the coordinator
// observed and the clock, so tests can drive them with fake times.
//
// A worker computes in a thread of its own and keeps talking while it computes: heartbeats
// every `fault.heartbeatMs` whether it computes or not (protocol 2). So silence means the same
// thing at any time, and its limit no longer depends on how long a unit takes. The rules:
// - dead: silent for `deadAfterMs` (busy or idle);
// - stalled: holds work but has not finished a unit for `backupAfter` × the median computation time
//   (and at least `minBackupMs`; FIRST_UNIT_BACKUP_FACTOR times that for a worker's first
//   unit, which includes its warm-up): its units get backup copies on idle workers. A worker's
//   computation time (`meanBusyMs`) is the wall time of one computation (units that share a
//   batch are computed together, and the whole group counts).

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
  const limitMs = settings.deadAfterMs;
  const out: Array<{ id: string; silentMs: number; limitMs: number }> = [];
  for (const w of workers) {
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
