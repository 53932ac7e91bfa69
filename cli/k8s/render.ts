// The Kubernetes objects of one training job: the job file in a ConfigMap, a coordinator Job
// behind a Service, N workers as an Indexed Job, NATS with JetStream, a volume for the run
// directory. deploy/k8s/base is this function's output for its job.yaml and 2 workers (a
// test keeps the two equal), so `kubectl apply -k` and `mtl k8s render` give the same thing.
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { Service } from 'kubernetes-models/v1/Service';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import YAML from 'yaml';
import { JOB_MOUNT, type DataVolume } from './pod-paths.js';

export { JOB_MOUNT } from './pod-paths.js';

export const GRPC_PORT = 50051;
/** The dashboard, /metrics, /healthz and /readyz (--http). */
export const HTTP_PORT = 8080;
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
export const NATS_IMAGE = 'nats:2.10.22-alpine';
export const RUNS_MOUNT = '/var/lib/mtl/runs';
/** The data cache of nats:// and http(s):// data in every mtl pod (an emptyDir). */
export const CACHE_MOUNT = '/var/cache/mtl';
const USER_ID = 1000;
/** Coordinator pods the Job may start for one run: the first and its replacements. */
export const COORDINATOR_ATTEMPTS = 4;

export interface RenderOptions {
  /** The job file's text, stored verbatim in the ConfigMap. */
  jobText: string;
  workers: number;
  /** 0 (default): CPU workers on the wasm backend; otherwise GPUs per worker, tensorflow backend. */
  gpusPerWorker?: number;
  /** Coordinator and CPU-worker image. */
  image: string;
  /** GPU-worker image (default: the image's tag plus "-gpu"). */
  gpuImage?: string;
  namespace?: string;
  /** Emit a Namespace object too (needs `namespace`). */
  createNamespace?: boolean;
  /** Prefix of every object name, so that several runs can share a namespace. */
  name?: string;
  /** Size of the run-directory volume and of NATS' JetStream volume. */
  runsStorage?: string;
  natsStorage?: string;
  /** The job file's path in the pods (default `${JOB_MOUNT}/job.yaml`; an image example's own path: see pod-paths.ts). */
  jobPath?: string;
  /** A PersistentVolumeClaim holding the job's data, mounted read-only in the coordinator and every worker. */
  dataVolume?: DataVolume;
  /** Size limit of each pod's data cache (an emptyDir), as a Kubernetes quantity with a binary unit (default 10Gi). */
  dataCacheSize?: string;
}

const BINARY_UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** `10Gi` → bytes; undefined for anything but an integer with a binary unit. */
export function binaryQuantityBytes(q: string): number | undefined {
  const m = /^([1-9][0-9]*)(Ki|Mi|Gi|Ti)$/.exec(q);
  return m ? Number(m[1]) * BINARY_UNITS[m[2]!]! : undefined;
}

/** A problem with the options (exit 2), never with the code. */
export class RenderOptionsError extends Error {
  override readonly name = 'RenderOptionsError';
  readonly code = 'K8S_RENDER_OPTIONS';
}

/** What every kubernetes-models class has: its type, metadata, the schema check and plain JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
  validate(): void;
  toJSON(): unknown;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `repo/mtl:0.1.0` → `repo/mtl:0.1.0-gpu`; undefined for a digest or an untagged name. */
export function defaultGpuImage(image: string): string | undefined {
  if (image.includes('@')) return undefined;
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? `${image}-gpu` : undefined;
}

