// What every format of `mtl k8s render` shares: the coordinator's and the workers' Job specs
// (pod templates, security, volumes, probes), and the objects around them (the job file's
// ConfigMap, the run-directory volume, the coordinator's Service, NATS, the NetworkPolicy).
// The formats differ only in what holds the two Job specs: two Jobs, one JobSet, or a
// ClusterTrainingRuntime that a TrainJob refers to.
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import type { IJobSpec } from 'kubernetes-models/batch/v1/JobSpec';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { Service } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { JOB_MOUNT } from './pod-paths.js';
import type { K8sObject, RenderOptions } from './render-options.js';
import { CACHE_MOUNT, RUNS_MOUNT, binaryQuantityBytes, defaultGpuImage } from './render-options.js';
import { tlsArgs, tlsMount, tlsVolume } from './tls.js';

export const GRPC_PORT = 50051;
/** The dashboard, /metrics, /healthz and /readyz (--http). */
export const HTTP_PORT = 8080;
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const NATS_IMAGE = 'nats:2.10.22-alpine';
const USER_ID = 1000;
/** Coordinator pods one coordinator Job may start: the first and its replacements. */
export const COORDINATOR_ATTEMPTS = 4;

export interface RunNames {
  config: string;
  coordinator: string;
  workers: string;
  nats: string;
  runs: string;
  network: string;
}

export function runNames(name: string): RunNames {
  return { config: `${name}-job`, coordinator: `${name}-coordinator`, workers: `${name}-workers`, nats: `${name}-nats`, runs: `${name}-runs`, network: `${name}-run-pods-only` };
}

export const labels = (name: string, component: string): Record<string, string> => ({
  'app.kubernetes.io/name': 'mtl-orchestrator',
  'app.kubernetes.io/instance': name,
  'app.kubernetes.io/component': component,
});

export function meta(o: RenderOptions, objectName: string, component: string) {
  return { name: objectName, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}), labels: labels(o.name ?? 'mtl', component) };
}

/** Where the coordinator's run id comes from: a uid that stays the same for every pod of one run. */
export interface RunIdSource {
  /** Environment variable holding the uid. */
  env: string;
  /** A label of the pod that carries it (a fieldRef). */
  label: string;
}

export interface RunJobSpecs {
  coordinator: IJobSpec;
  workers: IJobSpec;
}

export interface JobSpecOptions {
  runId: RunIdSource;
  /** The workers' container name (Trainer finds its node container by name). */
  workerContainer: string;
  /** Extra labels on every pod (e.g. a PodGroup's). */
  podLabels?: Record<string, string>;
  schedulerName?: string;
}

// Non-root, nothing writable but the volumes, no privileges: enough for Node and nats-server.
const podSecurity: IPodSecurityContext = { runAsNonRoot: true, runAsUser: USER_ID, runAsGroup: USER_ID, fsGroup: USER_ID, seccompProfile: { type: 'RuntimeDefault' } };
export const containerSecurity: ISecurityContext = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };

// The coordinator connects to NATS once, at start: wait for it here rather than fail the pod.
const WAIT_FOR_NATS = [
  "const net = require('node:net');",
  'const [host, port] = process.argv[1].split(":");',
  'const deadline = Date.now() + 600000;',
  '(function attempt() {',
  '  const s = net.connect(Number(port), host, () => { s.end(); process.exit(0); });',
  '  s.on("error", () => {',
  '    if (Date.now() > deadline) { console.error(`NATS at ${host}:${port} unreachable for 10 minutes`); process.exit(1); }',
  '    setTimeout(attempt, 2000);',
  '  });',
  '})();',
].join('\n');

