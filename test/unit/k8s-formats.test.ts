// `mtl k8s render`'s formats and defaults: one JobSet (the default) or a Kubeflow TrainJob and
// its runtime, mutual TLS with a join token unless asked otherwise, gang scheduling; every
// object checked against its kind's schema (our strict models of JobSet v0.12.0 and Trainer
// v2.3.0, cert-manager's published ones), and those schemas shown to refuse what is wrong.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderedContainers, type RenderedContainer } from '../../cli/k8s/containers.js';
import { CustomResource } from '../../cli/k8s/crd-models.js';
import { GRPC_PORT, RenderOptionsError, TLS_MOUNT, objectsToYaml, renderObjects, validateObjects, type K8sObject, type RenderOptions } from '../../cli/k8s/render.js';
import { parseDocs, validateDoc, type K8sDoc } from '../helpers/k8s-models.js';
import { EXAMPLES } from '../helpers/paths.js';

const JOB_TEXT = readFileSync(path.join(EXAMPLES, 'synthetic.yaml'), 'utf8');

function render(over: Partial<RenderOptions> = {}): K8sObject[] {
  return renderObjects({ jobText: JOB_TEXT, workers: 3, image: 'reg.example/mtl:2', ...over });
}

function docs(over: Partial<RenderOptions> = {}): K8sDoc[] {
  const objects = render(over);
  validateObjects(objects);
  const parsed = parseDocs(objectsToYaml(objects));
  for (const d of parsed) validateDoc(d);
  return parsed;
}

const byKind = (all: K8sDoc[], kind: string) => all.filter((d) => d.kind === kind);
const one = (all: K8sDoc[], kind: string) => {
  const found = byKind(all, kind);
  assert.equal(found.length, 1, `one ${kind}: ${all.map((d) => d.kind).join(', ')}`);
  return found[0]!;
};
const container = (all: K8sDoc[], name: string): RenderedContainer => {
  const c = renderedContainers(all).find((x) => x.name === name && !x.init);
  assert.ok(c, `no container ${name}`);
  return c;
};
const after = (c: RenderedContainer, flag: string) => c.args[c.args.indexOf(flag) + 1];

type JobSetSpec = {
  network: { enableDNSHostnames: boolean };
  successPolicy: { operator: string; targetReplicatedJobs: string[] };
  failurePolicy: { maxRestarts: number; rules: Array<{ name: string; action: string; onJobFailureReasons?: string[]; targetReplicatedJobs?: string[] }> };
  replicatedJobs: Array<{ name: string; replicas: number; template: { metadata?: { labels?: Record<string, string> }; spec: { parallelism: number; template: { metadata: { labels: Record<string, string> }; spec: { priorityClassName?: string } } } } }>;
};

