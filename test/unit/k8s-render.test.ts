import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { Service } from 'kubernetes-models/v1/Service';
import {
  GRPC_PORT,
  HTTP_PORT,
  NATS_CLIENT_PORT,
  RenderOptionsError,
  defaultGpuImage,
  objectsToYaml,
  renderObjects,
  validateObjects,
  type K8sObject,
  type RenderOptions,
} from '../../cli/k8s/render.js';
import { parseDocs, validateDoc } from '../helpers/k8s-models.js';
import { EXAMPLES } from '../helpers/paths.js';

const JOB_TEXT = readFileSync(path.join(EXAMPLES, 'synthetic.yaml'), 'utf8');
const IMAGE = 'registry.example/mtl:1.2.3';

/** The plain format (two Jobs) in plaintext: the pieces every format shares, seen directly (k8s-formats.test.ts: JobSet, TrainJob, TLS). */
function render(over: Partial<RenderOptions> = {}): K8sObject[] {
  return renderObjects({ jobText: JOB_TEXT, workers: 2, image: IMAGE, format: 'plain', tls: 'insecure', ...over });
}

function find<T>(objects: K8sObject[], cls: new (...args: never[]) => T, name: string): T {
  const found = objects.find((o) => o instanceof cls && o.metadata?.name === name);
  assert.ok(found, `no ${cls.name} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found as T;
}

function podSpec(obj: Job | StatefulSet): IPodSpec {
  const spec = obj.spec?.template.spec;
  assert.ok(spec, `${obj.metadata?.name}: no pod spec`);
  return spec;
}

function container(obj: Job | StatefulSet, name: string): IContainer {
  const c = podSpec(obj).containers.find((x) => x.name === name);
  assert.ok(c, `${obj.metadata?.name}: no container ${name}`);
  return c;
}

function argAfter(c: IContainer, flag: string): string | undefined {
  const args = c.args ?? [];
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

const COMBINATIONS: Array<Partial<RenderOptions>> = [
  { workers: 1 },
  { workers: 3, namespace: 'ml-team' },
  { workers: 8, gpusPerWorker: 1 },
  { workers: 4, gpusPerWorker: 2, gpuImage: 'registry.example/mtl-cuda@sha256:' + 'a'.repeat(64), namespace: 'gpu', createNamespace: true, name: 'sweep-7' },
];

void describe('mtl k8s render (objects)', () => {
  for (const combo of COMBINATIONS) {
    const label = JSON.stringify(combo);
    void it(`every object passes the Kubernetes schema: ${label}`, () => {
      const objects = render(combo);
      validateObjects(objects);
      // And again after the YAML round trip, as kubectl would read it.
      const docs = parseDocs(objectsToYaml(objects));
      assert.equal(docs.length, objects.length);
      for (const d of docs) validateDoc(d);
      assert.deepEqual(docs, objects.map((o) => o.toJSON()));
    });

    void it(`wires workers, coordinator, NATS and namespace together: ${label}`, () => {
      const objects = render(combo);
      const n = combo.workers!;
      const prefix = combo.name ?? 'mtl';
      const workers = find(objects, Job, `${prefix}-workers`);
      assert.equal(workers.spec?.completionMode, 'Indexed');
      assert.equal(workers.spec?.parallelism, n);
      assert.equal(workers.spec?.completions, n);
      assert.equal(podSpec(workers).restartPolicy, 'OnFailure', 'a dead worker is restarted; the coordinator re-assigns its units');

      const coordinatorJob = find(objects, Job, `${prefix}-coordinator`);
      const coordinator = container(coordinatorJob, 'coordinator');
      assert.equal(argAfter(coordinator, '--workers'), String(n), 'training starts when all worker pods have joined');
      assert.equal(argAfter(coordinator, '--listen'), `0.0.0.0:${GRPC_PORT}`);

      // Workers reach the coordinator through its Service's DNS name and gRPC port.
      const service = find(objects, Service, `${prefix}-coordinator`);
      assert.equal(argAfter(container(workers, 'worker'), '--coordinator'), `${prefix}-coordinator:${GRPC_PORT}`);
      assert.deepEqual(
        service.spec?.ports?.map((p) => [p.name, p.port]),
        [
          ['grpc', GRPC_PORT],
          ['http', HTTP_PORT],
        ],
      );
      const podLabels = coordinatorJob.spec?.template.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(service.spec?.selector ?? {})) assert.equal(podLabels[k], v, `selector ${k} matches the coordinator pod`);
      assert.equal(
        coordinator.ports?.find((p) => p.name === 'grpc')?.containerPort,
        GRPC_PORT,
      );

      // Probes: the coordinator's HTTP endpoints (--http on the declared http port).
      assert.equal(argAfter(coordinator, '--http'), `0.0.0.0:${HTTP_PORT}`);
      assert.ok(coordinator.args?.includes('--insecure'), 'a non-loopback --http needs --insecure');
      assert.equal(coordinator.ports?.find((p) => p.name === 'http')?.containerPort, HTTP_PORT);
      for (const probe of [coordinator.startupProbe, coordinator.livenessProbe]) assert.deepEqual(probe?.httpGet, { path: '/healthz', port: 'http' });
      assert.deepEqual(coordinator.readinessProbe?.httpGet, { path: '/readyz', port: 'http' });

      // NATS with JetStream on a volume, reachable at the URL the coordinator is given.
      const nats = find(objects, StatefulSet, `${prefix}-nats`);
      assert.equal(nats.spec?.serviceName, `${prefix}-nats`);
      assert.ok(container(nats, 'nats').args?.includes('--jetstream'));
      assert.equal(nats.spec?.volumeClaimTemplates?.[0]?.metadata?.name, 'data');
      find(objects, Service, `${prefix}-nats`);
      assert.equal(argAfter(coordinator, '--nats'), `nats://${prefix}-nats:${NATS_CLIENT_PORT}`);

      // The job file, verbatim, mounted where the coordinator reads it.
      const config = find(objects, ConfigMap, `${prefix}-job`);
      assert.equal(config.data?.['job.yaml'], JOB_TEXT);
      assert.equal(coordinator.args?.[1], '/etc/mtl/job.yaml');

      for (const obj of objects) {
        if (obj instanceof Namespace) continue;
        assert.equal(obj.metadata?.namespace, combo.namespace, `${obj.kind}/${obj.metadata?.name} namespace`);
      }
      assert.equal(objects.some((o) => o instanceof Namespace), combo.createNamespace === true);
      if (combo.createNamespace) assert.ok(objects[0] instanceof Namespace, 'the namespace is applied first');
    });

    void it(`runs every container non-root, read-only, without privileges, with resources: ${label}`, () => {
      for (const obj of render(combo)) {
        if (!(obj instanceof Job || obj instanceof StatefulSet)) continue;
        const pod = podSpec(obj);
        assert.equal(pod.securityContext?.runAsNonRoot, true);
        assert.equal(pod.securityContext?.runAsUser, 1000);
        assert.equal(pod.automountServiceAccountToken, false);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          const what: string = `${obj.metadata?.name ?? '?'}/${c.name}`;
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, what);
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, what);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], what);
          assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${what}: requests`);
          assert.ok(c.resources?.limits?.cpu && c.resources.limits.memory, `${what}: limits`);
        }
      }
    });

    void it(`puts GPUs, the GPU image and the tensorflow backend on workers only when asked: ${label}`, () => {
      const objects = render(combo);
      const prefix = combo.name ?? 'mtl';
      const worker = container(find(objects, Job, `${prefix}-workers`), 'worker');
      const gpus = combo.gpusPerWorker ?? 0;
      if (gpus > 0) {
        assert.equal(worker.resources?.limits?.['nvidia.com/gpu'], String(gpus));
        assert.equal(argAfter(worker, '--backend'), 'tensorflow');
        assert.equal(worker.image, combo.gpuImage ?? `${IMAGE}-gpu`);
      } else {
        assert.equal(worker.resources?.limits?.['nvidia.com/gpu'], undefined);
        assert.equal(argAfter(worker, '--backend'), 'wasm');
        assert.equal(worker.image, IMAGE);
      }
      // The coordinator aggregates on the CPU, whatever the workers use.
      assert.equal(container(find(objects, Job, `${prefix}-coordinator`), 'coordinator').image, IMAGE);
      assert.equal(container(find(objects, Job, `${prefix}-coordinator`), 'coordinator').resources?.limits?.['nvidia.com/gpu'], undefined);
    });
  }

  void it('lets a replaced coordinator pod continue its run: a run id per Job, one run directory per run, retries but not for an invalid job', () => {
    const objects = render({ name: 'exp' });
    const job = find(objects, Job, 'exp-coordinator');
    const coordinator = container(job, 'coordinator');
    assert.equal(argAfter(coordinator, '--run-id'), '$(MTL_RUN_ID)');
    assert.equal(argAfter(coordinator, '--out'), '/var/lib/mtl/runs/$(MTL_RUN_ID)');
    const env = coordinator.env ?? [];
    const uid = env.findIndex((e) => e.name === 'JOB_UID');
    const runId = env.findIndex((e) => e.name === 'MTL_RUN_ID');
    assert.equal(env[uid]?.valueFrom?.fieldRef?.fieldPath, "metadata.labels['batch.kubernetes.io/controller-uid']");
    assert.equal(env[runId]?.value, 'exp-$(JOB_UID)');
    assert.ok(uid < runId, 'a variable is expanded only from those defined before it');
    assert.equal(job.spec?.backoffLimit, 3);
    assert.equal(podSpec(job).restartPolicy, 'Never');
    assert.deepEqual(job.spec?.podFailurePolicy?.rules[0], { action: 'FailJob', onExitCodes: { containerName: 'coordinator', operator: 'In', values: [2] } });
    // Workers wait long enough for a replacement to take the run over.
    assert.equal(argAfter(container(find(objects, Job, 'exp-workers'), 'worker'), '--reconnect-timeout'), '900');
  });

  void it("admits only the run's own pods to the coordinator and NATS ports", () => {
    const objects = render({ name: 'exp', namespace: 'team' });
    const policy = find(objects, NetworkPolicy, 'exp-run-pods-only');
    const own = { 'app.kubernetes.io/name': 'mtl-orchestrator', 'app.kubernetes.io/instance': 'exp' };
    assert.deepEqual(policy.spec?.podSelector.matchLabels, own);
    assert.deepEqual(policy.spec?.policyTypes, ['Ingress']);
    assert.deepEqual(policy.spec?.ingress?.[0]?.from, [{ podSelector: { matchLabels: own } }]);
    assert.deepEqual(policy.spec?.ingress?.[0]?.ports?.map((p) => p.port), [GRPC_PORT, HTTP_PORT, NATS_CLIENT_PORT, 8222]);
    assert.equal(policy.spec?.ingress?.length, 1, 'no other way in');
    // Every pod of the run carries the labels the policy selects.
    for (const obj of objects) {
      if (!(obj instanceof Job || obj instanceof StatefulSet)) continue;
      const labels = obj.spec?.template.metadata?.labels ?? {};
      for (const [k, v] of Object.entries(own)) assert.equal(labels[k], v, `${obj.metadata?.name}: ${k}`);
    }
  });

  void it('refuses options that cannot make valid objects', () => {
    assert.throws(() => render({ name: 'Not_A_Label' }), RenderOptionsError);
    assert.throws(() => render({ name: 'x'.repeat(41) }), RenderOptionsError);
    assert.throws(() => render({ namespace: 'UPPER' }), RenderOptionsError);
    assert.throws(() => render({ createNamespace: true }), /--create-namespace needs --namespace/);
    assert.throws(() => render({ workers: 0 }), RenderOptionsError);
    assert.throws(() => render({ gpusPerWorker: 1, image: 'mtl@sha256:' + 'b'.repeat(64) }), /give --gpu-image/);
  });

  void it('derives the GPU image from a tagged image only', () => {
    assert.equal(defaultGpuImage('mtl-orchestrator:0.1.0'), 'mtl-orchestrator:0.1.0-gpu');
    assert.equal(defaultGpuImage('localhost:5000/team/mtl:2'), 'localhost:5000/team/mtl:2-gpu');
    assert.equal(defaultGpuImage('localhost:5000/team/mtl'), undefined, 'the colon belongs to the registry port');
    assert.equal(defaultGpuImage('mtl@sha256:' + 'c'.repeat(64)), undefined);
  });
});

void describe('schema validation can fail', () => {
  void it('rejects a wrong field type, a missing required field and an unknown enum value', () => {
    const objects = render();
    const workers = find(objects, Job, 'mtl-workers');
    (workers.spec as { parallelism: unknown }).parallelism = '2';
    assert.throws(() => validateObjects(objects), /Job mtl-workers: .*parallelism must be integer/);

    const docs = parseDocs(objectsToYaml(render()));
    const job = docs.find((d) => d.kind === 'Job' && d.metadata.name === 'mtl-coordinator')!;
    const pod = (job.spec as { template: { spec: { containers: unknown[] } } }).template.spec;
    const [first] = pod.containers as Array<Record<string, unknown>>;
    delete first!.name;
    assert.throws(() => validateDoc(job), /containers\/0 must have required property name/);

    const svc = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'mtl-coordinator')!;
    (svc.spec as { type: string }).type = 'Everywhere';
    assert.throws(() => validateDoc(svc), /must be equal to one of the allowed values/);
  });

  void it('refuses a kind it has no model for', () => {
    assert.throws(() => validateDoc({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }), /no kubernetes-models class/);
  });
});
