// Transport security and authentication, shared by coordinator and worker: TLS material read
// from files, the gRPC credentials made from it, the join token and its constant-time check,
// NATS TLS and credentials, and the rule that a non-loopback listener needs TLS (or an
// explicit --insecure). Secrets are read here and held in memory only: nothing in this file
// logs, prints or writes them.
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { InsecureListenError, SecurityConfigError } from './errors.js';
import { tlsChannelCredentials, type TlsMaterial } from './grpc-tls.js';

export type { TlsMaterial };

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Names of the options the files came from, for error messages. */
export interface TlsOptionNames {
  ca: string;
  cert: string;
  key: string;
}

export const GRPC_TLS_OPTIONS: TlsOptionNames = { ca: '--tls-ca', cert: '--tls-cert', key: '--tls-key' };
export const NATS_TLS_OPTIONS: TlsOptionNames = { ca: '--nats-ca', cert: '--nats-cert', key: '--nats-key' };

/** Environment variable holding the join token when no --token-file is given. */
export const TOKEN_ENV = 'MTL_TOKEN';
/** Shorter tokens are refused: a join token must not be guessable. */
export const MIN_TOKEN_LENGTH = 16;

function readFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new SecurityConfigError(`cannot read ${what} ${file}: ${code}`, { cause: err });
  }
}

/**
 * Mutual-TLS material from its three files: all three or none (then undefined). A missing one
 * or an unreadable file is a SecurityConfigError naming the option or the path.
 */
export function loadTlsMaterial(files: TlsFiles, names: TlsOptionNames = GRPC_TLS_OPTIONS): TlsMaterial | undefined {
  const keys = ['ca', 'cert', 'key'] as const;
  const given = keys.filter((k) => files[k] !== undefined);
  if (given.length === 0) return undefined;
  const missing = keys.filter((k) => files[k] === undefined);
  if (missing.length > 0) {
    throw new SecurityConfigError(`${missing.map((k) => names[k]).join(' and ')} missing: mutual TLS needs all of ${names.ca}, ${names.cert} and ${names.key} (or none of them)`);
  }
  return {
    ca: readFile(files.ca!, `${names.ca} file`),
    cert: readFile(files.cert!, `${names.cert} file`),
    key: readFile(files.key!, `${names.key} file`),
  };
}

/** Server credentials: with TLS material, TLS that requires and verifies a client certificate. */
export function serverCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}

/**
 * Channel credentials for the coordinator at `address` (HOST:PORT): with TLS material, TLS
 * that verifies the server's certificate for that host (an IP address against its IP SANs)
 * and presents our certificate.
 */
export function channelCredentials(tls: TlsMaterial | undefined, address: string): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return tlsChannelCredentials(tls, address);
}

/**
 * The join token: the contents of `tokenFile` (trailing whitespace removed), else the
 * MTL_TOKEN variable, else undefined (no token).
 */
export function loadToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let token: string | undefined;
  let source: string;
  if (tokenFile !== undefined) {
    token = readFile(tokenFile, '--token-file').toString('utf8').replace(/\s+$/, '');
    source = `--token-file ${tokenFile}`;
  } else {
    token = env[TOKEN_ENV];
    source = TOKEN_ENV;
    if (token === undefined || token === '') return undefined;
  }
  if (token.length < MIN_TOKEN_LENGTH) {
    // The length is not a secret worth keeping; the token itself is never in a message.
    throw new SecurityConfigError(`the join token from ${source} is too short (${token.length} characters; at least ${MIN_TOKEN_LENGTH}): make one with \`openssl rand -base64 32\``);
  }
  if (/[\r\n]/.test(token)) throw new SecurityConfigError(`the join token from ${source} spans several lines`);
  return token;
}

/** A fresh random token (mtl run gives one to its local workers). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What the coordinator keeps of the token: its SHA-256 digest, never the token itself. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * Constant-time check of a presented token. Both sides are hashed first, so the comparison
 * runs over 32 bytes whatever the lengths, and neither the token's length nor a matching
 * prefix shows in the timing.
 */