void describe('mtl k8s render --format jobset (the default)', () => {
  void it('holds coordinator and workers in one JobSet: success is the coordinator\'s, an invalid job fails it, anything else restarts it', () => {
    const all = docs();
    assert.deepEqual(all.map((d) => d.kind), ['ConfigMap', 'PersistentVolumeClaim', 'Service', 'Service', 'StatefulSet', 'JobSet', 'NetworkPolicy']);
    const jobSet = one(all, 'JobSet');
    assert.equal(jobSet.apiVersion, 'jobset.x-k8s.io/v1alpha2');
    const spec = jobSet.spec as JobSetSpec;
    assert.deepEqual(spec.replicatedJobs.map((r) => [r.name, r.replicas, r.template.spec.parallelism]), [['coordinator', 1, 1], ['workers', 1, 3]]);
    assert.deepEqual(spec.successPolicy, { operator: 'All', targetReplicatedJobs: ['coordinator'] });
    assert.deepEqual(spec.failurePolicy.rules[0], { name: 'invalidJob', action: 'FailJobSet', onJobFailureReasons: ['PodFailurePolicy'], targetReplicatedJobs: ['coordinator'] });
    assert.equal(spec.failurePolicy.rules[1]?.action, 'RestartJobSet');
    assert.ok(spec.failurePolicy.maxRestarts > 0);
    assert.equal(spec.network.enableDNSHostnames, true);
    // The run id survives the JobSet's restarts (new Jobs, same JobSet): a restarted coordinator resumes.
    const coordinator = container(all, 'coordinator');
    assert.deepEqual(coordinator.env.find((e) => e.name === 'JOBSET_UID')?.valueFrom?.fieldRef, { fieldPath: "metadata.labels['jobset.sigs.k8s.io/jobset-uid']" });
    assert.equal(coordinator.env.find((e) => e.name === 'MTL_RUN_ID')?.value, 'mtl-$(JOBSET_UID)');
    assert.equal(after(coordinator, '--run-id'), '$(MTL_RUN_ID)');
    assert.equal(after(container(all, 'worker'), '--coordinator'), `mtl-coordinator:${GRPC_PORT}`);
  });

  void it('is secure by default: mutual TLS and the join token from the run\'s Secret, no --insecure, the NetworkPolicy kept, probes on the plain-HTTP port', () => {
    const all = docs();
    one(all, 'NetworkPolicy');
    for (const c of renderedContainers(all)) assert.ok(!c.args.includes('--insecure'), `${c.object}/${c.name}`);
    const coordinator = container(all, 'coordinator');
    const worker = container(all, 'worker');
    for (const c of [coordinator, worker]) {
      assert.equal(after(c, '--tls-ca'), `${TLS_MOUNT}/ca.crt`);
      assert.equal(after(c, '--tls-cert'), `${TLS_MOUNT}/tls.crt`);
      assert.equal(after(c, '--tls-key'), `${TLS_MOUNT}/tls.key`);
      assert.equal(after(c, '--token-file'), `${TLS_MOUNT}/token`);
      assert.deepEqual(c.volumeMounts.find((m) => m.name === 'tls'), { name: 'tls', mountPath: TLS_MOUNT, readOnly: true });
    }
    // Each role gets its own key only: a worker pod never holds the coordinator's.
    const items = (c: RenderedContainer) => c.volumes.find((v) => v.name === 'tls')?.projected?.sources?.flatMap((s) => s.secret?.items?.map((i) => `${s.secret?.name}:${i.key}`) ?? []);
    assert.deepEqual(items(coordinator), ['mtl-tls:ca.crt', 'mtl-tls:coordinator.crt', 'mtl-tls:coordinator.key', 'mtl-tls:token']);
    assert.deepEqual(items(worker), ['mtl-tls:ca.crt', 'mtl-tls:worker.crt', 'mtl-tls:worker.key', 'mtl-tls:token']);
    assert.equal(coordinator.volumes.find((v) => v.name === 'tls')?.projected?.defaultMode, 0o440);
    // The kubelet's probes reach --http on the pod's address: plain HTTP, with TLS kept on gRPC.
    assert.ok(coordinator.args.includes('--http-plaintext'));
    assert.equal(byKind(all, 'Secret').length, 0, 'render never prints private keys');
  });

  void it('renders plaintext only when asked, and then without TLS files', () => {
    const all = docs({ tls: 'insecure' });
    const coordinator = container(all, 'coordinator');
    assert.equal(coordinator.args.at(-1), '--insecure');
    assert.ok(!coordinator.args.includes('--tls-ca') && !coordinator.args.includes('--http-plaintext'));
    assert.ok(!container(all, 'worker').args.includes('--tls-ca'));
    assert.equal(coordinator.volumes.find((v) => v.name === 'tls'), undefined);
  });

  void it('with --tls cert-manager: a CA of the run\'s own, Certificates for the Service\'s names and the worker, a token Secret; pods mount what cert-manager writes', () => {
    const all = docs({ tls: 'cert-manager', namespace: 'team' });
    assert.deepEqual(byKind(all, 'Issuer').map((d) => d.metadata.name), ['mtl-selfsigned', 'mtl-ca']);
    const certs = new Map(byKind(all, 'Certificate').map((d) => [d.metadata.name, d.spec as { secretName: string; isCA?: boolean; dnsNames?: string[]; usages?: string[]; issuerRef: { name: string } }]));
    assert.equal(certs.get('mtl-ca')?.isCA, true);
    assert.deepEqual(certs.get('mtl-coordinator')?.dnsNames, ['mtl-coordinator', 'mtl-coordinator.team', 'mtl-coordinator.team.svc', 'mtl-coordinator.team.svc.cluster.local']);
    assert.ok(certs.get('mtl-coordinator')?.usages?.includes('server auth'));
    assert.deepEqual(certs.get('mtl-worker')?.usages, ['digital signature', 'key encipherment', 'client auth']);
    assert.equal(certs.get('mtl-worker')?.issuerRef.name, 'mtl-ca');
    const token = one(all, 'Secret');
    assert.equal(token.metadata.name, 'mtl-token');
    assert.ok(Buffer.from((token.data as { token: string }).token, 'base64').length >= 32);
    const sources = (c: RenderedContainer) => c.volumes.find((v) => v.name === 'tls')?.projected?.sources?.map((s) => s.secret?.name);
    assert.deepEqual(sources(container(all, 'coordinator')), ['mtl-coordinator-tls', 'mtl-token']);
    assert.deepEqual(sources(container(all, 'worker')), ['mtl-worker-tls', 'mtl-token']);
  });
});

