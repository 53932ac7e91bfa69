// Mutual TLS and the join token between real `mtl coordinator` and `mtl worker` processes:
// a worker without a client certificate, with one from another CA, without or with a wrong
// token cannot join (and learns nothing); a correct one trains to completion. The token is
// never printed nor written to the run directory. A non-loopback listener needs TLS or
// --insecure.
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import type { RunStatus__Output } from '../../proto/generated/mtl/v1/RunStatus.js';
import { CHANNEL_OPTIONS, protocol } from '../../common/protocol.js';
import { channelCredentials, loadTlsMaterial, newToken } from '../../common/security.js';
import { runCli, startCli, type CliResult } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { makeCerts, tinyJob, tokenFile, type CertDir } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

function getStatus(address: string, creds: grpc.ChannelCredentials, token?: string): Promise<RunStatus__Output> {
  const client = new (protocol().mtl.v1.Coordinator)(address, creds, CHANNEL_OPTIONS);
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return new Promise<RunStatus__Output>((resolve, reject) => client.getStatus({}, metadata, (err, value) => (err ? reject(err) : resolve(value!)))).finally(() => client.close());
}

void describe('mutual TLS and the join token', () => {
  let certs: CertDir;
  let other: CertDir;
  before(async () => {
    [certs, other] = await Promise.all([makeCerts(), makeCerts()]);
  });

  void it('refuses workers without a client certificate, with one from another CA, without or with a wrong token; a correct one trains', async () => {
    const { token, file } = tokenFile();
    const job = writeJob(tinyJob());
    const out = tempDir('mtl-secure-run-');
    const coordinator = startCli(['coordinator', job, '--listen', '127.0.0.1:0', '--out', out, '--json', ...certs.flags('coordinator'), '--token-file', file]);
    const address = (await coordinator.waitFor(/listening address=(\S+)/))[1]!;
    const worker = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(['worker', '--coordinator', address, '--backend', 'cpu', '--connect-timeout', '3', ...args], env);
    const refused = (r: CliResult, pattern: RegExp, what: string) => {
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, pattern, what);
      assert.doesNotMatch(r.stderr, /joined run/, what);
    };

    // No client certificate (plaintext), a certificate of another CA, and a worker that does
    // not trust the coordinator's CA: the TLS handshake fails, nothing reaches the run.
    const [plain, foreignCert, foreignCa] = await Promise.all([
      worker(['--token-file', file]),
      worker(['--tls-ca', certs.ca, '--tls-cert', other.file('worker.crt'), '--tls-key', other.file('worker.key'), '--token-file', file]),
      worker([...certs.flags('worker', other), '--token-file', file]),
    ]);
    refused(plain, /cannot reach coordinator at .*the coordinator uses TLS: give --tls-ca, --tls-cert and --tls-key/, 'no client certificate');
    refused(foreignCert, /cannot reach coordinator at .*it does not accept our certificate/, 'certificate from another CA');
    refused(foreignCa, /cannot reach coordinator at .*TLS: self-signed certificate in certificate chain/, 'coordinator certificate from an untrusted CA');

    // The right certificate but a wrong token, or none: refused at Hello, at once, without retrying.
    const wrongToken = newToken();
    const started = Date.now();
    const [wrong, none] = await Promise.all([worker(certs.flags('worker'), { MTL_TOKEN: wrongToken }), worker(certs.flags('worker'), { MTL_TOKEN: '' })]);
    refused(wrong, /the coordinator refused this worker: authentication failed/, 'wrong token');
    refused(none, /the coordinator refused this worker: authentication failed/, 'no token');
    assert.ok(Date.now() - started < 20_000, 'refused workers do not keep retrying');

    // GetStatus needs the token too, and says the same as to a worker.
    const tls = channelCredentials(loadTlsMaterial({ ca: certs.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') }), address);
    await assert.rejects(getStatus(address, tls), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && err.details === 'AUTHENTICATION_FAILED: authentication failed');
    await assert.rejects(getStatus(address, tls, wrongToken), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED && err.details === 'AUTHENTICATION_FAILED: authentication failed');
    const status = await getStatus(address, tls, token);
    assert.equal(status.state, 'waiting-for-workers', 'no refused worker joined');
    assert.equal(status.workers.length, 0);
    assert.equal(Number(status.faults.authFailures), 4);

    // Certificate and token right: trains to completion.
    const good = await worker([...certs.flags('worker'), '--token-file', file, '--name', 'trusted']);
    const c = await coordinator.result;
    assert.equal(good.code, 0, good.stderr);
    assert.equal(c.code, 0, c.stderr);
    const summary = JSON.parse(c.stdout.trim()) as { status: string; workerDetails: Array<{ name: string }>; faults: { authFailures: number; tlsFailures: number } };
    assert.equal(summary.status, 'succeeded');
    assert.deepEqual(summary.workerDetails.map((w) => w.name), ['trusted']);
    assert.equal(summary.faults.authFailures, 4, 'two workers and two GetStatus calls were refused');

    // The coordinator's TLS refusals (the plaintext worker, the certificate of another CA) are
    // logged with the peer's address and the reason, and counted. Each refused worker retried
    // its handshake until --connect-timeout, so there are at least as many as such workers, a
    // number that depends on gRPC's reconnection timing. (The worker that did not trust the
    // coordinator refused on its own side: that is in its log, above.)
    const handshakes = c.stderr.split('\n').filter((l) => l.includes('TLS handshake failed'));
    for (const line of handshakes) assert.match(line, /WARN .*TLS handshake failed peer=127\.0\.0\.1:\d+ reason="[^"]+" code=\S+ failures=\d+/);
    assert.ok(handshakes.some((l) => /reason="wrong version number" code=ERR_SSL_WRONG_VERSION_NUMBER/.test(l)), `the plaintext worker's refusal is logged:\n${c.stderr}`);
    assert.ok(handshakes.some((l) => /reason="client certificate not trusted \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)"/.test(l)), `the refusal of the other CA's certificate is logged:\n${c.stderr}`);
    assert.ok(summary.faults.tlsFailures >= 2, `two workers failed their handshakes (${summary.faults.tlsFailures})`);
    assert.equal(summary.faults.tlsFailures, handshakes.length, 'every counted failure was logged');
    assert.ok(Number(status.faults.tlsFailures) >= 2, 'GetStatus reports the TLS failures too');
    // A worker dialing TLS by IP address sends no server name, so Node does not warn (DEP0123).
    assert.doesNotMatch(good.stderr, /DEP0123|TLS ServerName to an IP address/, good.stderr);

    // Refusals are logged with the peer's address, and say nothing of what was sent.
    const refusals = c.stderr.split('\n').filter((l) => l.includes('authentication failed'));
    assert.equal(refusals.length, 4, c.stderr);
    for (const line of refusals) assert.match(line, /WARN .*authentication failed peer=\S*127\.0\.0\.1:\d+ request=(Hello|GetStatus) reason="(no|wrong) join token"/);

    // Neither token is printed or written anywhere.
    const texts = [c.stdout, c.stderr, good.stdout, good.stderr, wrong.stderr, none.stderr, ...filesUnder(out).map((f) => readFileSync(f, 'latin1'))];
    assert.ok(filesUnder(out).some((f) => f.endsWith('summary.json')));
    for (const secret of [token, wrongToken]) assert.ok(!texts.some((t) => t.includes(secret)), 'a token leaked into the output or the run directory');
  });

  void it('mtl run gives its local workers a token of their own: a foreign local worker cannot join', async (t) => {
    const out = tempDir('mtl-secure-local-');
    const run = startCli(['run', writeJob(tinyJob(400)), '--workers', '1', '--backend', 'cpu', '--out', out, '--json']);
    const address = (await run.waitFor(/listening address=(\S+)/))[1]!;
    const intruder = await runCli(['worker', '--coordinator', address, '--backend', 'cpu', '--connect-timeout', '3']);
    const r = await run.result;
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim()) as { workers: number; wallTimeS: number; faults: { authFailures: number } };
    t.diagnostic(`run took ${summary.wallTimeS.toFixed(1)} s; auth failures ${summary.faults.authFailures}`);
    assert.equal(summary.workers, 1);
    // The intruder was refused, or (on a very fast machine) found the run already over.
    assert.equal(intruder.code, 1, intruder.stderr);
    if (summary.faults.authFailures === 1) assert.match(intruder.stderr, /authentication failed/);
    else assert.equal(summary.faults.authFailures, 0);
  });

  void it('secure by default: a non-loopback listen address needs TLS or --insecure; bad TLS flags exit 2', async () => {
    const job = writeJob(tinyJob());
    const plain = await runCli(['coordinator', job, '--listen', '0.0.0.0:0', '--out', tempDir('mtl-insecure-')]);
    assert.equal(plain.code, 2);
    assert.match(plain.stderr, /refusing to listen on 0\.0\.0\.0:0 without TLS.*--tls-ca, --tls-cert and --tls-key.*--insecure/s);

    const partial = await runCli(['coordinator', job, '--listen', '0.0.0.0:0', '--tls-ca', certs.ca]);
    assert.equal(partial.code, 2);
    assert.match(partial.stderr, /--tls-cert and --tls-key missing/);
    const unreadable = await runCli(['worker', '--coordinator', '127.0.0.1:1', ...certs.flags('worker').slice(0, 4), '--tls-key', '/no/such/worker.key']);
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /cannot read --tls-key file \/no\/such\/worker\.key: ENOENT/);

    for (const extra of [['--insecure'], certs.flags('coordinator')]) {
      const c = startCli(['coordinator', job, '--listen', '0.0.0.0:0', '--out', tempDir('mtl-any-'), ...extra]);
      await c.waitFor(/listening address=0\.0\.0\.0:\d+/);
      c.child.kill('SIGTERM');
      const r = await c.result;
      assert.ok(r.code === 143 || r.signal === 'SIGTERM', r.stderr);
    }
  });
  void it('the HTTP endpoints on a pod address with TLS on gRPC: refused unless --http-plaintext, then /healthz answers in plain HTTP', async () => {
    const job = writeJob(tinyJob());
    const refused = await runCli(['coordinator', job, '--listen', '0.0.0.0:0', '--http', '0.0.0.0:0', '--out', tempDir('mtl-http-'), ...certs.flags('coordinator')]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /refusing to serve the dashboard and \/metrics on 0\.0\.0\.0:0.*--http-plaintext/);

    // What the rendered Kubernetes coordinator runs: mutual TLS on gRPC, probes over plain HTTP.
    const c = startCli(['coordinator', job, '--listen', '0.0.0.0:0', '--http', '0.0.0.0:0', '--http-plaintext', '--out', tempDir('mtl-http-'), ...certs.flags('coordinator')]);
    const [, port] = await c.waitFor(/dashboard http:\/\/[^:]+:(\d+)\//);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    await c.waitFor(/listening address=0\.0\.0\.0:\d+/);
    c.child.kill('SIGTERM');
    const r = await c.result;
    assert.ok(r.code === 143 || r.signal === 'SIGTERM', r.stderr);
  });
});
