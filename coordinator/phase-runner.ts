// Running a phase (a step's training units, an evaluation, the Fisher or lookahead units): the
// units go to the workers that take work, a dead, departed or stalled worker's units go to
// others, and the phase resolves when every unit has a valid result. A result depends only on
// its unit, never on who computed it, so none of this changes the weights.
import { WorkerLostError } from '../common/errors.js';
import { deadWorkers, stalledWorkers, type ObservedWorker } from './failure-detector.js';
import type { Membership } from './membership.js';
import type { RunContext } from './run-context.js';
import { placeUnits } from './scheduler.js';
import { AssignmentIds, isDone, Phase, WIRE_KIND, type Assignment, type PendingUnit } from './units.js';
import type { WorkerSession } from './worker-session.js';

/** Ids of earlier phases whose late results are still recognised (and dropped quietly). */
const LATE_IDS_KEPT = 4096;

/** Where a unit was last computed: the scheduler keeps it there (its data stays warm). */
function placeKey(u: PendingUnit): string {
  return `${u.kind}/${u.task}/${u.shard}`;
}

export class PhaseRunner {
  private phase: Phase | undefined;
  private readonly ids = new AssignmentIds();
  private readonly lateIds = new Map<string, { worker: string; bytes: number }>();
  private readonly placedOn = new Map<string, string>();
  private stopped: Error | undefined;

  constructor(
    private readonly ctx: RunContext,
    private readonly members: Membership,
    /** Called when a phase starts and ends (the run's state shows which kind runs). */
    private readonly onPhaseChange: () => void,
    /**
     * Sends the phase's weights to every worker that lacks them, called right after a phase's
     * units went out: a worker learns its units first and computes while the weights stream.
     */
    private readonly sendWeights: () => void = () => undefined,
  ) {}

  /** The phase running now, if any. */
  get current(): Phase | undefined {
    return this.phase;
  }

  /** A copy of an earlier phase that may still report: its worker and payload size. */
  late(unitId: string): { worker: string; bytes: number } | undefined {
    return this.lateIds.get(unitId);
  }

  /** Sends units to workers and resolves when every one has a valid result (or the step is skipped). */
  run(kind: Phase['kind'], step: number, units: PendingUnit[], version: number, blocks?: Phase['blocks']): Promise<Phase> {
    if (this.stopped) return Promise.reject(this.stopped);
    let phase!: Phase;
    return new Promise<void>((resolve, reject) => {
      phase = new Phase(kind, step, version, units, resolve, reject, this.ids);
      phase.blocks = blocks;
      this.phase = phase;
      this.onPhaseChange();
      this.dispatch(units);
      this.sendWeights();
    })
      .then(() => phase)
      .finally(() => {
        this.phase = undefined;
        // Copies still out there may report later; recognise them, so they are dropped, not rejected.
        for (const [id, bytes] of phase.ids()) {
          const assignment = phase.lookup(id)?.assignment;
          if (assignment) this.lateIds.set(id, { worker: assignment.worker, bytes });
        }
        while (this.lateIds.size > LATE_IDS_KEPT) this.lateIds.delete(this.lateIds.keys().next().value!);
        this.onPhaseChange();
      });
  }

  /** The run failed: the phase running now, and every later one, rejects with `error`. */
  stop(error: Error): void {
    this.stopped ??= error;
    this.phase?.reject(error);
  }

  /** Places `units` on the workers that take work (or leaves them waiting for one to join). */
  dispatch(units: readonly PendingUnit[]): void {
    const phase = this.phase;
    if (!phase || phase.skipped !== undefined || units.length === 0) return;
    const now = this.ctx.clock();
    const busy = phase.activeByWorker();
    const all = this.members.active();
    if (all.length === 0) {
      this.members.startWaiting();
      return; // the units stay unassigned until a worker joins
    }
    // A worker says it is alive every heartbeat, computing or not; one that has been silent for
    // several heartbeats is probably frozen or cut off: give new work to the others while there
    // are others.
    const heartbeat = this.ctx.job.fault.heartbeatMs;
    const responsive = all.filter((s) => now - s.lastSeenMs <= 3 * heartbeat);
    const sessions = responsive.length > 0 ? responsive : all;
    const byPlace = new Map(units.map((u, i) => [`u${i}`, u]));
    const placement = placeUnits(
      [...byPlace].map(([id, u]) => ({ id, key: placeKey(u) })),
      sessions.map((s) => ({ id: s.id, unitMs: s.meanUnitMs })),
      this.placedOn,
    );
    for (const [workerId, placed] of placement) {
      if (placed.length === 0) continue;
      const session = this.members.get(workerId)!;
      if (!busy.has(workerId)) session.lastProgressMs = now;
      const assigned = placed.map((id) => {
        const u = byPlace.get(id)!;
        this.placedOn.set(placeKey(u), workerId);
        return { assignment: phase.assign(u, workerId, now), unit: u };
      });
      this.sendAssign(session, assigned);
    }
  }