function checkOptions(o: RenderOptions): void {
  const name = o.name ?? 'mtl';
  // The longest derived name (`<name>-coordinator`) must stay a DNS label; Job pods add more.
  if (!DNS_LABEL.test(name) || name.length > 40) throw new RenderOptionsError(`--name ${name}: expected a DNS label (lower-case letters, digits, '-') of at most 40 characters`);
  if (o.namespace !== undefined && (!DNS_LABEL.test(o.namespace) || o.namespace.length > 63)) throw new RenderOptionsError(`--namespace ${o.namespace}: expected a DNS label of at most 63 characters`);
  if (o.createNamespace && o.namespace === undefined) throw new RenderOptionsError('--create-namespace needs --namespace');
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new RenderOptionsError(`--workers ${o.workers}: expected a positive integer`);
  const gpus = o.gpusPerWorker ?? 0;
  if (!Number.isInteger(gpus) || gpus < 0) throw new RenderOptionsError(`--gpus-per-worker ${gpus}: expected a non-negative integer`);
  if (gpus > 0 && o.gpuImage === undefined && defaultGpuImage(o.image) === undefined) {
    throw new RenderOptionsError(`--image ${o.image} has no tag to derive the GPU image from: give --gpu-image`);
  }
  if (o.dataCacheSize !== undefined && binaryQuantityBytes(o.dataCacheSize) === undefined) {
    throw new RenderOptionsError(`--data-cache-size ${o.dataCacheSize}: expected an integer with a binary unit (Ki, Mi, Gi, Ti), e.g. 20Gi`);
  }
  const mount = o.dataVolume?.mount;
  if (mount !== undefined) {
    for (const taken of [JOB_MOUNT, RUNS_MOUNT, CACHE_MOUNT, '/tmp', '/app']) {
      if (mount === taken || mount.startsWith(`${taken}/`) || taken.startsWith(`${mount}/`)) {
        throw new RenderOptionsError(`--data-volume ${o.dataVolume!.claim}:${mount}: the mount path overlaps ${taken}, which the pods use for something else`);
      }
    }
  }
}

