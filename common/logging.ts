// A small structured logger: text lines for people, JSON lines for machines, always on stderr
// so that stdout stays free for results (`mtl run --json`).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

export interface LoggerOptions {
  component: string;
  /** Default: the MTL_LOG_LEVEL environment variable, else `defaultLevel`. */
  level?: LogLevel;
  /** The level when neither `level` nor MTL_LOG_LEVEL gives one (`--quiet` makes it warn). Default `info`. */
  defaultLevel?: LogLevel;
  format?: LogFormat;
  /** Default: process.stderr. */
  write?: (line: string) => void;
  /** Called before and after each line, e.g. to clear and redraw a progress bar. */
  around?: { before(): void; after(): void };
}

function envLevel(): LogLevel | undefined {
  const v = process.env.MTL_LOG_LEVEL;
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : undefined;
}

function formatValue(v: string | number | boolean | null): string {
  if (typeof v === 'string') return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  return String(v);
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? envLevel() ?? options.defaultLevel ?? 'info';
  const format = options.format ?? 'text';
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const make = (component: string): Logger => {
    const emit = (lvl: LogLevel, message: string, fields?: LogFields) => {
      if (RANK[lvl] < RANK[level]) return;
      const time = new Date().toISOString();
      let line: string;
      if (format === 'json') {
        line = JSON.stringify({ time, level: lvl, component, message, ...fields }) + '\n';
      } else {
        const extra = Object.entries(fields ?? {})
          .filter((e): e is [string, string | number | boolean | null] => e[1] !== undefined)
          .map(([k, v]) => ` ${k}=${formatValue(v)}`)
          .join('');
        line = `${time} ${lvl.toUpperCase().padEnd(5)} ${component}: ${message}${extra}\n`;
      }
      options.around?.before();
      write(line);
      options.around?.after();
    };
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (sub) => make(`${component}/${sub}`),
    };
  };
  return make(options.component);
}

/** A logger that drops everything (library use, tests that do not read logs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
