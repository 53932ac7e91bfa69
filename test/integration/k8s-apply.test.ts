// `mtl k8s apply` against a local HTTPS server that answers as the Kubernetes API does for
// discovery, GET and server-side apply (PATCH application/apply-patch+yaml), recording each
// request: the run's Secret is made before the first workload when it is missing and kept when
// it exists, and the JobSet (a custom resource) is applied like any built-in kind.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { EXAMPLES } from '../helpers/paths.js';
import { makeCerts } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface Request {
  method: string;
  path: string;
  contentType?: string;
  body?: { kind?: string; metadata?: { name?: string }; data?: Record<string, string> };
}

// What this API server serves: group/version → resources (name, kind, namespaced).
const RESOURCES: Record<string, Array<[string, string]>> = {
  '/api/v1': [['configmaps', 'ConfigMap'], ['persistentvolumeclaims', 'PersistentVolumeClaim'], ['services', 'Service'], ['secrets', 'Secret']],
  '/apis/apps/v1': [['statefulsets', 'StatefulSet']],
  '/apis/jobset.x-k8s.io/v1alpha2': [['jobsets', 'JobSet']],
  '/apis/networking.k8s.io/v1': [['networkpolicies', 'NetworkPolicy']],
};

void describe('mtl k8s apply (server-side apply through the API)', () => {
  let server: https.Server;
  let requests: Request[] = [];
  const stored = new Map<string, unknown>();
  let kubeconfig = '';

  before(async () => {
    const certs = await makeCerts();
    server = https.createServer({ key: readFileSync(certs.file('coordinator.key')), cert: readFileSync(certs.file('coordinator.crt')) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const text = Buffer.concat(chunks).toString('utf8');
        const r: Request = { method: req.method ?? '', path: url.pathname, ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}), ...(text ? { body: JSON.parse(text) as Request['body'] } : {}) };
        requests.push(r);
        const send = (code: number, body: unknown) => {
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        };
        const list = RESOURCES[url.pathname];
        if (req.method === 'GET' && list) {
          return send(200, { kind: 'APIResourceList', groupVersion: url.pathname.replace(/^\/apis?\//, ''), resources: list.map(([name, kind]) => ({ name, kind, namespaced: true, singularName: '', verbs: ['get', 'patch'] })) });
        }
        if (req.method === 'GET') {
          return stored.has(url.pathname) ? send(200, stored.get(url.pathname)) : send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `${url.pathname} not found`, reason: 'NotFound', code: 404 });
        }
        if (req.method === 'PATCH') {
          stored.set(url.pathname, r.body);
          return send(200, r.body);
        }
        send(405, { kind: 'Status', status: 'Failure', code: 405 });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kubeconfig = path.join(tempDir('mtl-kube-'), 'config');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{ name: local, cluster: { server: "https://127.0.0.1:${(server.address() as AddressInfo).port}", certificate-authority: "${certs.ca}" } }]`,
        'users: [{ name: me, user: { token: t } }]',
        'contexts: [{ name: local, context: { cluster: local, user: me, namespace: team } }]',
        'current-context: local',
        '',
      ].join('\n'),
    );
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const patches = () => requests.filter((r) => r.method === 'PATCH');

  void it('makes the missing Secret before the JobSet, applies every object server-side, and keeps the Secret on the next apply', async () => {
    requests = [];
    const r = await runCli(['k8s', 'apply', path.join(EXAMPLES, 'synthetic.yaml'), '--workers', '2', '--kubeconfig', kubeconfig]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(patches().map((p) => p.path), [
      '/api/v1/namespaces/team/configmaps/mtl-job',
      '/api/v1/namespaces/team/persistentvolumeclaims/mtl-runs',
      '/api/v1/namespaces/team/services/mtl-coordinator',
      '/api/v1/namespaces/team/services/mtl-nats',
      '/apis/apps/v1/namespaces/team/statefulsets/mtl-nats',
      '/api/v1/namespaces/team/secrets/mtl-tls',
      '/apis/jobset.x-k8s.io/v1alpha2/namespaces/team/jobsets/mtl',
      '/apis/networking.k8s.io/v1/namespaces/team/networkpolicies/mtl-run-pods-only',
    ]);
    for (const p of patches()) assert.equal(p.contentType, 'application/apply-patch+yaml', p.path);
    const secret = patches().find((p) => p.path.endsWith('/secrets/mtl-tls'))!.body!;
    assert.equal(secret.kind, 'Secret');
    assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca.crt', 'coordinator.crt', 'coordinator.key', 'token', 'worker.crt', 'worker.key']);
    // The certificate names the namespace the context gives.
    assert.ok(new X509Certificate(Buffer.from(secret.data!['coordinator.crt']!, 'base64')).checkHost('mtl-coordinator.team.svc'));
    assert.match(r.stdout, /secret\/mtl-tls created/);
    assert.match(r.stdout, /jobset\/mtl serverside-applied/);

    requests = [];
    const again = await runCli(['k8s', 'apply', path.join(EXAMPLES, 'synthetic.yaml'), '--workers', '2', '--kubeconfig', kubeconfig]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /secret\/mtl-tls exists \(kept\)/);
    assert.ok(!patches().some((p) => p.path.includes('/secrets/')), 'an existing Secret is never replaced: running pods use it');
  });

  void it('--insecure applies no Secret', async () => {
    requests = [];
    const r = await runCli(['k8s', 'apply', path.join(EXAMPLES, 'synthetic.yaml'), '--workers', '2', '--kubeconfig', kubeconfig, '--insecure', '--name', 'open']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!requests.some((p) => p.path.includes('/secrets/')));
    assert.ok(patches().some((p) => p.path.endsWith('/jobsets/open')));
  });
});
