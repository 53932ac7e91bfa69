// The real `mtl k8s` CLI, secure by default: render names the Secret and says how to make it,
// `mtl k8s secret` makes one whose certificates work for the in-cluster names (checked with a
// real mutual-TLS handshake), and contradictory options exit 2 with a clear message.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { runCli } from '../helpers/cli-process.js';
import { parseDocs, validateDoc } from '../helpers/k8s-models.js';
import { EXAMPLES } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const JOB = path.join(EXAMPLES, 'synthetic.yaml');

void describe('mtl k8s: secure by default (CLI)', () => {
  void it('render says on stderr which Secret the pods mount and how to make it; --insecure renders plaintext and says nothing', async () => {
    const r = await runCli(['k8s', 'render', JOB, '--workers', '2', '--namespace', 'team', '--name', 'exp']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /the pods mount Secret exp-tls .*\n {2}mtl k8s secret --name exp --namespace team \| kubectl apply -f -/);
    assert.ok(!r.stdout.includes('--insecure'));
    assert.ok(!r.stdout.includes('kind: Secret'));
    const plain = await runCli(['k8s', 'render', JOB, '--workers', '2', '--insecure']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stderr, '');
    assert.ok(plain.stdout.includes('- --insecure'));
  });

  void it('exits 2 with a clear message for contradictory or unknown options, printing no objects', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--tls', 'cert-manager', '--insecure'], /--insecure contradicts --tls cert-manager/],
      [['--format', 'plain', '--queue', 'q'], /--queue needs --format jobset or trainjob/],
      [['--format', 'helm'], /--format helm: expected one of jobset, trainjob, plain/],
      [['--gang', 'volcano'], /--gang volcano: expected one of podgroup/],
      [['--format', 'trainjob', '--trainer-status-server', 'https://t:10443'], /needs --namespace/],
    ];
    for (const [args, message] of cases) {
      for (const command of ['render', 'apply']) {
        const r = await runCli(['k8s', command, JOB, '--workers', '2', ...args]);
        assert.equal(r.code, 2, `${command} ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.equal(r.stdout, '');
      }
    }
  });

  void it('every format renders through the CLI and validates', async () => {
    for (const args of [[], ['--format', 'trainjob', '--gang', 'podgroup'], ['--format', 'plain', '--gang', 'podgroup', '--tls', 'cert-manager'], ['--queue', 'research', '--priority-class', 'high']]) {
      const r = await runCli(['k8s', 'render', JOB, '--workers', '2', ...args]);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      for (const d of parseDocs(r.stdout)) validateDoc(d);
    }
  });

  void it('mtl k8s secret makes a Secret whose certificates pass a mutual-TLS handshake under the coordinator Service\'s names', async () => {
    const out = path.join(tempDir('mtl-k8s-secret-'), 'secret.yaml');
    const r = await runCli(['k8s', 'secret', '--name', 'exp', '--namespace', 'team', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600, 'private keys: owner only');
    const [secret] = parseDocs(readFileSync(out, 'utf8'));
    assert.ok(secret);
    validateDoc(secret);
    assert.equal(secret.metadata.name, 'exp-tls');
    assert.equal(secret.metadata.namespace, 'team');
    const data = Object.fromEntries(Object.entries(secret.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    assert.deepEqual(Object.keys(data).sort(), ['ca.crt', 'coordinator.crt', 'coordinator.key', 'token', 'worker.crt', 'worker.key'], 'the CA key is not kept');
    assert.ok(data.token!.length >= 32);
    const coordinator = new X509Certificate(data['coordinator.crt']!);
    for (const n of ['exp-coordinator', 'exp-coordinator.team', 'exp-coordinator.team.svc', 'exp-coordinator.team.svc.cluster.local']) assert.ok(coordinator.checkHost(n), n);

    // A real handshake: the worker's certificate against the coordinator's, by the Service's short name.
    const server = tls.createServer({ key: data['coordinator.key'], cert: data['coordinator.crt'], ca: data['ca.crt'], requestCert: true, rejectUnauthorized: true }, (s) => s.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const answer = await new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'exp-coordinator', ca: data['ca.crt'], key: data['worker.key'], cert: data['worker.crt'], checkServerIdentity: (_h, cert) => tls.checkServerIdentity('exp-coordinator', cert) }, () => undefined);
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      assert.equal(answer, 'ok');
    } finally {
      server.close();
    }
    // Two runs never share a CA.
    const again = await runCli(['k8s', 'secret', '--name', 'exp']);
    assert.equal(again.code, 0, again.stderr);
    const [other] = parseDocs(again.stdout);
    assert.notEqual((other!.data as Record<string, string>)['ca.crt'], (secret.data as Record<string, string>)['ca.crt']);
    const bad = await runCli(['k8s', 'secret', '--name', 'Bad_Name']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--name Bad_Name/);
  });
});
