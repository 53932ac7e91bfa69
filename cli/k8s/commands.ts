// `mtl k8s render` and `mtl k8s apply`: a job file in, Kubernetes objects out.
import { readFileSync, writeFileSync } from 'node:fs';
import { JobSpecError, errorMessage } from '../../common/errors.js';
import { loadJobFile } from '../../common/job-spec.js';
import { aggregatorNames } from '../../coordinator/aggregation/registry.js';
import { EXIT } from '../exit-codes.js';
import { ApplyError, KubeconfigError, applyObjects, loadKubeConfig } from './apply.js';
import { jobFileRefs, parseDataVolume, podJobLocation, podPathProblems } from './pod-paths.js';
import { RenderOptionsError, objectsToYaml, renderObjects, validateObjects, type K8sObject } from './render.js';

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
  out?: string;
}

export interface K8sApplyCommandOptions extends Omit<K8sRenderCommandOptions, 'out'> {
  dryRun: boolean;
  serverDryRun: boolean;
  kubeconfig?: string;
  context?: string;
}

/** The objects for a job file; undefined (after saying why on stderr) when the job or options are invalid. */
function render(jobFile: string, opts: K8sRenderCommandOptions): K8sObject[] | undefined {
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
  try {
    objects = renderObjects({
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
    });
  } catch (err) {
    if (err instanceof RenderOptionsError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
  }
  // Our own output must satisfy the API schemas; a failure here is a bug (exit 1).
  validateObjects(objects);
  return objects;
}

export function k8sRenderCommand(jobFile: string, opts: K8sRenderCommandOptions): number {
  const objects = render(jobFile, opts);
  if (!objects) return EXIT.usage;
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
  const objects = render(jobFile, opts);
  if (!objects) return EXIT.usage;
  if (opts.dryRun) {
    // Nothing leaves this machine: exactly what would be applied.
    process.stdout.write(objectsToYaml(objects));
    return EXIT.ok;
  }
  try {
    const kc = await loadKubeConfig(opts);
    await applyObjects(objects, kc, opts, (line) => process.stdout.write(`${line}\n`));
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