/** The coordinator's and the workers' Job specs (pod templates included). */
export function runJobSpecs(o: RenderOptions, j: JobSpecOptions): RunJobSpecs {
  const name = o.name ?? 'mtl';
  const names = runNames(name);
  const gpus = o.gpusPerWorker ?? 0;
  const natsUrl = `nats://${names.nats}:${NATS_CLIENT_PORT}`;
  const tls = o.tls ?? 'secret';
  // HOME on the scratch volume: CUDA and npm-style tools write caches under it.
  // nats:// and http(s):// data is fetched into the cache volume, bounded a little below its size
  // limit (files in use stay beyond the bound, and the kubelet evicts a pod past the limit).
  const cacheSize = o.dataCacheSize ?? '10Gi';
  const mtlEnv: IEnvVar[] = [
    { name: 'HOME', value: '/tmp' },
    { name: 'MTL_CACHE_DIR', value: CACHE_MOUNT },
    { name: 'MTL_CACHE_MAX_BYTES', value: String(Math.floor(binaryQuantityBytes(cacheSize)! * 0.9)) },
  ];
  const tmpVolume: IVolume = { name: 'tmp', emptyDir: {} };
  const tmpMount: IVolumeMount = { name: 'tmp', mountPath: '/tmp' };
  const jobPath = o.jobPath ?? `${JOB_MOUNT}/job.yaml`;
  const jobVolume: IVolume = { name: 'job', configMap: { name: names.config } };
  // The ConfigMap as a folder, or (a job of the image's examples) its one file over the image's copy.
  const jobMount: IVolumeMount =
    jobPath === `${JOB_MOUNT}/job.yaml` ? { name: 'job', mountPath: JOB_MOUNT, readOnly: true } : { name: 'job', mountPath: jobPath, subPath: 'job.yaml', readOnly: true };
  const dataVolumes: IVolume[] = [{ name: 'data-cache', emptyDir: { sizeLimit: cacheSize } }];
  const dataMounts: IVolumeMount[] = [{ name: 'data-cache', mountPath: CACHE_MOUNT }];
  if (o.dataVolume !== undefined) {
    dataVolumes.push({ name: 'job-data', persistentVolumeClaim: { claimName: o.dataVolume.claim, readOnly: true } });
    dataMounts.push({ name: 'job-data', mountPath: o.dataVolume.mount, readOnly: true });
  }
  const tlsVolumes = (role: 'coordinator' | 'worker'): IVolume[] => (tls === 'insecure' ? [] : [tlsVolume(o, role)]);
  const tlsMounts: IVolumeMount[] = tls === 'insecure' ? [] : [tlsMount];
  const podBasics = {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: podSecurity,
    ...(o.priorityClass !== undefined ? { priorityClassName: o.priorityClass } : {}),
    ...(j.schedulerName !== undefined ? { schedulerName: j.schedulerName } : {}),
  };
  const podLabels = (component: string) => ({ ...labels(name, component), ...(j.podLabels ?? {}) });

  const coordinatorArgs = [
    'coordinator',
    jobPath,
    '--listen',
    `0.0.0.0:${GRPC_PORT}`,
    '--workers',
    String(o.workers),
    '--wait-for-workers',
    '1800',
    // One directory per run, never another run's: the run id is unique per run.
    '--out',
    `${RUNS_MOUNT}/$(MTL_RUN_ID)`,
    '--nats',
    natsUrl,
    '--run-id',
    '$(MTL_RUN_ID)',
    // Dashboard, /metrics and the probes' /healthz and /readyz: plain HTTP, reachable only
    // from the run's pods (the NetworkPolicy) and kubectl port-forward.
    '--http',
    `0.0.0.0:${HTTP_PORT}`,
    // Mutual TLS and the join token from the run's Secret; or, when asked, plaintext inside
    // the cluster network. Last, so that overlays can patch the arguments above by index.
    ...(tls === 'insecure' ? ['--insecure'] : [...tlsArgs(), '--http-plaintext']),
  ];
  const coordinator: IContainer = {
    name: 'coordinator',
    image: o.image,
    args: coordinatorArgs,
    env: [
      ...mtlEnv,
      // The same for every pod of this run (also a replacement's), new for another run.
      { name: j.runId.env, valueFrom: { fieldRef: { fieldPath: `metadata.labels['${j.runId.label}']` } } },
      { name: 'MTL_RUN_ID', value: `${name}-$(${j.runId.env})` },
    ],
    ports: [
      { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
      { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
    ],
    // /healthz answers while the process is up; /readyz (like grpc.health.v1's
    // mtl.v1.Coordinator) once it serves the run and takes workers, until the run ends.
    startupProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5, failureThreshold: 60 },
    readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 2 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 5 },
    resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '4Gi' } },
    securityContext: containerSecurity,
    volumeMounts: [jobMount, { name: 'runs', mountPath: RUNS_MOUNT }, tmpMount, ...dataMounts, ...tlsMounts],
  };
  const coordinatorSpec: IJobSpec = {
    // A coordinator pod that dies is replaced with the same command line: its --run-id finds
    // the run's newest checkpoint in NATS and continues from it. An invalid job (exit 2) fails
    // the Job at once; a node drain does not count as an attempt.
    backoffLimit: COORDINATOR_ATTEMPTS - 1,
    podFailurePolicy: {
      rules: [
        { action: 'FailJob', onExitCodes: { containerName: 'coordinator', operator: 'In', values: [2] } },
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      ],
    },
    completions: 1,
    parallelism: 1,
    template: {
      metadata: { labels: podLabels('coordinator') },
      spec: {
        ...podBasics,
        // Never (a new pod per attempt): what podFailurePolicy needs.
        restartPolicy: 'Never',
        initContainers: [
          {
            name: 'wait-for-nats',
            image: o.image,
            command: ['node', '-e', WAIT_FOR_NATS, `${names.nats}:${NATS_CLIENT_PORT}`],
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
            securityContext: containerSecurity,
          },
        ],
        containers: [coordinator],
        volumes: [jobVolume, { name: 'runs', persistentVolumeClaim: { claimName: names.runs } }, tmpVolume, ...dataVolumes, ...tlsVolumes('coordinator')],
      },
    },
  };

  const worker: IContainer = {
    name: j.workerContainer,
    image: gpus > 0 ? (o.gpuImage ?? defaultGpuImage(o.image)!) : o.image,
    args: [
      'worker',
      '--coordinator',
      `${names.coordinator}:${GRPC_PORT}`,
      '--backend',
      gpus > 0 ? 'tensorflow' : 'wasm',
      '--name',
      '$(POD_NAME)',
      // The coordinator may still be waiting for NATS or pulling its image.
      '--connect-timeout',
      '900',
      // ... or be a replacement taking over a dead one's run (its lease lapses first).
      '--reconnect-timeout',
      '900',
      ...(tls === 'insecure' ? [] : tlsArgs()),
    ],
    // The coordinator has --nats; a worker learns the server of nats:// data from MTL_DATA_NATS.
    env: [...mtlEnv, { name: 'MTL_DATA_NATS', value: natsUrl }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    resources: workerResources(o),
    securityContext: containerSecurity,
    // Data paths in the job resolve against its directory, as on the coordinator.
    volumeMounts: [jobMount, tmpMount, ...dataMounts, ...tlsMounts],
  };
  const workersSpec: IJobSpec = {
    completionMode: 'Indexed',
    completions: o.workers,
    parallelism: o.workers,
    // A worker that dies is restarted in place; the coordinator re-assigns its units
    // meanwhile and sends it the current weights when it rejoins.
    backoffLimit: 5 * o.workers,
    template: {
      metadata: { labels: podLabels('worker') },
      spec: {
        ...podBasics,
        restartPolicy: 'OnFailure',
        containers: [worker],
        volumes: [jobVolume, tmpVolume, ...dataVolumes, ...tlsVolumes('worker')],
        ...(gpus > 0 ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] } : {}),
      },
    },
  };
  return { coordinator: coordinatorSpec, workers: workersSpec };
}

