// `mtl k8s render` and `mtl k8s apply`: a job file in, Kubernetes objects out.
import { readFileSync, writeFileSync } from 'node:fs';
import { JobSpecError, errorMessage } from '../../common/errors.js';
import { loadJobFile } from '../../common/job-spec.js';
import { aggregatorNames } from '../../coordinator/aggregation/registry.js';
import { EXIT } from '../exit-codes.js';
import { ApplyError, KubeconfigError, applyObjects, loadKubeConfig } from './apply.js';
import { RenderOptionsError, objectsToYaml, renderObjects, validateObjects, type K8sObject } from './render.js';

export interface K8sRenderCommandOptions {
  workers: number;
  gpusPerWorker: number;
  image: string;
  gpuImage?: string;
  namespace?: string;
  createNamespace: boolean;
  name: string;
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
  try {
    // The same checks as every other command: an invalid job is refused before the cluster sees it.
    loadJobFile(jobFile, { aggregatorNames });
    jobText = readFileSync(jobFile, 'utf8');
  } catch (err) {
    if (err instanceof JobSpecError) {
      process.stderr.write(`${err.message}\n`);
      return undefined;
    }
    throw err;
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