  /** Units nobody holds (their worker died while no one else was there) go to the workers there are. */
  dispatchOrphans(): void {
    const orphans = this.phase?.unassigned() ?? [];
    if (orphans.length > 0) this.dispatch(orphans);
  }

  /** Withdraws copies that are no longer needed; their results, if they come, are dropped. */
  cancel(assignments: readonly Assignment[], reason: string): void {
    const byWorker = new Map<string, string[]>();
    for (const a of assignments) byWorker.set(a.worker, [...(byWorker.get(a.worker) ?? []), a.id]);
    for (const [worker, ids] of byWorker) {
      this.members.get(worker)?.send({ cancel: { unitIds: ids, reason } }).catch(() => undefined);
    }
  }

  /** Everything `session` held goes back to the others (or waits for a worker to join). */
  releaseAndReassign(session: WorkerSession): void {
    if (!this.phase) {
      if (this.members.active().length === 0) this.members.startWaiting();
      return;
    }
    const orphans = this.phase.release(session.id);
    this.ctx.counters.reassignedUnits += orphans.length;
    if (orphans.length > 0) this.ctx.log.info('reassigning units', { from: session.label, units: orphans.length, step: this.ctx.step() });
    this.dispatch(orphans);
    if (this.members.active().length === 0) this.members.startWaiting();
  }

  /** Looks for dead and stalled workers: the dead are closed, the stalled get backups. */
  supervise(): void {
    const phase = this.phase;
    const now = this.ctx.clock();
    const held = phase?.activeByWorker() ?? new Map<string, Assignment[]>();
    const observed: ObservedWorker[] = this.members.sessions.map((s) => ({
      id: s.id,
      lastSeenMs: s.lastSeenMs,
      lastProgressMs: s.lastProgressMs,
      meanBusyMs: s.meanBusyMs,
      busy: held.has(s.id),
    }));
    const fault = this.ctx.job.fault;
    for (const dead of deadWorkers(observed, now, fault)) {
      const session = this.members.get(dead.id);
      if (!session) continue;
      this.ctx.log.warn('declaring worker dead', { worker: session.label, silentMs: dead.silentMs, limitMs: dead.limitMs });
      session.close(new WorkerLostError(`no message for ${dead.silentMs} ms (limit ${dead.limitMs} ms)`));
    }
    if (!phase) return;
    const idle = this.members.active().filter((s) => !held.has(s.id));
    for (const stalled of stalledWorkers(observed, now, fault)) {
      for (const assignment of held.get(stalled) ?? []) {
        const found = phase.lookup(assignment.id);
        if (!found || isDone(found.unit) || found.unit.assignments.filter((a) => a.active).length > 1) continue;
        const helper = idle.shift();
        if (!helper) return;
        const copy = phase.assign(found.unit, helper.id, now, { backup: true });
        helper.lastProgressMs = now;
        this.ctx.counters.backupUnits++;
        this.ctx.log.info('backup copy of a slow unit', { unit: assignment.id, slow: stalled, backup: helper.label, copy: copy.id });
        this.sendAssign(helper, [{ assignment: copy, unit: found.unit }]);
      }
    }
  }

  private sendAssign(session: WorkerSession, assigned: ReadonlyArray<{ assignment: Assignment; unit: PendingUnit }>): void {
    const phase = this.phase!;
    const wire = assigned.map(({ assignment: a, unit: u }) => ({
      unitId: a.id,
      kind: WIRE_KIND[u.kind],
      step: phase.step,
      task: u.task,
      shard: u.shard,
      weightsVersion: phase.version,
      shardCount: u.shardCount,
    }));
    session.send({ assign: { units: wire } }).catch(() => undefined);
  }
}
