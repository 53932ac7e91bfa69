// The control plane over TLS: a real nats-server that requires TLS and verifies client
// certificates (made by mtl certs init). The right CA and client certificate connect; without
// them the connection fails with a message that points at the flags.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlPlaneError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { ControlPlane } from '../../common/control/plane.js';
import { loadNatsSecurity } from '../../common/security.js';
import { runCli } from '../helpers/cli-process.js';
import { NatsServer } from '../helpers/nats-server.js';
import { makeCerts, type CertDir } from '../helpers/security.js';

void describe('NATS over mutual TLS', () => {
  let server: NatsServer;
  let certs: CertDir;
  let other: CertDir;
  before(async () => {
    [certs, other] = await Promise.all([makeCerts(), makeCerts()]);
    // The coordinator certificate serves TLS for 127.0.0.1, so it can be the NATS server's here.
    server = await NatsServer.start({ tls: { cert: certs.file('coordinator.crt'), key: certs.file('coordinator.key'), ca: certs.ca, verify: true } });
  });
  after(() => server.stop());

  const connect = (files: Parameters<typeof loadNatsSecurity>[0]) =>
    ControlPlane.connect({ url: server.url, name: 'tls-test', logger: silentLogger, connectTimeoutMs: 3000, security: loadNatsSecurity(files) });

  void it('connects with the CA and a client certificate, and JetStream works', async () => {
    const plane = await connect({ ca: certs.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') });
    try {
      await plane.ensureStreams();
      const kv = await plane.registryKv();
      await kv.put('probe', 'ok');
      assert.equal((await kv.get('probe'))?.string(), 'ok');
    } finally {
      await plane.close();
    }
  });

  void it('fails clearly without TLS, without a client certificate, or with one from another CA', async () => {
    for (const [what, files] of [
      ['no TLS', {}],
      ['CA but no client certificate', { ca: certs.ca }],
      ['client certificate of another CA', { ca: certs.ca, cert: other.file('worker.crt'), key: other.file('worker.key') }],
      ['server not trusted', { ca: other.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') }],
    ] as const) {
      // Every one of them points at the flags: told apart by error class and TLS error code
      // (a refused client certificate shows as a timeout: the server hangs up before its greeting).
      await assert.rejects(
        connect(files),
        (err: unknown) => err instanceof ControlPlaneError && /^cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*\(.*--nats-ca.*\)$/.test(err.message),
        what,
      );
    }
  });

  void it('the CLI flags: --nats-ca/--nats-cert/--nats-key connect; a missing key exits 2', async () => {
    const ok = await runCli(['status', '--nats', server.url, '--nats-ca', certs.ca, '--nats-cert', certs.file('worker.crt'), '--nats-key', certs.file('worker.key')]);
    assert.equal(ok.code, 0, ok.stderr);
    const plain = await runCli(['status', '--nats', server.url]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*--nats-ca/);
    const half = await runCli(['status', '--nats', server.url, '--nats-cert', certs.file('worker.crt')]);
    assert.equal(half.code, 2);
    assert.match(half.stderr, /--nats-key missing/);
  });
});
