// `mtl certs init DIR`: a private CA and the certificates that mutual TLS between coordinator
// and workers needs. Made with the openssl command-line tool rather than a JavaScript X.509
// library: openssl is present wherever a TLS stack is, is maintained by the people behind the
// TLS implementation Node itself links, and costs no new dependency. Keys are EC P-256.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { errorMessage, SecurityConfigError } from '../common/errors.js';

export interface CertsInitOptions {
  coordinatorSan: string[];
  workerName: string[];
  days: number;
  force: boolean;
}

/** Always in the coordinator certificate: workers on the same machine connect through these. */
export const DEFAULT_COORDINATOR_SANS = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];

function openssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { encoding: 'utf8', maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('openssl not found on PATH: mtl certs init needs it (Debian/Ubuntu: apt-get install openssl)'));
      } else {
        reject(new Error(`openssl ${args[0] ?? ''} failed: ${stderr.trim() || errorMessage(err)}`));
      }
    });
    // No input: close its stdin (it may have exited already, so a broken pipe is fine).
    child.stdin?.on('error', () => undefined);
    child.stdin?.end();
  });
}

/**
 * `DNS:name`, `IP:addr` or a bare name or address (an address becomes IP:, anything else DNS:),
 * comma-separated. Only characters that can appear in host names and addresses are allowed,
 * so nothing can reach the openssl configuration but a SAN.
 */
export function parseSans(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values.flatMap((v) => v.split(','))) {
    const v = raw.trim();
    if (v === '') continue;
    const m = /^(dns|ip):(.*)$/i.exec(v);
    const kind = m ? m[1]!.toUpperCase() : net.isIP(v) ? 'IP' : 'DNS';
    const value = m ? m[2]! : v;
    if (kind === 'IP' ? net.isIP(value) === 0 : !/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(value)) {
      throw new SecurityConfigError(`--coordinator-san: ${JSON.stringify(v)} is not ${kind === 'IP' ? 'an IP address' : 'a DNS name'} (expected DNS:name or IP:address)`);
    }
    const san = `${kind}:${value}`;
    if (!out.includes(san)) out.push(san);
  }
  return out;
}

function checkWorkerName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name) || name === 'ca' || name === 'coordinator') {
    throw new SecurityConfigError(`--worker-name ${JSON.stringify(name)}: expected letters, digits, '.', '_' and '-' (at most 64), other than ca and coordinator`);
  }
  return name;
}

/** Writes a private key readable by its owner only (0600), also when it replaces a file. */
function writeKey(file: string, pem: string): void {
  rmSync(file, { force: true });
  writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
}

