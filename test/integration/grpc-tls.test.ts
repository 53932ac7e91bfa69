// gRPC over mutual TLS with real sockets and `mtl certs init` certificates: a worker's
// channel by IP address sends no TLS server name (no DEP0123 warning) yet still verifies the
// IP against the certificate's SANs; the coordinator's listener reports failed handshakes
// (with the peer and the reason) but not a bare port probe; the worker's TLS diagnosis tells
// the causes apart by error code.
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, service as healthService } from 'grpc-health-check';
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchTlsRefusals, type TlsRefusal } from '../../common/grpc-tls.js';
import { channelCredentials, loadTlsMaterial, serverCredentials, type TlsMaterial } from '../../common/security.js';
import { diagnoseTls } from '../../worker/tls-probe.js';
import { makeCerts, type CertDir } from '../helpers/security.js';

type HealthClient = grpc.Client & { check: (req: object, options: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void) => void };
const Health = grpc.makeClientConstructor(healthService, 'Health');

function check(address: string, creds: grpc.ChannelCredentials): Promise<string> {
  const client = new Health(address, creds) as unknown as HealthClient;
  return new Promise<string>((resolve, reject) =>
    client.check({ service: '' }, { deadline: Date.now() + 5000 }, (err, r) => (err ? reject(err) : resolve(r!.status))),
  ).finally(() => client.close());
}

async function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

void describe('gRPC over mutual TLS', () => {
  let certs: CertDir;
  let other: CertDir;
  let worker: TlsMaterial;
  let foreign: TlsMaterial;
  let server: grpc.Server;
  let port: number;
  const refusals: TlsRefusal[] = [];
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);

  before(async () => {
    [certs, other] = await Promise.all([makeCerts(), makeCerts()]);
    worker = loadTlsMaterial({ ca: certs.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') })!;
    foreign = loadTlsMaterial({ ca: certs.ca, cert: other.file('worker.crt'), key: other.file('worker.key') })!;
    const coordinator = loadTlsMaterial({ ca: certs.ca, cert: certs.file('coordinator.crt'), key: certs.file('coordinator.key') });
    server = new grpc.Server();
    new HealthImplementation({ '': 'SERVING' }).addToServer(server);
    // On every interface, so that 127.0.0.2 (an address the certificate does not name) reaches it too.
    port = await bind(server, '0.0.0.0:0', serverCredentials(coordinator));
    assert.equal(
      watchTlsRefusals(server, (r) => refusals.push(r)),
      1,
      'the listener grpc-js made is reachable',
    );
    process.on('warning', onWarning);
  });
  after(() => {
    process.off('warning', onWarning);
    server.forceShutdown();
  });

  void it('dialing an IP address: no DEP0123 warning, and the IP is still checked against the certificate', async () => {
    assert.equal(await check(`127.0.0.1:${port}`, channelCredentials(worker, `127.0.0.1:${port}`)), 'SERVING');
    // A host name is sent as the server name and checked as before.
    assert.equal(await check(`localhost:${port}`, channelCredentials(worker, `localhost:${port}`)), 'SERVING');
    // 127.0.0.2 is this machine too, but the certificate names only 127.0.0.1 and ::1.
    await assert.rejects(check(`127.0.0.2:${port}`, channelCredentials(worker, `127.0.0.2:${port}`)), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /IP: 127\.0\.0\.2 is not in the cert's list/);
      return true;
    });
    // A worker that does not trust the coordinator's CA is refused as before.
    const untrusting = loadTlsMaterial({ ca: other.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') })!;
    await assert.rejects(check(`127.0.0.1:${port}`, channelCredentials(untrusting, `127.0.0.1:${port}`)), (err: grpc.ServiceError) => /self-signed certificate in certificate chain/.test(err.details));
    await sleep(50); // warnings are emitted on the next tick
    const dep = warnings.filter((w) => (w as Error & { code?: string }).code === 'DEP0123');
    assert.deepEqual(
      dep.map((w) => w.message),
      [],
    );
  });

  void it('reports failed handshakes with the peer and the reason; a port probe or a trusted worker is no refusal', async () => {
    refusals.length = 0;
    // A plaintext client: its first bytes are no TLS record.
    const plain = net.connect(port, '127.0.0.1', () => plain.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
    plain.on('error', () => undefined);
    const plainPort = await new Promise<number>((resolve) => plain.once('connect', () => resolve(plain.localPort!)));
    const first = await until('the plaintext refusal', () => refusals[0]);
    assert.deepEqual(first, { peer: `127.0.0.1:${plainPort}`, reason: 'wrong version number', code: 'ERR_SSL_WRONG_VERSION_NUMBER' });

    // A certificate signed by another CA: refused after the handshake, with the verification result.
    const stranger = tls.connect({ host: '127.0.0.1', port, ca: foreign.ca, cert: foreign.cert, key: foreign.key, ALPNProtocols: ['h2'] });
    stranger.on('error', () => undefined);
    const strangerPort = await new Promise<number>((resolve) => stranger.once('connect', () => resolve(stranger.localPort!)));
    const second = await until('the foreign certificate refusal', () => refusals[1]);
    assert.deepEqual(second, { peer: `127.0.0.1:${strangerPort}`, reason: 'client certificate not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)', code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });

    // A TCP probe that connects and hangs up, then a trusted worker: nothing more is reported.
    await new Promise<void>((resolve) => {
      const probe = net.connect(port, '127.0.0.1', () => probe.end());
      probe.on('close', () => resolve());
    });
    assert.equal(await check(`127.0.0.1:${port}`, channelCredentials(worker, `127.0.0.1:${port}`)), 'SERVING');
    await sleep(200);
    assert.equal(refusals.length, 2, JSON.stringify(refusals));
    plain.destroy();
    stranger.destroy();
  });

  void it("the worker's TLS diagnosis: a plaintext coordinator, a refused certificate, an untrusted coordinator", async () => {
    const plaintext = new grpc.Server();
    new HealthImplementation({ '': 'SERVING' }).addToServer(plaintext);
    const plainPort = await bind(plaintext, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    try {
      assert.match((await diagnoseTls(`127.0.0.1:${plainPort}`, worker)) ?? '', /^TLS handshake failed \(ERR_SSL_\w+\): does the coordinator use TLS\?$/);
      assert.equal(await diagnoseTls(`127.0.0.1:${plainPort}`, undefined), undefined, 'plaintext on both sides: nothing TLS can explain');
    } finally {
      plaintext.forceShutdown();
    }
    assert.match((await diagnoseTls(`127.0.0.1:${port}`, foreign)) ?? '', /it does not accept our certificate/);
    const untrusting = loadTlsMaterial({ ca: other.ca, cert: certs.file('worker.crt'), key: certs.file('worker.key') })!;
    assert.equal(await diagnoseTls(`127.0.0.1:${port}`, untrusting), 'TLS: self-signed certificate in certificate chain (check --tls-ca, --tls-cert and --tls-key)');
    assert.equal(await diagnoseTls(`127.0.0.1:${port}`, worker), undefined, 'the right material: the handshake succeeds');
  });
});
