// `mtl k8s render` and `mtl k8s apply`: a job file in, Kubernetes objects out.
import { readFileSync, writeFileSync } from 'node:fs';
import { JobSpecError, errorMessage } from '../../common/errors.js';
import { loadJobFile } from '../../common/job-spec.js';
import { aggregatorNames } from '../../coordinator/aggregation/registry.js';
import { EXIT } from '../exit-codes.js';
import { ApplyError, KubeconfigError, applyObjects, loadKubeConfig } from './apply.js';
import { jobFileRefs, parseDataVolume, podJobLocation, podPathProblems } from './pod-paths.js';
import { RenderOptionsError, objectsToYaml, renderObjects, validateObjects, type K8sObject, type RenderFormat, type RenderOptions, type TlsMode } from './render.js';
import { DNS_LABEL } from './render-options.js';
import { makeTlsSecret, secretHint } from './tls.js';

export interface K8sRenderCommandOptions {
  workers: number;
  gpusPerWorker: number;
  image: string;
  gpuImage?: string;
  namespace?: string;
  createNamespace: boolean;
  name: string;
  /** `PVC[:MOUNT]`: a claim holding the job's data, mounted read-only in every pod. */
  dataVolume?: string;
  dataCacheSize?: string;
  /** jobset (default), trainjob or plain. */
  format?: string;
  /** secret (default), cert-manager or insecure. */
  tls?: string;
  /** Plaintext gRPC: the same as --tls insecure. */
  insecure?: boolean;
  queue?: string;
  gang?: string;
  priorityClass?: string;
  workerCpu?: string;
  workerMemory?: string;
  trainerStatusServer?: string;
  out?: string;
}

/** --tls and --insecure as one mode (checked against the modes with the other options). */
export function tlsMode(opts: Pick<K8sRenderCommandOptions, 'tls' | 'insecure'>): TlsMode {
  if (opts.insecure === true) {
    if (opts.tls !== undefined && opts.tls !== 'insecure') throw new RenderOptionsError(`--insecure contradicts --tls ${opts.tls}: give one of them`);
    return 'insecure';
  }
  return (opts.tls ?? 'secret') as TlsMode;
}

export interface K8sApplyCommandOptions extends Omit<K8sRenderCommandOptions, 'out'> {
  dryRun: boolean;
  serverDryRun: boolean;
  kubeconfig?: string;
  context?: string;
}