void describe('mtl k8s render --format trainjob', () => {
  void it('renders a ClusterTrainingRuntime whose template is the JobSet (workers as Trainer\'s node) and a TrainJob that refers to it', () => {
    const all = docs({ format: 'trainjob', namespace: 'team', workerCpu: '2', workerMemory: '3Gi' });
    assert.deepEqual(all.map((d) => d.kind), ['ConfigMap', 'PersistentVolumeClaim', 'Service', 'Service', 'StatefulSet', 'ClusterTrainingRuntime', 'TrainJob', 'NetworkPolicy']);
    const runtime = one(all, 'ClusterTrainingRuntime');
    const trainJob = one(all, 'TrainJob');
    assert.equal(runtime.metadata.namespace, undefined, 'cluster-scoped');
    assert.equal(trainJob.metadata.namespace, 'team');
    const spec = trainJob.spec as { runtimeRef: { name: string; kind: string; apiGroup: string }; trainer: { numNodes: number; resourcesPerNode: unknown } };
    assert.deepEqual(spec.runtimeRef, { name: runtime.metadata.name, apiGroup: 'trainer.kubeflow.org', kind: 'ClusterTrainingRuntime' });
    assert.equal(spec.trainer.numNodes, 3);
    assert.deepEqual(spec.trainer.resourcesPerNode, { requests: { cpu: '2', memory: '3Gi' }, limits: { cpu: '2', memory: '3Gi' } });
    const template = (runtime.spec as { mlPolicy: { numNodes: number }; template: { spec: JobSetSpec } });
    assert.equal(template.mlPolicy.numNodes, 3);
    const node = template.template.spec.replicatedJobs.find((r) => r.name === 'node');
    assert.equal(node?.template.metadata?.labels?.['trainer.kubeflow.org/trainjob-ancestor-step'], 'trainer');
    const worker = container(all, 'node');
    assert.equal(worker.job, 'node');
    assert.equal(worker.args[0], 'worker');
    assert.equal(container(all, 'coordinator').job, 'coordinator');
    assert.deepEqual(template.template.spec.successPolicy.targetReplicatedJobs, ['coordinator']);
    assert.equal((trainJob.spec as { runtimePatches?: unknown }).runtimePatches, undefined, 'no status reporting unless asked');
  });

  void it('--trainer-status-server gives the coordinator the token, CA and URL Trainer gives its nodes', () => {
    const all = docs({ format: 'trainjob', namespace: 'team', name: 'exp', trainerStatusServer: 'https://kubeflow-trainer-controller-manager.kubeflow-system.svc:10443' });
    const [patch] = (one(all, 'TrainJob').spec as { runtimePatches: Array<{ manager: string; trainingRuntimeSpec: { template: { spec: { replicatedJobs: Array<{ name: string; template: { spec: { template: { spec: { volumes: Array<{ projected: { sources: Array<Record<string, { audience?: string; name?: string; optional?: boolean }>> } }>; containers: Array<{ name: string; env: Array<{ name: string; value: string }> }> } } } } }> } } } }> }).runtimePatches;
    const job = patch!.trainingRuntimeSpec.template.spec.replicatedJobs[0]!;
    assert.equal(job.name, 'coordinator');
    const pod = job.template.spec.template.spec;
    assert.equal(pod.volumes[0]!.projected.sources[0]!.serviceAccountToken?.audience, 'trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/exp/status');
    assert.deepEqual(pod.volumes[0]!.projected.sources[1]!.configMap, { name: 'exp-tls-config', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true });
    const env = Object.fromEntries(pod.containers[0]!.env.map((e) => [e.name, e.value]));
    assert.equal(env.KUBEFLOW_TRAINER_SERVER_URL, 'https://kubeflow-trainer-controller-manager.kubeflow-system.svc:10443/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/exp/status');
    assert.equal(env.KUBEFLOW_TRAINER_SERVER_TOKEN, '/var/run/secrets/kubeflow/trainer/token');
  });
});

