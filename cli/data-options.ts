// The flags of every command that loads a job's data (run, coordinator, worker, validate, serve):
// where nats:// data comes from when the command has no --nats of its own, and the local cache
// that nats:// and http(s):// data is fetched into. Also what `mtl run` hands its local workers.
import bytes from 'bytes';
import { InvalidArgumentError, Option } from 'commander';
import { parseByteSize } from '../common/byte-size.js';
import { defaultCacheDir, DEFAULT_CACHE_MAX_BYTES, type MaterializeOptions, type NatsDataSource } from '../common/data-store/materialize.js';
import type { Logger } from '../common/logging.js';
import type { NatsSecurity } from '../common/security.js';
import type { NatsSecurityFlags } from './security-options.js';

export const DATA_NATS_ENV = 'MTL_DATA_NATS';
export const CACHE_DIR_ENV = 'MTL_CACHE_DIR';
export const CACHE_MAX_BYTES_ENV = 'MTL_CACHE_MAX_BYTES';

export interface DataFlags {
  /** NATS server holding nats:// data, for a command without --nats (or to read data from another one). */
  dataNats?: string;
  cacheDir?: string;
  cacheMaxBytes?: number;
}

/** A size: a number of bytes, or with a unit (500MB, 500MiB, 10GB; powers of 1024). */
export function byteSize(value: string): number {
  const n = parseByteSize(value);
  if (n === undefined) throw new InvalidArgumentError('expected a size such as 500MB, 500MiB or 10GB');
  return n;
}

/** The flags; `nats`: whether the command has --nats (the default data server), 'only' when that is the one (mtl serve). */
export function dataOptions(nats: boolean | 'only'): Option[] {
  return [
    ...(nats === 'only' ? [] : [new Option('--data-nats <url>', `NATS server of the job's nats:// data${nats ? ' (default: --nats)' : ''}`).env(DATA_NATS_ENV)]),
    new Option('--cache-dir <dir>', `where nats:// and http(s):// data is cached (default: ${defaultCacheDir()})`).env(CACHE_DIR_ENV),
    new Option('--cache-max-bytes <size>', `bound on the data cache; files in use are kept beyond it (default: ${bytes.format(DEFAULT_CACHE_MAX_BYTES)})`).env(CACHE_MAX_BYTES_ENV).argParser(byteSize),
  ];
}

/** How a command materializes its job's data: --data-nats, else its own --nats; the cache flags. */
export function materializeOptions(flags: DataFlags, logger: Logger, nats?: { url?: string; security?: NatsSecurity }): MaterializeOptions {
  // An empty variable (MTL_DATA_NATS=) means none.
  const url = [flags.dataNats, nats?.url].find((u) => u !== undefined && u !== '');
  const source: NatsDataSource | undefined = url === undefined ? undefined : { url, ...(nats?.security ? { security: nats.security } : {}) };
  return {
    ...(flags.cacheDir !== undefined ? { cacheDir: flags.cacheDir } : {}),
    ...(flags.cacheMaxBytes !== undefined ? { cacheMaxBytes: flags.cacheMaxBytes } : {}),
    ...(source ? { nats: source } : {}),
    logger,
  };
}

/**
 * What `mtl run` passes its local worker processes so that they read data as it does: the same
 * NATS server and cache (in their environment) and the NATS TLS flags (as arguments).
 */
export function localWorkerData(flags: DataFlags & NatsSecurityFlags, natsUrl: string | undefined): { env: Record<string, string>; args: string[] } {
  const env: Record<string, string> = {};
  const url = flags.dataNats ?? natsUrl;
  if (url !== undefined) env[DATA_NATS_ENV] = url;
  if (flags.cacheDir !== undefined) env[CACHE_DIR_ENV] = flags.cacheDir;
  if (flags.cacheMaxBytes !== undefined) env[CACHE_MAX_BYTES_ENV] = String(flags.cacheMaxBytes);
  const args: string[] = [];
  for (const [flag, value] of [['--nats-ca', flags.natsCa], ['--nats-cert', flags.natsCert], ['--nats-key', flags.natsKey], ['--nats-creds', flags.natsCreds]] as const) {
    if (value !== undefined) args.push(flag, value);
  }
  return { env, args };
}
