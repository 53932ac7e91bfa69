// `mtl certs init`: certificates openssl verifies against the CA, with the names and key
// usages asked for, private keys readable by their owner only, and no CA replaced by accident.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli, startCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { makeCerts, tinyJob, tokenFile } from '../helpers/security.js';
import { freePort } from '../helpers/tcp-proxy.js';
import { tempDir } from '../helpers/temp-dirs.js';

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8' });
}

void describe('mtl certs init', () => {
  void it('makes a CA, a coordinator and worker certificates that verify, with the requested names, keys 0600', async () => {
    const certs = await makeCerts(['--coordinator-san', 'DNS:coord.example,IP:10.0.0.5', '--coordinator-san', 'mtl-coordinator', '--worker-name', 'w1', '--worker-name', 'w2', '--days', '30']);
    assert.equal(statSync(certs.dir).mode & 0o777, 0o700);
    for (const name of ['ca', 'coordinator', 'w1', 'w2']) {
      assert.equal(statSync(certs.file(`${name}.key`)).mode & 0o777, 0o600, `${name}.key`);
      assert.match(readFileSync(certs.file(`${name}.key`), 'utf8'), /BEGIN PRIVATE KEY/);
    }
    assert.match(openssl('verify', '-CAfile', certs.ca, certs.file('coordinator.crt'), certs.file('w1.crt'), certs.file('w2.crt')), /coordinator\.crt: OK\n.*w1\.crt: OK\n.*w2\.crt: OK/);
    // Purpose checks: the coordinator may serve TLS, a worker may only be a client.
    assert.match(openssl('verify', '-purpose', 'sslserver', '-CAfile', certs.ca, certs.file('coordinator.crt')), /OK/);
    assert.match(openssl('verify', '-purpose', 'sslclient', '-CAfile', certs.ca, certs.file('w1.crt')), /OK/);
    assert.throws(() => execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', certs.ca, certs.file('w1.crt')], { stdio: 'pipe' }));

    const coordinator = openssl('x509', '-in', certs.file('coordinator.crt'), '-noout', '-ext', 'subjectAltName,extendedKeyUsage', '-enddate');
    for (const name of ['DNS:localhost', 'IP Address:127.0.0.1', 'DNS:coord.example', 'IP Address:10.0.0.5', 'DNS:mtl-coordinator']) assert.ok(coordinator.includes(name), `${name} in\n${coordinator}`);
    assert.match(coordinator, /TLS Web Server Authentication/);
    const notAfter = Date.parse(/notAfter=(.*)/.exec(coordinator)![1]!);
    assert.ok(Math.abs(notAfter - Date.now() - 30 * 86400_000) < 2 * 86400_000, 'valid for --days 30');
    assert.match(openssl('x509', '-in', certs.file('w1.crt'), '-noout', '-subject'), /CN ?= ?w1/);
    assert.match(openssl('x509', '-in', certs.ca, '-noout', '-ext', 'basicConstraints'), /CA:TRUE/);
  });

  void it('refuses to replace an existing CA unless --force, and rejects bad names (exit 2)', async () => {
    const certs = await makeCerts();
    const before = readFileSync(certs.ca, 'utf8');
    const again = await runCli(['certs', 'init', certs.dir]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a CA .*--force/);
    assert.equal(readFileSync(certs.ca, 'utf8'), before);
    const forced = await runCli(['certs', 'init', certs.dir, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(readFileSync(certs.ca, 'utf8'), before);
    assert.equal(statSync(certs.file('ca.key')).mode & 0o777, 0o600);

    const bad = await runCli(['certs', 'init', `${certs.dir}-2`, '--coordinator-san', 'IP:10.0.0.300']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--coordinator-san: "IP:10\.0\.0\.300" is not an IP address/);
  });

  void it('suggests commands that work with the certificates it made: loopback names only, so a loopback address', async () => {
    const dir = path.join(tempDir('mtl-certs-hint-'), 'pki');
    const r = await runCli(['certs', 'init', dir]);
    assert.equal(r.code, 0, r.stderr);
    const coordinatorLine = /^ {2}(mtl coordinator .*)$/m.exec(r.stdout)?.[1];
    const workerLine = /^ {2}(mtl worker .*)$/m.exec(r.stdout)?.[1];
    assert.ok(coordinatorLine && workerLine, r.stdout);
    assert.match(r.stdout, /valid for this machine only .*--coordinator-san NAME/);
    // Run exactly what it printed (a free port for 7070, a real job and token file).
    const port = String(await freePort());
    const token = tokenFile();
    const args = (line: string) =>
      line
        .split(' ')
        .slice(1)
        .map((a) => a.replace(':7070', `:${port}`).replace(/^token$/, token.file).replace(/^JOB$/, writeJob(tinyJob(5))));
    const coordinator = startCli([...args(coordinatorLine), '--out', tempDir('mtl-certs-run-'), '--json']);
    await coordinator.waitFor(/listening/);
    const worker = await runCli([...args(workerLine), '--backend', 'cpu', '--connect-timeout', '10']);
    const done = await coordinator.result;
    assert.equal(done.code, 0, done.stderr);
    assert.equal(worker.code, 0, worker.stderr);
    assert.equal((JSON.parse(done.stdout) as { status: string }).status, 'succeeded');
  });

  void it('with --coordinator-san, suggests a worker address among the certificate names', async () => {
    const certs = path.join(tempDir('mtl-certs-san-'), 'pki');
    const r = await runCli(['certs', 'init', certs, '--coordinator-san', 'DNS:coord.example,IP:10.0.0.5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}mtl coordinator JOB --listen 0\.0\.0\.0:7070 /m);
    assert.match(r.stdout, /^ {2}mtl worker --coordinator coord\.example:7070 /m);
    assert.match(r.stdout, /under one of its certificate names \(coord\.example, 10\.0\.0\.5/);
  });
});
