// What the long-running commands share: their common options, their logger (kept out of the
// way of the progress line), and how they meet SIGINT/SIGTERM. Free of tfjs and of the
// coordinator, so that `mtl worker`, whose computing happens in a thread, starts without them.
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../common/logging.js';
import type { ProgressReporter } from './progress.js';

export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export interface CommonOptions {
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  /** --quiet: no progress, and warnings and errors only unless --log-level or MTL_LOG_LEVEL says otherwise. */
  quiet?: boolean;
}

export function logger(component: string, opts: CommonOptions, progress?: ProgressReporter): Logger {
  return createLogger({
    component,
    level: opts.logLevel,
    ...(opts.quiet === true ? { defaultLevel: 'warn' as const } : {}),
    format: opts.logFormat,
    around: progress ? { before: () => progress.clear(), after: () => progress.redraw() } : undefined,
  });
}

/** Runs `body` until done or until SIGINT/SIGTERM; `onSignal` asks it to stop. Returns the signal, if any. */
export function trapSignals(onSignal: (signal: NodeJS.Signals) => void, onSecond: () => void): { signal: () => NodeJS.Signals | undefined; release: () => void } {
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received) {
      onSecond();
      process.exit(SIGNAL_EXIT[sig] ?? 1);
    }
    received = sig;
    onSignal(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: () => received,
    release: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