export function tokenMatches(expected: Buffer, presented: string): boolean {
  return timingSafeEqual(expected, tokenDigest(presented));
}

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return mapped[1]!.startsWith('127.');
    const list = new net.BlockList();
    list.addAddress('::1', 'ipv6');
    return list.check(h, 'ipv6');
  }
  return false;
}

/** The host part of HOST:PORT (IPv6 in brackets keeps them). */
export function listenHost(listen: string): string {
  return listen.slice(0, listen.lastIndexOf(':'));
}

/**
 * Secure by default: a listener reachable from other machines needs TLS, or an explicit
 * --insecure that says the network is trusted. Loopback is allowed without.
 */
export function checkListenSecurity(listen: string, opts: { tls: boolean; insecure: boolean }): void {
  if (opts.tls || opts.insecure || isLoopbackHost(listenHost(listen))) return;
  throw new InsecureListenError(
    `refusing to listen on ${listen} without TLS: anyone who reaches it could read the job and the weights, ` +
      'and send gradients. Give --tls-ca, --tls-cert and --tls-key (mtl certs init DIR makes them) and a join token ' +
      `(--token-file or ${TOKEN_ENV}), listen on a loopback address, or add --insecure if the network is trusted`,
  );
}

/**
 * The same rule for the HTTP endpoints (dashboard, /metrics, probes): they are plaintext and
 * unauthenticated and show the run (names, losses, workers), so a non-loopback address needs
 * an explicit --insecure (a trusted network, or a cluster behind a NetworkPolicy). TLS on the
 * gRPC port does not extend to them.
 */
export function checkHttpListenSecurity(listen: string, opts: { insecure: boolean }): void {
  if (opts.insecure || isLoopbackHost(listenHost(listen))) return;
  throw new InsecureListenError(
    `refusing to serve the dashboard and /metrics on ${listen}: they are plain HTTP without authentication. ` +
      'Use a loopback address (such as 127.0.0.1:8080; reach it with an SSH tunnel or kubectl port-forward), or add --insecure (or, with TLS on gRPC, --http-plaintext) if the network is trusted',
  );
}

/** A NATS URL (or comma-separated list) with any user:password removed, for logs and messages. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/)[^/@,\s]*@/g, '$1***@');
}

export interface NatsSecurityFiles {
  ca?: string;
  cert?: string;
  key?: string;
  /** A NATS credentials file (user JWT and NKey seed), as made by `nsc`. */
  creds?: string;
}

/** NATS client security, read from its files at start (so an unreadable one fails at once, naming it). */
export interface NatsSecurity {
  tls?: { ca?: string; cert?: string; key?: string };
  creds?: Uint8Array;
}

/**
 * NATS TLS and credentials. Unlike the gRPC side, the CA alone is enough (the server may not
 * ask for client certificates), but a certificate needs its key and the other way round.
 */
export function loadNatsSecurity(files: NatsSecurityFiles): NatsSecurity {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const missing = files.cert === undefined ? NATS_TLS_OPTIONS.cert : NATS_TLS_OPTIONS.key;
    throw new SecurityConfigError(`${missing} missing: a NATS client certificate needs both ${NATS_TLS_OPTIONS.cert} and ${NATS_TLS_OPTIONS.key}`);
  }
  const out: NatsSecurity = {};
  if (files.ca !== undefined || files.cert !== undefined) {
    out.tls = {
      ...(files.ca !== undefined ? { ca: readFile(files.ca, `${NATS_TLS_OPTIONS.ca} file`).toString('utf8') } : {}),
      ...(files.cert !== undefined ? { cert: readFile(files.cert, `${NATS_TLS_OPTIONS.cert} file`).toString('utf8') } : {}),
      ...(files.key !== undefined ? { key: readFile(files.key, `${NATS_TLS_OPTIONS.key} file`).toString('utf8') } : {}),
    };
  }
  if (files.creds !== undefined) out.creds = new Uint8Array(readFile(files.creds, '--nats-creds file'));
  return out;
}