void describe('gang scheduling, priority and worker resources', () => {
  void it('--gang podgroup: a PodGroup of workers + 1 that every run pod joins; --queue labels the JobSet for Kueue; --priority-class on every run pod', () => {
    const all = docs({ gang: 'podgroup', queue: 'team-queue', priorityClass: 'training-high' });
    const group = one(all, 'PodGroup');
    assert.deepEqual(group.spec, { minMember: 4, scheduleTimeoutSeconds: 600 });
    const jobSet = one(all, 'JobSet');
    assert.equal(jobSet.metadata.labels?.['kueue.x-k8s.io/queue-name'], 'team-queue');
    for (const r of (jobSet.spec as JobSetSpec).replicatedJobs) {
      assert.equal(r.template.spec.template.metadata.labels['scheduling.x-k8s.io/pod-group'], 'mtl', r.name);
      assert.equal(r.template.spec.template.spec.priorityClassName, 'training-high', r.name);
    }
    // NATS is not part of the gang (its own StatefulSet, already running for later runs).
    assert.equal((one(all, 'StatefulSet').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels['scheduling.x-k8s.io/pod-group'], undefined);
    // With Trainer, its runtime's podGroupPolicy makes the PodGroup.
    const trainer = docs({ format: 'trainjob', gang: 'podgroup', queue: 'q' });
    assert.equal(byKind(trainer, 'PodGroup').length, 0);
    assert.deepEqual((one(trainer, 'ClusterTrainingRuntime').spec as { podGroupPolicy: unknown }).podGroupPolicy, { coscheduling: { scheduleTimeoutSeconds: 600 } });
    assert.equal(one(trainer, 'TrainJob').metadata.labels?.['kueue.x-k8s.io/queue-name'], 'q');
  });

  void it('sizes worker pods from --worker-cpu/--worker-memory (requests = limits), GPUs kept', () => {
    const worker = container(docs({ workerCpu: '1500m', workerMemory: '6Gi', gpusPerWorker: 1 }), 'worker');
    const want = { cpu: '1500m', memory: '6Gi', 'nvidia.com/gpu': '1' };
    assert.deepEqual(worker.resources, { requests: want, limits: want });
    assert.equal(after(worker, '--backend'), 'tensorflow');
    // Without them: the defaults, and the coordinator is never resized by them.
    assert.deepEqual(container(docs(), 'worker').resources, { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } });
    assert.deepEqual(container(docs({ workerCpu: '3' }), 'coordinator').resources.limits, { cpu: '2', memory: '4Gi' });
  });

  void it('refuses contradictory or malformed options', () => {
    const cases: Array<[Partial<RenderOptions>, RegExp]> = [
      [{ format: 'plain', queue: 'q' }, /--queue needs --format jobset or trainjob/],
      [{ format: 'nope' as never }, /--format nope: expected one of jobset, trainjob, plain/],
      [{ tls: 'maybe' as never }, /--tls maybe/],
      [{ gang: 'volcano' as never }, /--gang volcano/],
      [{ queue: 'Not A Queue' }, /--queue/],
      [{ workerCpu: 'lots' }, /--worker-cpu lots/],
      [{ workerMemory: '4 GB' }, /--worker-memory/],
      [{ format: 'trainjob', trainerStatusServer: 'https://x:1' }, /needs --namespace/],
      [{ trainerStatusServer: 'https://x:1', namespace: 'n' }, /needs --format trainjob/],
      [{ format: 'trainjob', namespace: 'n', trainerStatusServer: 'http://x:1' }, /expected https/],
      [{ format: 'trainjob', name: '7up' }, /must start with a letter/],
    ];
    for (const [over, message] of cases) assert.throws(() => render(over), (err: unknown) => err instanceof RenderOptionsError && message.test(err.message), JSON.stringify(over));
  });
});