/** The objects, in the order they should be applied (namespace and config before their users). */
export function renderObjects(o: RenderOptions): K8sObject[] {
  checkOptions(o);
  const name = o.name ?? 'mtl';
  const gpus = o.gpusPerWorker ?? 0;
  const names = { config: `${name}-job`, coordinator: `${name}-coordinator`, workers: `${name}-workers`, nats: `${name}-nats`, runs: `${name}-runs` };
  const labels = (component: string) => ({ 'app.kubernetes.io/name': 'mtl-orchestrator', 'app.kubernetes.io/instance': name, 'app.kubernetes.io/component': component });
  const meta = (objectName: string, component: string) => ({ name: objectName, ...(o.namespace !== undefined ? { namespace: o.namespace } : {}), labels: labels(component) });
  const natsUrl = `nats://${names.nats}:${NATS_CLIENT_PORT}`;

  // Non-root, nothing writable but the volumes, no privileges: enough for Node and nats-server.
  const podSecurity: IPodSecurityContext = { runAsNonRoot: true, runAsUser: USER_ID, runAsGroup: USER_ID, fsGroup: USER_ID, seccompProfile: { type: 'RuntimeDefault' } };
  const containerSecurity: ISecurityContext = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
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
  const podBasics = { automountServiceAccountToken: false, enableServiceLinks: false, securityContext: podSecurity };

  const objects: K8sObject[] = [];
  if (o.createNamespace) objects.push(new Namespace({ metadata: { name: o.namespace!, labels: { 'app.kubernetes.io/name': 'mtl-orchestrator' } } }));

  objects.push(new ConfigMap({ metadata: meta(names.config, 'job'), data: { 'job.yaml': o.jobText } }));

  objects.push(
    new PersistentVolumeClaim({
      metadata: meta(names.runs, 'coordinator'),
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.runsStorage ?? '5Gi' } } },
    }),
  );

  objects.push(
    new Service({
      metadata: meta(names.coordinator, 'coordinator'),
      spec: {
        type: 'ClusterIP',
        selector: labels('coordinator'),
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
      metadata: meta(names.nats, 'nats'),
      spec: {
        clusterIP: 'None',
        selector: labels('nats'),
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
      metadata: meta(names.nats, 'nats'),
      spec: {
        serviceName: names.nats,
        replicas: 1,
        selector: { matchLabels: labels('nats') },
        template: { metadata: { labels: labels('nats') }, spec: { ...podBasics, containers: [natsContainer] } },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: o.natsStorage ?? '10Gi' } } } }],
      },
    }),
  );

  // The coordinator connects to NATS once, at start: wait for it here rather than fail the Job.
  const waitForNats = [
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
  objects.push(
    new Job({
      metadata: meta(names.coordinator, 'coordinator'),
      spec: {
        // A coordinator pod that dies is replaced with the same command line: its --run-id (the
        // Job's uid) finds the run's newest checkpoint in NATS and continues from it. An invalid
        // job (exit 2) fails the Job at once; a node drain does not count as an attempt.
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
          metadata: { labels: labels('coordinator') },
          spec: {
            ...podBasics,
            // Never (a new pod per attempt): what podFailurePolicy needs.
            restartPolicy: 'Never',
            initContainers: [
              {
                name: 'wait-for-nats',
                image: o.image,
                command: ['node', '-e', waitForNats, `${names.nats}:${NATS_CLIENT_PORT}`],
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
                securityContext: containerSecurity,
              },
            ],
            containers: [
              {
                name: 'coordinator',
                image: o.image,
                args: [
                  'coordinator',
                  jobPath,
                  '--listen',
                  `0.0.0.0:${GRPC_PORT}`,
                  '--workers',
                  String(o.workers),
                  '--wait-for-workers',
                  '1800',
                  // One directory per run, never another run's: the run id is unique per Job.
                  '--out',
                  `${RUNS_MOUNT}/$(MTL_RUN_ID)`,
                  '--nats',
                  natsUrl,
                  '--run-id',
                  '$(MTL_RUN_ID)',
                  // Dashboard, /metrics and the probes' /healthz and /readyz, plaintext like the
                  // gRPC port (--insecure below); reach it with kubectl port-forward.
                  '--http',
                  `0.0.0.0:${HTTP_PORT}`,
                  // Plaintext inside the cluster network (see docs/security.md for TLS and a join
                  // token). Last, so that overlays can patch the arguments above by index.
                  '--insecure',
                ],
                env: [
                  ...mtlEnv,
                  // The Job's uid: the same for every pod of this Job, new when the Job is created again.
                  { name: 'JOB_UID', valueFrom: { fieldRef: { fieldPath: "metadata.labels['batch.kubernetes.io/controller-uid']" } } },
                  { name: 'MTL_RUN_ID', value: `${name}-$(JOB_UID)` },
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
                volumeMounts: [jobMount, { name: 'runs', mountPath: RUNS_MOUNT }, tmpMount, ...dataMounts],
              },
            ],
            volumes: [jobVolume, { name: 'runs', persistentVolumeClaim: { claimName: names.runs } }, tmpVolume, ...dataVolumes],
          },
        },
      },
    }),
  );

  const worker: IContainer = {
    name: 'worker',
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
    ],
    // The coordinator has --nats; a worker learns the server of nats:// data from MTL_DATA_NATS.
    env: [...mtlEnv, { name: 'MTL_DATA_NATS', value: natsUrl }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    // wasm is single-threaded: one core per worker. A GPU worker feeds its GPU from a few.
    resources:
      gpus > 0
        ? { requests: { cpu: '2', memory: '4Gi', 'nvidia.com/gpu': String(gpus) }, limits: { cpu: '4', memory: '8Gi', 'nvidia.com/gpu': String(gpus) } }
        : { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1', memory: '2Gi' } },
    securityContext: containerSecurity,
    // Data paths in the job resolve against its directory, as on the coordinator.
    volumeMounts: [jobMount, tmpMount, ...dataMounts],
  };
  objects.push(
    new Job({
      metadata: meta(names.workers, 'worker'),
      spec: {
        completionMode: 'Indexed',
        completions: o.workers,
        parallelism: o.workers,
        // A worker that dies is restarted in place; the coordinator re-assigns its units
        // meanwhile and sends it the current weights when it rejoins.
        backoffLimit: 5 * o.workers,
        template: {
          metadata: { labels: labels('worker') },
          spec: {
            ...podBasics,
            restartPolicy: 'OnFailure',
            containers: [worker],
            volumes: [jobVolume, tmpVolume, ...dataVolumes],
            ...(gpus > 0 ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] } : {}),
          },
        },
      },
    }),
  );
  return objects;
}

/** Validates every object against the Kubernetes schema (throws the first failure, named). */
export function validateObjects(objects: readonly K8sObject[]): void {
  for (const obj of objects) {
    try {
      obj.validate();
    } catch (err) {
      throw new Error(`${obj.kind} ${obj.metadata?.name ?? '?'}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Multi-document YAML, as kubectl apply -f - reads it. */
export function objectsToYaml(objects: readonly K8sObject[]): string {
  return objects.map((obj) => YAML.stringify(obj.toJSON(), { lineWidth: 0 })).join('---\n');
}
