// The options of `mtl k8s render`, their checks, and what every rendered object offers.
import { JOB_MOUNT, type DataVolume } from './pod-paths.js';

export const RUNS_MOUNT = '/var/lib/mtl/runs';
/** The data cache of nats:// and http(s):// data in every mtl pod (an emptyDir). */
export const CACHE_MOUNT = '/var/cache/mtl';
/** The TLS files and the join token in the coordinator and worker pods (read-only). */
export const TLS_MOUNT = '/etc/mtl-tls';

/** What holds the coordinator and the workers: one JobSet (default), a Kubeflow TrainJob, or two Jobs. */
export const RENDER_FORMATS = ['jobset', 'trainjob', 'plain'] as const;
export type RenderFormat = (typeof RENDER_FORMATS)[number];

/**
 * Transport security of the coordinator's gRPC port: mutual TLS and a join token from a Secret
 * that `mtl k8s secret` (or `mtl k8s apply`) makes, from cert-manager Certificates, or none.
 */
export const TLS_MODES = ['secret', 'cert-manager', 'insecure'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const GANG_MODES = ['podgroup'] as const;
export type GangMode = (typeof GANG_MODES)[number];

export interface RenderOptions {
  /** The job file's text, stored verbatim in the ConfigMap. */
  jobText: string;
  workers: number;
  /** Default jobset. */
  format?: RenderFormat;
  /** Default secret. */
  tls?: TlsMode;
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
  /** Kueue LocalQueue: the JobSet (or TrainJob) is admitted as a whole, or not at all. */
  queue?: string;
  /** Coscheduling: a PodGroup of workers + 1 pods for the scheduler-plugins scheduler. */
  gang?: GangMode;
  priorityClass?: string;
  /** CPU and memory of one worker pod (requests = limits), as Kubernetes quantities. */
  workerCpu?: string;
  workerMemory?: string;
  /**
   * trainjob: the Kubeflow Trainer status server (https://HOST:PORT) that the coordinator reports
   * progress to; needs `namespace` (the token's audience names it). Unset: no reporting.
   */
  trainerStatusServer?: string;
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

/** What every rendered object has: its type, metadata, the schema check and plain JSON. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata?: { name?: string; namespace?: string };
  validate(): void;
  toJSON(): unknown;
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CPU_QUANTITY = /^([1-9][0-9]*|[0-9]+\.[0-9]+|[1-9][0-9]*m)$/;
const MEMORY_QUANTITY = /^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$/;

/** `repo/mtl:0.1.0` → `repo/mtl:0.1.0-gpu`; undefined for a digest or an untagged name. */
export function defaultGpuImage(image: string): string | undefined {
  if (image.includes('@')) return undefined;
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? `${image}-gpu` : undefined;
}

function checkChoice<T extends string>(flag: string, value: T | undefined, choices: readonly T[]): void {
  if (value !== undefined && !choices.includes(value)) throw new RenderOptionsError(`${flag} ${value}: expected one of ${choices.join(', ')}`);
}

function checkScheduling(o: RenderOptions): void {
  for (const [flag, value] of [['--queue', o.queue], ['--priority-class', o.priorityClass]] as const) {
    if (value !== undefined && (!DNS_SUBDOMAIN.test(value) || value.length > 253)) throw new RenderOptionsError(`${flag} ${value}: expected a DNS subdomain name (lower-case letters, digits, '-', '.')`);
  }
  if (o.queue !== undefined && o.format === 'plain') {
    throw new RenderOptionsError('--queue needs --format jobset or trainjob: Kueue admits a JobSet as one unit, but two plain Jobs separately (a run could hold half its pods)');
  }
  if (o.workerCpu !== undefined && !CPU_QUANTITY.test(o.workerCpu)) throw new RenderOptionsError(`--worker-cpu ${o.workerCpu}: expected a CPU quantity such as 2, 1.5 or 500m`);
  if (o.workerMemory !== undefined && !MEMORY_QUANTITY.test(o.workerMemory)) throw new RenderOptionsError(`--worker-memory ${o.workerMemory}: expected a memory quantity such as 4Gi or 512Mi`);
}

export function checkOptions(o: RenderOptions): void {
  const name = o.name ?? 'mtl';
  // The longest derived name (`<name>-coordinator`) must stay a DNS label; Job pods add more.
  if (!DNS_LABEL.test(name) || name.length > 40) throw new RenderOptionsError(`--name ${name}: expected a DNS label (lower-case letters, digits, '-') of at most 40 characters`);
  if (o.namespace !== undefined && (!DNS_LABEL.test(o.namespace) || o.namespace.length > 63)) throw new RenderOptionsError(`--namespace ${o.namespace}: expected a DNS label of at most 63 characters`);
  if (o.createNamespace && o.namespace === undefined) throw new RenderOptionsError('--create-namespace needs --namespace');
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new RenderOptionsError(`--workers ${o.workers}: expected a positive integer`);
  checkChoice('--format', o.format, RENDER_FORMATS);
  checkChoice('--tls', o.tls, TLS_MODES);
  checkChoice('--gang', o.gang, GANG_MODES);
  const gpus = o.gpusPerWorker ?? 0;
  if (!Number.isInteger(gpus) || gpus < 0) throw new RenderOptionsError(`--gpus-per-worker ${gpus}: expected a non-negative integer`);
  if (gpus > 0 && o.gpuImage === undefined && defaultGpuImage(o.image) === undefined) {
    throw new RenderOptionsError(`--image ${o.image} has no tag to derive the GPU image from: give --gpu-image`);
  }
  if (o.dataCacheSize !== undefined && binaryQuantityBytes(o.dataCacheSize) === undefined) {
    throw new RenderOptionsError(`--data-cache-size ${o.dataCacheSize}: expected an integer with a binary unit (Ki, Mi, Gi, Ti), e.g. 20Gi`);
  }
  checkScheduling(o);
  if (o.trainerStatusServer !== undefined) {
    if (o.format !== 'trainjob') throw new RenderOptionsError('--trainer-status-server needs --format trainjob');
    if (o.namespace === undefined) throw new RenderOptionsError("--trainer-status-server needs --namespace: the status token's audience names the TrainJob's namespace");
    if (!/^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(o.trainerStatusServer)) throw new RenderOptionsError(`--trainer-status-server ${o.trainerStatusServer}: expected https://HOST[:PORT]`);
  }
  const mount = o.dataVolume?.mount;
  if (mount !== undefined) {
    for (const taken of [JOB_MOUNT, RUNS_MOUNT, CACHE_MOUNT, TLS_MOUNT, '/tmp', '/app']) {
      if (mount === taken || mount.startsWith(`${taken}/`) || taken.startsWith(`${mount}/`)) {
        throw new RenderOptionsError(`--data-volume ${o.dataVolume!.claim}:${mount}: the mount path overlaps ${taken}, which the pods use for something else`);
      }
    }
  }
}
