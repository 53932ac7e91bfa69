// Certificates and tokens for the security tests, made the way users make them: with
// `mtl certs init` and a random token in a 0600 file.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { newToken } from '../../common/security.js';
import { runCli } from './cli-process.js';
import { tempDir } from './temp-dirs.js';

export interface CertDir {
  dir: string;
  ca: string;
  file(name: string): string;
  /** --tls-ca/--tls-cert/--tls-key for `name` (coordinator, worker, ...), trusting `caDir`'s CA (default: this one). */
  flags(name: string, caDir?: CertDir): string[];
}

export async function makeCerts(extra: string[] = []): Promise<CertDir> {
  const dir = path.join(tempDir('mtl-certs-'), 'pki');
  const r = await runCli(['certs', 'init', dir, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const file = (name: string) => path.join(dir, name);
  const certs: CertDir = {
    dir,
    ca: file('ca.crt'),
    file,
    flags: (name, caDir = certs) => ['--tls-ca', caDir.ca, '--tls-cert', file(`${name}.crt`), '--tls-key', file(`${name}.key`)],
  };
  return certs;
}

export function tokenFile(token = newToken()): { token: string; file: string } {
  const file = path.join(tempDir('mtl-token-'), 'token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { token, file };
}

/** A synthetic two-task job that trains in well under a second. */
export function tinyJob(steps = 5): object {
  const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 2, dim: 10, samples: 500 });
  return {
    name: 'tiny',
    seed: 1,
    model: { trunk: [{ dense: { units: 8, activation: 'relu' } }], heads: { task0: [{ dense: { units: 1 } }], task1: [{ dense: { units: 1 } }] } },
    tasks: { task0: { loss: 'meanSquaredError', data: data(0) }, task1: { loss: 'meanSquaredError', data: data(1) } },
    training: { steps, batchSize: 16, optimizer: { name: 'adam', learningRate: 0.001 } },
  };
}
