// Who is in the run: the worker sessions that said Hello, the workers that have gone, and the
// waiting when there are too few: at the start for `minWorkers` to join, and later, when every
// worker has gone, for one to come back, each for `waitForWorkersMs` before the run fails.
import type { Hello__Output } from '../proto/generated/mtl/v1/Hello.js';
import { WorkerLostError } from '../common/errors.js';
import type { RunContext } from './run-context.js';
import type { TrainingOutcome } from './run-records.js';
import type { WorkerSession } from './worker-session.js';

export type WorkerRecord = TrainingOutcome['workers'][number];

export interface MembershipOptions {
  /** Training starts once this many workers have joined. */
  minWorkers: number;
  /** How long to wait for workers (at the start, or when all have gone) before failing. */
  waitForWorkersMs: number;
  /** Called when the run starts or stops waiting for workers (its state shows it). */
  onWaitingChange: () => void;
}

function record(s: WorkerSession): WorkerRecord {
  return { id: s.id, name: s.name, backend: s.backend, device: s.device, unitsDone: s.unitsDone };
}

export class Membership {
  private readonly workers = new Map<string, WorkerSession>();
  private readonly gone: WorkerRecord[] = [];
  private nextWorker = 1;
  private startWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private waitingForStart = false;
  private noWorkersTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: RunContext,
    private readonly opts: MembershipOptions,
  ) {}

  newWorkerId(): string {
    return `w${this.nextWorker++}`;
  }

  get sessions(): WorkerSession[] {
    return [...this.workers.values()];
  }

  get(id: string): WorkerSession | undefined {
    return this.workers.get(id);
  }

  /** Workers that take new units: they said Hello and are not saying goodbye. */
  active(): WorkerSession[] {
    return this.sessions.filter((s) => !s.leaving && s.state === 'ready');
  }

  /** Workers that were members and are gone (left, lost, or dismissed at the end), oldest first. */
  get departed(): readonly WorkerRecord[] {
    return this.gone;
  }

  /** Every worker the run has had: the departed, then those still here. */
  everyone(): WorkerRecord[] {
    return [...this.gone, ...this.sessions.map(record)];
  }

  /** True while the run waits for workers, at the start or after all have gone. */
  get waiting(): boolean {
    return this.waitingForStart || this.noWorkersTimer !== undefined;
  }

  join(session: WorkerSession, hello: Hello__Output): void {
    this.workers.set(session.id, session);
    const step = this.ctx.step();
    this.ctx.log.info('worker joined', { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend, device: hello.device, step });
    this.ctx.emit({ type: 'worker-joined', level: 'info', message: `worker ${session.label} joined`, data: { worker: session.id, name: hello.name, peer: session.peer, backend: hello.backend, step } });
    if (this.workers.size >= this.opts.minWorkers) {
      for (const w of this.startWaiters.splice(0)) w.resolve();
    }
    if (this.noWorkersTimer !== undefined) this.stopWaiting();
  }

  /** Forgets a closed session; says whether it was lost (a death) or left, or undefined if it was no member. */
  leave(session: WorkerSession, reason: string): 'lost' | 'left' | undefined {
    if (!this.workers.delete(session.id)) return undefined;
    this.gone.push(record(session));
    const running = this.ctx.running();
    const lost = !session.leaving && running;
    const step = this.ctx.step();
    if (lost) {
      this.ctx.counters.deaths++;
      this.ctx.log.warn('worker lost', { worker: session.label, peer: session.peer, step, reason });
    } else if (running) {
      this.ctx.log.info('worker left', { worker: session.label, reason });
    } else {
      this.ctx.log.debug('worker left', { worker: session.label, reason });
    }
    this.ctx.emit({ type: lost ? 'worker-lost' : 'worker-left', level: lost ? 'warn' : 'info', message: `worker ${session.label} ${lost ? 'lost' : 'left'}: ${reason}`, data: { worker: session.id, step, reason } });
    return lost ? 'lost' : 'left';
  }

  /** Resolves once `minWorkers` workers have joined; fails the run after `waitForWorkersMs`. */
  waitForStart(): Promise<void> {
    if (this.workers.size >= this.opts.minWorkers) return Promise.resolve();
    this.ctx.log.info('waiting for workers', { have: this.workers.size, need: this.opts.minWorkers });
    this.setWaitingForStart(true);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ctx.fail(new WorkerLostError(`only ${this.workers.size} of ${this.opts.minWorkers} workers joined within ${this.opts.waitForWorkersMs} ms`));
      }, this.opts.waitForWorkersMs);
      const settle = () => {
        clearTimeout(timer);
        this.setWaitingForStart(false);
      };
      this.startWaiters.push({
        resolve: () => {
          settle();
          resolve();
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      });
    });
  }

  /** No worker takes units while the run needs them: wait (visibly) for one, or fail after waitForWorkersMs. */
  startWaiting(): void {
    if (this.noWorkersTimer !== undefined || !this.ctx.running()) return;
    const step = this.ctx.step();
    this.ctx.log.warn('no workers connected: waiting for one to join', { step, timeoutMs: this.opts.waitForWorkersMs });
    this.ctx.emit({ type: 'waiting-for-workers', level: 'warn', message: 'no workers connected', data: { step } });
    this.noWorkersTimer = setTimeout(() => {
      this.ctx.fail(new WorkerLostError(`no worker connected for ${this.opts.waitForWorkersMs} ms (step ${this.ctx.step()})`));
    }, this.opts.waitForWorkersMs);
    this.noWorkersTimer.unref();
    this.opts.onWaitingChange();
  }

  /** The run failed: whoever waits for workers stops waiting, with `error`. */
  failWaiters(error: Error): void {
    for (const w of this.startWaiters.splice(0)) w.reject(error);
  }

  /** Clears the timers (the run is over). */
  close(): void {
    if (this.noWorkersTimer !== undefined) this.stopWaiting();
  }

  private stopWaiting(): void {
    clearTimeout(this.noWorkersTimer);
    this.noWorkersTimer = undefined;
    this.opts.onWaitingChange();
  }

  private setWaitingForStart(waiting: boolean): void {
    if (this.waitingForStart === waiting) return;
    this.waitingForStart = waiting;
    this.opts.onWaitingChange();
  }
}