/** The objects for a job file; undefined (after saying why on stderr) when the job or options are invalid. */
function render(jobFile: string, opts: K8sRenderCommandOptions): { objects: K8sObject[]; options: RenderOptions } | undefined {
  let jobText: string;
  let refs: ReturnType<typeof jobFileRefs>;
  try {
    // The same checks as every other command: an invalid job is refused before the cluster sees it.
    refs = jobFileRefs(loadJobFile(jobFile, { aggregatorNames }).spec);
    jobText = readFileSync(jobFile, 'utf8');
  } catch (err) {
    if (err instanceof JobSpecError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
  const volume = opts.dataVolume === undefined ? undefined : parseDataVolume(opts.dataVolume);
  if (typeof volume === 'string') {
    process.stderr.write(`${volume}\n`);
    return undefined;
  }
  // Every data and model file must exist in the pods: refused here rather than failing there.
  const location = podJobLocation(jobFile);
  const problems = podPathProblems(refs, jobFile, location, volume);
  if (problems.length > 0) {
    process.stderr.write(`${jobFile}: ${problems.length === 1 ? 'a file' : `${problems.length} files`} of the job would not exist in the pods:\n${problems.map((p) => `  ${p}\n`).join('')}`);
    return undefined;
  }
  let objects: K8sObject[];
  let options: RenderOptions;
  try {
    options = {
      jobText,
      workers: opts.workers,
      gpusPerWorker: opts.gpusPerWorker,
      image: opts.image,
      gpuImage: opts.gpuImage,
      namespace: opts.namespace,
      createNamespace: opts.createNamespace,
      name: opts.name,
      jobPath: location.jobPath,
      ...(volume !== undefined ? { dataVolume: volume } : {}),
      ...(opts.dataCacheSize !== undefined ? { dataCacheSize: opts.dataCacheSize } : {}),
      format: (opts.format ?? 'jobset') as RenderFormat,
      tls: tlsMode(opts),
      ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
      ...(opts.gang !== undefined ? { gang: opts.gang as RenderOptions['gang'] } : {}),
      ...(opts.priorityClass !== undefined ? { priorityClass: opts.priorityClass } : {}),
      ...(opts.workerCpu !== undefined ? { workerCpu: opts.workerCpu } : {}),
      ...(opts.workerMemory !== undefined ? { workerMemory: opts.workerMemory } : {}),
      ...(opts.trainerStatusServer !== undefined ? { trainerStatusServer: opts.trainerStatusServer } : {}),
    };
    objects = renderObjects(options);
  } catch (err) {
    if (err instanceof RenderOptionsError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
  // Our own output must satisfy the API schemas; a failure here is a bug (exit 1).
  validateObjects(objects);
  return { objects, options };
}

export function k8sRenderCommand(jobFile: string, opts: K8sRenderCommandOptions): number {
  const rendered = render(jobFile, opts);
  if (!rendered) return EXIT.usage;
  const { objects, options } = rendered;
  // The Secret holds private keys: render names it, and says how to make it, but never prints it.
  if (options.tls === 'secret') process.stderr.write(secretHint(options));
  const yaml = objectsToYaml(objects);
  if (opts.out === undefined) {
    process.stdout.write(yaml);
  } else {
    try {
      writeFileSync(opts.out, yaml);
    } catch (err) {
      process.stderr.write(`cannot write ${opts.out}: ${errorMessage(err)}\n`);
      return EXIT.failed;
    }
    process.stderr.write(`wrote ${objects.length} objects to ${opts.out}\n`);
  }
  return EXIT.ok;
}

export async function k8sApplyCommand(jobFile: string, opts: K8sApplyCommandOptions): Promise<number> {
  const rendered = render(jobFile, opts);
  if (!rendered) return EXIT.usage;
  const { objects, options } = rendered;
  if (opts.dryRun) {
    if (options.tls === 'secret') process.stderr.write(`(not shown: Secret ${options.name ?? 'mtl'}-tls, made on apply when missing)\n`);
    // Nothing leaves this machine: exactly what would be applied.
    process.stdout.write(objectsToYaml(objects));
    return EXIT.ok;
  }
  try {
    const kc = await loadKubeConfig(opts);
    const secret = options.tls === 'secret' ? { name: options.name ?? 'mtl', make: (namespace: string | undefined) => makeTlsSecret({ name: options.name ?? 'mtl', namespace }) } : undefined;
    await applyObjects(objects, kc, { ...opts, ...(secret ? { secret } : {}) }, (line) => process.stdout.write(`${line}\n`));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof KubeconfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof ApplyError) {
      process.stderr.write(`apply failed: ${err.message}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}

export interface K8sSecretCommandOptions {
  name: string;
  namespace?: string;
  days: number;
  out?: string;
}

/** `mtl k8s secret`: the run's TLS Secret as YAML (0 done, 1 openssl failed, 2 bad options). */
export async function k8sSecretCommand(opts: K8sSecretCommandOptions): Promise<number> {
  if (!DNS_LABEL.test(opts.name) || opts.name.length > 40) {
    process.stderr.write(`--name ${opts.name}: expected a DNS label (lower-case letters, digits, '-') of at most 40 characters\n`);
    return EXIT.usage;
  }
  if (opts.namespace !== undefined && (!DNS_LABEL.test(opts.namespace) || opts.namespace.length > 63)) {
    process.stderr.write(`--namespace ${opts.namespace}: expected a DNS label of at most 63 characters\n`);
    return EXIT.usage;
  }
  let yaml: string;
  try {
    yaml = objectsToYaml([await makeTlsSecret(opts)]);
  } catch (err) {
    process.stderr.write(`mtl k8s secret: ${errorMessage(err)}\n`);
    return EXIT.failed;
  }
  if (opts.out === undefined) {
    process.stdout.write(yaml);
    return EXIT.ok;
  }
  try {
    writeFileSync(opts.out, yaml, { mode: 0o600 });
  } catch (err) {
    process.stderr.write(`cannot write ${opts.out}: ${errorMessage(err)}\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}