void describe('the custom resources\' schemas refuse what the API server would', () => {
  const jobSetDoc = () => one(docs(), 'JobSet');
  const check = (doc: K8sDoc) => new CustomResource(doc as never).validate();

  void it('rejects unknown fields, wrong enums, unknown targets and a bad embedded Job template', () => {
    check(jobSetDoc());
    const unknown = jobSetDoc();
    (unknown.spec as Record<string, unknown>).restartEverything = true;
    assert.throws(() => check(unknown), /restartEverything/);
    const action = jobSetDoc();
    (action.spec as JobSetSpec).failurePolicy.rules[1]!.action = 'RestartPod';
    assert.throws(() => check(action), /failurePolicy\/rules\/1\/action/);
    const target = jobSetDoc();
    (target.spec as JobSetSpec).successPolicy.targetReplicatedJobs = ['leader'];
    assert.throws(() => check(target), /leader is not a replicatedJob/);
    const template = jobSetDoc();
    (template.spec as JobSetSpec).replicatedJobs[1]!.template.spec.parallelism = 'three' as never;
    assert.throws(() => check(template), /replicatedJobs\/1\/template: .*parallelism must be integer/);
    assert.throws(() => validateDoc(template), /JobSet mtl: /);
  });

  void it('rejects a TrainJob without its runtime, and a namespaced ClusterTrainingRuntime', () => {
    const all = docs({ format: 'trainjob' });
    const trainJob = one(all, 'TrainJob');
    delete (trainJob.spec as Record<string, unknown>).runtimeRef;
    assert.throws(() => check(trainJob), /runtimeRef/);
    const runtime = one(all, 'ClusterTrainingRuntime');
    runtime.metadata.namespace = 'x';
    assert.throws(() => check(runtime), /cluster-scoped/);
  });
});

void describe('renderedContainers (what each container runs)', () => {
  void it('lists every container of every format with its job, replicas, command, args, env and mounts', () => {
    for (const format of ['jobset', 'trainjob', 'plain'] as const) {
      const list = renderedContainers(docs({ format }));
      assert.deepEqual(list.map((c) => [c.job.replace(/^mtl-/, ''), c.name, c.init]), [
        ['nats', 'nats', false],
        ['coordinator', 'wait-for-nats', true],
        ['coordinator', 'coordinator', false],
        [format === 'trainjob' ? 'node' : 'workers', format === 'trainjob' ? 'node' : 'worker', false],
      ], format);
      const coordinator = list.find((c) => c.name === 'coordinator')!;
      assert.equal(coordinator.args[0], 'coordinator');
      assert.ok(coordinator.env.some((e) => e.name === 'MTL_RUN_ID'));
      assert.ok(coordinator.volumeMounts.some((m) => m.mountPath === '/var/lib/mtl/runs'));
      assert.equal(coordinator.restartPolicy, 'Never');
      assert.equal(list.find((c) => c.args[0] === 'worker')!.replicas, 3);
    }
  });
});