/**
 * One worker pod's resources: --worker-cpu / --worker-memory when given (requests = limits, so
 * the pod is Guaranteed and a gang reserves exactly that), else one core per wasm worker
 * (single-threaded) and a few cores per GPU worker to feed its GPU.
 */
export function workerResources(o: RenderOptions): { requests: Record<string, string>; limits: Record<string, string> } {
  const gpus = o.gpusPerWorker ?? 0;
  const base = gpus > 0 ? { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } } : { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } };
  const requests: Record<string, string> = { ...base.requests };
  const limits: Record<string, string> = { ...base.limits };
  if (o.workerCpu !== undefined) requests.cpu = limits.cpu = o.workerCpu;
  if (o.workerMemory !== undefined) requests.memory = limits.memory = o.workerMemory;
  if (gpus > 0) requests['nvidia.com/gpu'] = limits['nvidia.com/gpu'] = String(gpus);
  return { requests, limits };
}

/** The ConfigMap, the run-directory volume, the coordinator's Service and NATS. */
export function supportObjects(o: RenderOptions): K8sObject[] {
  const name = o.name ?? 'mtl';
  const names = runNames(name);
  const objects: K8sObject[] = [];
  objects.push(new ConfigMap({ metadata: meta(o, names.config, 'job'), data: { 'job.yaml': o.jobText } }));
  objects.push(
    new PersistentVolumeClaim({
      metadata: meta(o, names.runs, 'coordinator'),
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.runsStorage ?? '5Gi' } } },
    }),
  );
  objects.push(
    new Service({
      metadata: meta(o, names.coordinator, 'coordinator'),
      spec: {
        type: 'ClusterIP',
        selector: labels(name, 'coordinator'),
        ports: [
          { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' },
          { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
        ],
      },
    }),
  );
  // Headless: the StatefulSet's governing service; one replica, so its DNS name is the server.
  objects.push(
    new Service({
      metadata: meta(o, names.nats, 'nats'),
      spec: {
        clusterIP: 'None',
        selector: labels(name, 'nats'),
        ports: [
          { name: 'client', port: NATS_CLIENT_PORT, targetPort: 'client', protocol: 'TCP' },
          { name: 'monitor', port: NATS_MONITOR_PORT, targetPort: 'monitor', protocol: 'TCP' },
        ],
      },
    }),
  );
  const natsContainer: IContainer = {
    name: 'nats',
    image: NATS_IMAGE,
    args: ['--jetstream', '--store_dir', '/data', '--port', String(NATS_CLIENT_PORT), '--http_port', String(NATS_MONITOR_PORT)],
    ports: [
      { name: 'client', containerPort: NATS_CLIENT_PORT, protocol: 'TCP' },
      { name: 'monitor', containerPort: NATS_MONITOR_PORT, protocol: 'TCP' },
    ],
    startupProbe: { httpGet: { path: '/healthz', port: 'monitor' }, periodSeconds: 2, failureThreshold: 60 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'monitor' }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: '/healthz?js-enabled-only=true', port: 'monitor' }, periodSeconds: 5, failureThreshold: 3 },
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
    securityContext: containerSecurity,
    volumeMounts: [{ name: 'data', mountPath: '/data' }],
  };
  objects.push(
    new StatefulSet({
      metadata: meta(o, names.nats, 'nats'),
      spec: {
        serviceName: names.nats,
        replicas: 1,
        selector: { matchLabels: labels(name, 'nats') },
        template: {
          metadata: { labels: labels(name, 'nats') },
          spec: { automountServiceAccountToken: false, enableServiceLinks: false, securityContext: podSecurity, containers: [natsContainer] },
        },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.natsStorage ?? '10Gi' } } } }],
      },
    }),
  );
  return objects;
}

/**
 * Only the run's own pods reach the coordinator (gRPC, the dashboard and /metrics) and NATS;
 * nothing reaches the workers, which listen on nothing. kubectl port-forward still works (it
 * enters the pod's network from the node); a Prometheus elsewhere needs a rule of its own.
 */
export function networkPolicy(o: RenderOptions): NetworkPolicy {
  const name = o.name ?? 'mtl';
  const runPods = { matchLabels: { 'app.kubernetes.io/name': 'mtl-orchestrator', 'app.kubernetes.io/instance': name } };
  return new NetworkPolicy({
    metadata: meta(o, runNames(name).network, 'network'),
    spec: {
      podSelector: runPods,
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ podSelector: runPods }],
          ports: [GRPC_PORT, HTTP_PORT, NATS_CLIENT_PORT, NATS_MONITOR_PORT].map((port) => ({ protocol: 'TCP', port })),
        },
      ],
    },
  });
}