async function newKey(file: string): Promise<void> {
  writeKey(file, await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']));
}

export interface CertsInitResult {
  dir: string;
  files: string[];
  coordinatorSans: string[];
}

export async function certsInit(dir: string, opts: CertsInitOptions): Promise<CertsInitResult> {
  if (!Number.isInteger(opts.days) || opts.days <= 0) throw new SecurityConfigError('--days must be a positive integer');
  const sans = [...DEFAULT_COORDINATOR_SANS, ...parseSans(opts.coordinatorSan).filter((s) => !DEFAULT_COORDINATOR_SANS.includes(s))];
  const workers = [...new Set((opts.workerName.length > 0 ? opts.workerName : ['worker']).map(checkWorkerName))];
  const file = (name: string) => path.join(dir, name);
  if (!opts.force && (existsSync(file('ca.key')) || existsSync(file('ca.crt')))) {
    throw new SecurityConfigError(`${dir} already holds a CA (ca.crt / ca.key): refusing to replace it, since every certificate signed by it would stop being trusted; --force replaces it`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const work = mkdtempSync(path.join(os.tmpdir(), 'mtl-certs-'));
  const days = String(opts.days);
  try {
    await newKey(file('ca.key'));
    // A random suffix: two CAs made by this command never share a subject name.
    await openssl([
      'req', '-x509', '-new', '-key', file('ca.key'), '-sha256', '-days', days,
      '-subj', `/O=mtl-orchestrator/CN=mtl-orchestrator CA ${randomBytes(4).toString('hex')}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', file('ca.crt'),
    ]);
    const sign = async (name: string, commonName: string, extensions: string[]) => {
      await newKey(file(`${name}.key`));
      const csr = await openssl(['req', '-new', '-key', file(`${name}.key`), '-subj', `/O=mtl-orchestrator/CN=${commonName}`]);
      writeFileSync(path.join(work, `${name}.csr`), csr);
      writeFileSync(path.join(work, `${name}.ext`), [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
        ...extensions,
      ].join('\n') + '\n');
      await openssl([
        'x509', '-req', '-in', path.join(work, `${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
        '-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', days, '-sha256',
        '-extfile', path.join(work, `${name}.ext`), '-out', file(`${name}.crt`),
      ]);
    };
    // The coordinator is a TLS server to workers, and may use the same certificate as a client of NATS.
    await sign('coordinator', 'coordinator', ['extendedKeyUsage=serverAuth,clientAuth', `subjectAltName=${sans.join(',')}`]);
    for (const w of workers) await sign(w, w, ['extendedKeyUsage=clientAuth']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const files = ['ca.crt', 'ca.key', 'coordinator.crt', 'coordinator.key', ...workers.flatMap((w) => [`${w}.crt`, `${w}.key`])];
  return { dir, files, coordinatorSans: sans };
}

/**
 * The commands to suggest: workers verify the coordinator's name against its certificate, so
 * the address they use must be one of its names. Without extra names the certificate covers
 * this machine only, and so does the suggestion.
 */
export function usageHint(sans: readonly string[]): { listen: string; coordinator: string; note: string } {
  const extra = sans.filter((s) => !DEFAULT_COORDINATOR_SANS.includes(s)).map((s) => s.slice(s.indexOf(':') + 1));
  if (extra.length === 0) {
    return {
      listen: '127.0.0.1:7070',
      coordinator: 'localhost:7070',
      note:
        'this coordinator certificate is valid for this machine only (localhost, 127.0.0.1, ::1). For workers on other machines, make the ' +
        'certificates with --coordinator-san NAME (the host name or address they will give to --coordinator; with --force to replace these) ' +
        'and listen on 0.0.0.0:7070',
    };
  }
  const host = extra.find((h) => !h.startsWith('*.')) ?? 'HOST';
  return {
    listen: '0.0.0.0:7070',
    coordinator: `${net.isIPv6(host) ? `[${host}]` : host}:7070`,
    note: `workers must reach the coordinator under one of its certificate names (${extra.join(', ')}, or localhost on this machine)`,
  };
}

/** `mtl certs init DIR`: 0 done, 1 openssl failed, 2 bad usage (or a CA already there). */
export async function certsInitCommand(dir: string, opts: CertsInitOptions): Promise<number> {
  let result: CertsInitResult;
  try {
    result = await certsInit(dir, opts);
  } catch (err) {
    process.stderr.write(`mtl certs init: ${errorMessage(err)}\n`);
    return err instanceof SecurityConfigError ? 2 : 1;
  }
  const p = (f: string) => path.join(result.dir, f);
  const worker = result.files.find((f) => f.endsWith('.crt') && f !== 'ca.crt' && f !== 'coordinator.crt')!.replace(/\.crt$/, '');
  const { listen, coordinator, note } = usageHint(result.coordinatorSans);
  process.stdout.write(
    [
      `wrote ${result.files.join(', ')} to ${result.dir} (keys mode 0600; keep ca.key offline once you have made what you need)`,
      `coordinator certificate names: ${result.coordinatorSans.join(', ')}`,
      'use them with a join token (e.g. openssl rand -base64 32 > token; chmod 600 token):',
      `  mtl coordinator JOB --listen ${listen} --tls-ca ${p('ca.crt')} --tls-cert ${p('coordinator.crt')} --tls-key ${p('coordinator.key')} --token-file token`,
      `  mtl worker --coordinator ${coordinator} --tls-ca ${p('ca.crt')} --tls-cert ${p(`${worker}.crt`)} --tls-key ${p(`${worker}.key`)} --token-file token`,
      note,
      '',
    ].join('\n'),
  );
  return 0;
}
