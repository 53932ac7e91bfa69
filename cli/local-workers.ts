// Worker processes on this machine for `mtl run`: N children running `mtl worker`, tied to
// this process (they exit when its stdin pipe closes, i.e. when we die), stopped on close().
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { TOKEN_ENV } from '../common/security.js';

export interface LocalWorkersOptions {
  count: number;
  coordinator: string;
  backend: string;
  /** Join token the coordinator requires (passed as MTL_TOKEN). */
  token?: string;
  /** More environment variables and arguments for the workers (where their data comes from). */
  env?: Record<string, string>;
  args?: string[];
  /** Log level for the workers; they only report problems by default. */
  logLevel?: string;
  /** Called when a worker exits while we did not ask it to. */
  onUnexpectedExit?: (name: string, code: number | null, signal: NodeJS.Signals | null) => void;
}

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

export class LocalWorkers {
  private readonly children: Array<{ name: string; child: ChildProcess; exited: Promise<void> }> = [];
  private stopping = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: LocalWorkersOptions) {}

  start(): void {
    for (let i = 1; i <= this.opts.count; i++) {
      const name = `worker-${i}`;
      const child = spawn(
        process.execPath,
        [CLI, 'worker', '--coordinator', this.opts.coordinator, '--backend', this.opts.backend, '--name', name, '--exit-with-parent', ...(this.opts.args ?? [])],
        {
          stdio: ['pipe', 'inherit', 'inherit'],
          // The join token goes in the environment, not the arguments: other users can read
          // a process's arguments (ps), not its environment.
          env: { ...process.env, ...this.opts.env, MTL_LOG_LEVEL: this.opts.logLevel ?? (process.env.MTL_LOG_LEVEL || 'warn'), ...(this.opts.token !== undefined ? { [TOKEN_ENV]: this.opts.token } : {}) },
        },
      );
      const exited = new Promise<void>((resolve) => {
        child.once('exit', (code, signal) => {
          if (!this.stopping) this.opts.onUnexpectedExit?.(name, code, signal);
          resolve();
        });
        child.once('error', () => resolve());
      });
      this.children.push({ name, child, exited });
    }
  }

  /** Workers still running. */
  get running(): number {
    return this.children.filter((c) => c.child.exitCode === null && c.child.signalCode === null).length;
  }

  get names(): string[] {
    return this.children.map((c) => c.name);
  }

  get pids(): number[] {
    return this.children.map((c) => c.child.pid).filter((p): p is number => p !== undefined);
  }

  /** Waits for the workers to exit (they leave on the coordinator's Shutdown), then kills stragglers. Idempotent. */
  close(graceMs = 5000): Promise<void> {
    this.stopping = true;
    this.closing ??= (async () => {
      const all = Promise.all(this.children.map((c) => c.exited));
      const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
      if (timedOut) {
        for (const c of this.children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
        const stillUp = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 2000).unref())]);
        if (stillUp) for (const c of this.children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
        await all;
      }
    })();
    return this.closing;
  }

  /** Immediate SIGKILL of every worker (second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    for (const c of this.children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  }
}
