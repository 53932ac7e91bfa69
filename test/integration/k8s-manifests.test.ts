// deploy/k8s composed with the real kubectl kustomize, and the real `mtl k8s` CLI: every
// object passes the Kubernetes schemas offline, and each kustomize directory is exactly what
// `mtl k8s render` gives for the same settings, so either path deploys the same thing.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { byKindName, kustomize, parseDocs, validateDoc, type K8sDoc } from '../helpers/k8s-models.js';
import { EXAMPLES, REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const K8S_DIR = path.join(REPO_ROOT, 'deploy', 'k8s');
const BASE_JOB = path.join(K8S_DIR, 'base', 'job.yaml');
const GRPC_PORT = 50051;
const HTTP_PORT = 8080;

/** Every kustomize directory and the `mtl k8s render` arguments that must produce the same objects. */
const EQUIVALENT_RENDER: Record<string, { args: string[]; workers: number; gpus: number; namespace?: string }> = {
  base: { args: ['--workers', '2'], workers: 2, gpus: 0 },
  'overlays/gpu': { args: ['--workers', '2', '--gpus-per-worker', '1'], workers: 2, gpus: 1 },
  'overlays/scale-out': { args: ['--workers', '4', '--namespace', 'mtl-training'], workers: 4, gpus: 0, namespace: 'mtl-training' },
};

function kustomizeDirs(): string[] {
  const overlays = readdirSync(path.join(K8S_DIR, 'overlays'))
    .filter((d) => existsSync(path.join(K8S_DIR, 'overlays', d, 'kustomization.yaml')))
    .map((d) => `overlays/${d}`);
  return ['base', ...overlays.sort()];
}

type Pod = { securityContext?: Record<string, unknown>; containers: Container[]; initContainers?: Container[]; restartPolicy?: string };
type Container = { name: string; image: string; args?: string[]; resources?: { requests?: Record<string, string>; limits?: Record<string, string> }; securityContext?: Record<string, unknown>; ports?: Array<{ name: string; containerPort: number }>; startupProbe?: Probe; readinessProbe?: Probe; livenessProbe?: Probe };
type Probe = { httpGet?: { path: string; port: number | string } };

function pod(doc: { spec?: unknown } | K8sDoc | undefined): Pod {
  assert.ok(doc, 'object missing');
  return (doc.spec as { template: { spec: Pod } }).template.spec;
}

type JobTemplate = { spec: { completionMode?: string; parallelism?: number; completions?: number; template: { spec: Pod } } };

/** The coordinator's or the workers' Job (template) of a render: in its JobSet, or a plain Job. */
function runJob(docs: Map<string, K8sDoc>, role: 'coordinator' | 'workers', prefix = 'mtl'): JobTemplate {
  const jobSet = docs.get(`JobSet/${prefix}`);
  if (jobSet) {
    const r = (jobSet.spec as { replicatedJobs: Array<{ name: string; template: JobTemplate }> }).replicatedJobs.find((j) => j.name === role);
    assert.ok(r, `JobSet/${prefix}: no replicatedJob ${role}`);
    return r.template;
  }
  const job = docs.get(`Job/${prefix}-${role}`);
  assert.ok(job, `no JobSet/${prefix} and no Job/${prefix}-${role}`);
  return job as unknown as JobTemplate;
}

/** Every pod template of a render (Jobs, JobSets, StatefulSets), with a name for messages. */
function podTemplates(docs: Iterable<K8sDoc>): Array<[string, Pod]> {
  const out: Array<[string, Pod]> = [];
  for (const d of docs) {
    if (d.kind === 'Job' || d.kind === 'StatefulSet') out.push([d.metadata.name, pod(d)]);
    if (d.kind === 'JobSet') for (const r of (d.spec as { replicatedJobs: Array<{ name: string; template: JobTemplate }> }).replicatedJobs) out.push([`${d.metadata.name}/${r.name}`, pod(r.template)]);
  }
  return out;
}

function arg(c: Container | undefined, flag: string): string | undefined {
  const args = c?.args ?? [];
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

void describe('deploy/k8s manifests (kubectl kustomize)', () => {
  const dirs = kustomizeDirs();

  void it('has a base and a GPU overlay, each with its render equivalent listed here', () => {
    assert.ok(dirs.includes('base') && dirs.includes('overlays/gpu'));
    for (const d of dirs) assert.ok(EQUIVALENT_RENDER[d], `${d}: add its mtl k8s render arguments to EQUIVALENT_RENDER`);
  });

  for (const dir of dirs) {
    void it(`${dir}: every object passes the Kubernetes schema of its kind`, () => {
      const docs = kustomize(path.join(K8S_DIR, dir));
      assert.deepEqual(docs.map((d) => d.kind).sort(), ['ConfigMap', 'JobSet', 'NetworkPolicy', 'PersistentVolumeClaim', 'Service', 'Service', 'StatefulSet']);
      for (const d of docs) validateDoc(d);
    });

    void it(`${dir}: workers, probes, GPUs and security as intended`, () => {
      const expected = EQUIVALENT_RENDER[dir]!;
      const docs = byKindName(kustomize(path.join(K8S_DIR, dir)));
      const workers = runJob(docs, 'workers');
      const spec = workers.spec;
      assert.equal(spec.completionMode, 'Indexed');
      assert.equal(spec.parallelism, expected.workers);
      assert.equal(spec.completions, expected.workers);
      const worker = pod(workers).containers[0];
      const coordinator = pod(runJob(docs, 'coordinator')).containers.find((c) => c.name === 'coordinator');
      assert.equal(arg(coordinator, '--workers'), String(expected.workers), 'the coordinator waits for exactly the worker pods');
      assert.equal(arg(worker, '--coordinator'), `mtl-coordinator:${GRPC_PORT}`);
      assert.equal(worker?.resources?.limits?.['nvidia.com/gpu'], expected.gpus > 0 ? String(expected.gpus) : undefined);
      assert.equal(arg(worker, '--backend'), expected.gpus > 0 ? 'tensorflow' : 'wasm');
      assert.equal(worker?.image.endsWith('-gpu'), expected.gpus > 0);

      assert.equal(coordinator?.ports?.find((p) => p.name === 'grpc')?.containerPort, GRPC_PORT);
      assert.equal(coordinator?.ports?.find((p) => p.name === 'http')?.containerPort, HTTP_PORT);
      assert.equal(arg(coordinator, '--http'), `0.0.0.0:${HTTP_PORT}`, 'the dashboard, /metrics and the probes');
      assert.deepEqual(coordinator?.startupProbe?.httpGet, { path: '/healthz', port: 'http' });
      assert.deepEqual(coordinator?.livenessProbe?.httpGet, { path: '/healthz', port: 'http' });
      assert.deepEqual(coordinator?.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });

      for (const d of docs.values()) assert.equal(d.metadata.namespace, expected.namespace, `${d.kind}/${d.metadata.name}`);
      for (const [, p] of podTemplates(docs.values())) {
        assert.equal(p.securityContext?.runAsNonRoot, true);
        assert.ok(typeof p.securityContext?.runAsUser === 'number' && p.securityContext.runAsUser > 0);
        for (const c of [...(p.initContainers ?? []), ...p.containers]) {
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
          assert.deepEqual((c.securityContext?.capabilities as { drop?: string[] } | undefined)?.drop, ['ALL']);
          assert.ok(c.resources?.requests && c.resources.limits, `${c.name}: requests and limits`);
        }
      }
      const nats = pod(docs.get('StatefulSet/mtl-nats')).containers[0];
      assert.ok(nats?.args?.includes('--jetstream'));
    });

    void it(`${dir}: is exactly what mtl k8s render gives for the same settings`, async () => {
      const expected = EQUIVALENT_RENDER[dir]!;
      const r = await runCli(['k8s', 'render', BASE_JOB, ...expected.args]);
      assert.equal(r.code, 0, r.stderr);
      const rendered = byKindName(parseDocs(r.stdout));
      const composed = byKindName(kustomize(path.join(K8S_DIR, dir)));
      assert.deepEqual([...composed.keys()].sort(), [...rendered.keys()].sort());
      for (const [key, doc] of composed) assert.deepEqual(doc, rendered.get(key), `${dir}: ${key} differs from mtl k8s render`);
    });
  }

  void it('the base job file is a valid job', async () => {
    const r = await runCli(['validate', BASE_JOB]);
    assert.equal(r.code, 0, r.stderr);
  });
});

void describe('mtl k8s render|apply (CLI)', () => {
  const job = path.join(EXAMPLES, 'synthetic.yaml');

  void it('renders valid objects for several option sets, the job file verbatim in the ConfigMap', async () => {
    const sets = [
      { args: ['--workers', '1'], workers: 1, namespace: undefined },
      { args: ['--workers', '6', '--namespace', 'team-a', '--create-namespace', '--name', 'exp-1', '--image', 'reg.example/mtl:9'], workers: 6, namespace: 'team-a' },
      { args: ['--workers', '3', '--gpus-per-worker', '2', '-n', 'gpu'], workers: 3, namespace: 'gpu' },
    ];
    for (const s of sets) {
      const r = await runCli(['k8s', 'render', job, ...s.args]);
      assert.equal(r.code, 0, r.stderr);
      const docs = parseDocs(r.stdout);
      for (const d of docs) validateDoc(d);
      const workers = runJob(byKindName(docs), 'workers', s.args.includes('--name') ? s.args[s.args.indexOf('--name') + 1] : 'mtl');
      assert.equal(workers.spec.parallelism, s.workers);
      for (const d of docs) if (d.kind !== 'Namespace') assert.equal(d.metadata.namespace, s.namespace, `${d.kind}/${d.metadata.name}`);
      const config = docs.find((d) => d.kind === 'ConfigMap');
      assert.equal((config?.data as Record<string, string>)['job.yaml'], readFileSync(job, 'utf8'));
    }
  });

  void it('writes --out FILE', async () => {
    const out = path.join(tempDir('mtl-k8s-'), 'objects.yaml');
    const r = await runCli(['k8s', 'render', job, '--workers', '2', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(parseDocs(readFileSync(out, 'utf8')).length, 7);
  });

  void it('refuses an invalid job with exit 2, naming the problem path, and prints no objects', async () => {
    const bad = path.join(tempDir('mtl-k8s-'), 'bad.yaml');
    writeFileSync(bad, readFileSync(job, 'utf8').replace('learningRate: 0.001', 'learningRate: -1'));
    for (const command of ['render', 'apply']) {
      const r = await runCli(['k8s', command, bad, '--workers', '2']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /training\.optimizer\.learningRate/);
      assert.equal(r.stdout, '');
    }
    const missing = await runCli(['k8s', 'render', path.join(tempDir('mtl-k8s-'), 'nope.yaml'), '--workers', '2']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such file/);
  });

  void it('refuses bad options with exit 2', async () => {
    for (const args of [['--workers', '0'], [], ['--workers', '2', '--name', 'Bad_Name'], ['--workers', '2', '--create-namespace']]) {
      const r = await runCli(['k8s', 'render', job, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
  });

  void it('apply --dry-run prints exactly what render prints, and contacts nothing', async () => {
    const args = [job, '--workers', '3', '--gpus-per-worker', '1', '--namespace', 'x'];
    const rendered = await runCli(['k8s', 'render', ...args]);
    // No kubeconfig anywhere: a dry run must not need one.
    const dry = await runCli(['k8s', 'apply', ...args, '--dry-run'], { KUBECONFIG: '', HOME: tempDir('mtl-home-') });
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, rendered.stdout);
  });

  void it('apply without a usable kubeconfig says why, exit 2', async () => {
    const home = tempDir('mtl-home-');
    // No $KUBECONFIG, no ~/.kube/config, not in a pod (empty means unset, as for kubectl).
    const none = await runCli(['k8s', 'apply', job, '--workers', '2'], { KUBECONFIG: '', HOME: home, KUBERNETES_SERVICE_HOST: '' });
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /kubeconfig/);

    const missing = await runCli(['k8s', 'apply', job, '--workers', '2', '--kubeconfig', path.join(home, 'absent')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent: no such file/);

    const garbled = path.join(home, 'garbled');
    writeFileSync(garbled, 'clusters: [');
    const bad = await runCli(['k8s', 'apply', job, '--workers', '2', '--kubeconfig', garbled]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /kubeconfig .*garbled/);

    const other = await runCli(['k8s', 'apply', job, '--workers', '2', '--kubeconfig', unreachableKubeconfig(home), '--context', 'elsewhere']);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /no context named elsewhere/);
  });

  void it('apply to an API server that is not there fails with exit 1, naming the first object', async () => {
    const r = await runCli(['k8s', 'apply', job, '--workers', '2', '--kubeconfig', unreachableKubeconfig(tempDir('mtl-home-'))]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /apply failed: configmap\/mtl-job: .*ECONNREFUSED/);
  });

  void it("refuses a job whose data would not exist in the pods (exit 2, naming task and path); the image's examples and a data volume work", async () => {
    const dir = tempDir('mtl-k8s-data-');
    writeFileSync(path.join(dir, 'weather.csv'), readFileSync(path.join(EXAMPLES, 'data', 'seattle-weather', 'seattle-weather.csv')));
    const own = path.join(dir, 'weather.yaml');
    writeFileSync(own, readFileSync(path.join(EXAMPLES, 'seattle-weather.yaml'), 'utf8').replaceAll('data/seattle-weather/seattle-weather.csv', 'weather.csv'));
    for (const command of ['render', 'apply']) {
      const r = await runCli(['k8s', command, own, '--workers', '2']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /2 files of the job would not exist in the pods:\n {2}tasks\.weather\.data\.path: weather\.csv would be \/etc\/mtl\/weather\.csv in the pods, where nothing puts it: .*mtl data put/);
      assert.match(r.stderr, /tasks\.temp_max\.data\.path: weather\.csv/);
    }

    // The shipped example renders: its job is mounted where the image keeps its data.
    const example = await runCli(['k8s', 'render', path.join(EXAMPLES, 'seattle-weather.yaml'), '--workers', '2']);
    assert.equal(example.code, 0, example.stderr);
    const coordinator = pod(runJob(byKindName(parseDocs(example.stdout)), 'coordinator')).containers[0];
    assert.equal(coordinator?.args?.[1], '/app/examples/seattle-weather.yaml');

    // On a volume: absolute paths under its mount.
    const onVolume = path.join(dir, 'on-volume.yaml');
    writeFileSync(onVolume, readFileSync(own, 'utf8').replaceAll('path: weather.csv', 'path: /srv/data/weather.csv'));
    const refused = await runCli(['k8s', 'render', onVolume, '--workers', '2']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--data-volume PVC\[:MOUNT\]/);
    const mounted = await runCli(['k8s', 'render', onVolume, '--workers', '2', '--data-volume', 'weather-data:/srv/data']);
    assert.equal(mounted.code, 0, mounted.stderr);
    for (const name of ['coordinator', 'workers'] as const) {
      const spec = pod(runJob(byKindName(parseDocs(mounted.stdout)), name)) as Pod & { volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }> };
      assert.equal(spec.volumes.find((v) => v.name === 'job-data')?.persistentVolumeClaim?.claimName, 'weather-data', name);
    }
    const badVolume = await runCli(['k8s', 'render', onVolume, '--workers', '2', '--data-volume', 'weather-data:relative']);
    assert.equal(badVolume.code, 2);
    assert.match(badVolume.stderr, /--data-volume weather-data:relative: the mount path must be an absolute/);
    const badCache = await runCli(['k8s', 'render', path.join(EXAMPLES, 'synthetic.yaml'), '--workers', '2', '--data-cache-size', '10GB']);
    assert.equal(badCache.code, 2);
    assert.match(badCache.stderr, /--data-cache-size 10GB: expected an integer with a binary unit/);

    // Remote data needs no volume: the pods fetch it.
    const remote = path.join(dir, 'remote.yaml');
    writeFileSync(remote, readFileSync(own, 'utf8').replaceAll('path: weather.csv', 'path: nats://weather/seattle-weather.csv'));
    const fetched = await runCli(['k8s', 'render', remote, '--workers', '2']);
    assert.equal(fetched.code, 0, fetched.stderr);
  });
});

/** A kubeconfig whose API server is a closed local port: the client really tries and fails. */
function unreachableKubeconfig(dir: string): string {
  const file = path.join(dir, 'kubeconfig');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: nowhere, cluster: { server: "https://127.0.0.1:1" } }]',
      'users: [{ name: nobody, user: { token: not-a-token } }]',
      'contexts: [{ name: nowhere, context: { cluster: nowhere, user: nobody } }]',
      'current-context: nowhere',
      '',
    ].join('\n'),
  );
  return file;
}
