// Where a job's files are in the pods that `mtl k8s render` describes. A job names its data and
// model files by paths relative to the job file (or absolute); in a pod the job file is a
// ConfigMap mount, so a path that worked on the user's machine may name nothing there. Render
// checks every file reference before it emits anything, and refuses the ones that cannot work:
//
// - nats:// and http(s):// data: fetched by each pod into its data cache (fine);
// - an absolute path under the data volume's mount (`--data-volume PVC[:MOUNT]`): fine, the
//   volume is mounted in the coordinator and every worker (its content cannot be checked here);
// - a job shipped in the image (a file of this package's examples/ folder): the job file is
//   mounted at its own place in the image's examples, so its relative paths find the files
//   the image ships next to it — checked to exist here, in the same folder;
// - anything else: refused, naming the task and the path, with the ways that work.
import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DataSpec, ParsedJob } from '../../common/job-schema.js';
import { isRemoteData } from '../../common/data-store/urls.js';

/** Where the container image (deploy/docker/Dockerfile) keeps the package's example jobs and their data. */
export const IMAGE_EXAMPLES = '/app/examples';
/** Where the job file is mounted when it is not one of the image's examples. */
export const JOB_MOUNT = '/etc/mtl';
/** Where `--data-volume PVC` is mounted when no mount path is given. */
export const DEFAULT_DATA_MOUNT = '/mnt/data';

/** This package's examples folder (compiled code lives in dist/cli/k8s/). */
export function packageExamples(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples');
}

/** A file the job names, with the job path that names it (for messages). */
export interface JobFileRef {
  where: string;
  value: string;
}

/** The options of a data spec that hold file paths (not array names, columns or targets). */
function dataFileRefs(task: string, data: DataSpec): JobFileRef[] {
  const at = (key: string, value: string | undefined): JobFileRef[] => (value === undefined ? [] : [{ where: `tasks.${task}.data.${key}`, value }]);
  switch (data.dataset) {
    case 'multimnist':
    case 'synthetic':
      return [];
    case 'csv':
    case 'jsonl':
    case 'parquet':
      return [...at('path', data.path), ...at('test', data.test)];
    case 'npy':
      return [...at('inputs', data.inputs), ...at('target', data.target), ...at('test.inputs', data.test?.inputs), ...at('test.target', data.test?.target)];
    case 'npz':
      return at('path', data.path);
    case 'images':
      return [...at('path', data.path), ...at('labels', data.labels === 'from-folders' ? undefined : data.labels)];
  }
}

/** Every file reference of a job: the model's files, then each task's data, in task order. */
export function jobFileRefs(job: Pick<ParsedJob, 'model' | 'tasks'>): JobFileRef[] {
  const refs: JobFileRef[] = [];
  if (job.model.layersModel !== undefined) refs.push({ where: 'model.layersModel', value: job.model.layersModel });
  if (job.model.module !== undefined) refs.push({ where: 'model.module', value: job.model.module });
  for (const [task, spec] of Object.entries(job.tasks)) refs.push(...dataFileRefs(task, spec.data));
  return refs;
}

export interface DataVolume {
  claim: string;
  mount: string;
}

export interface PodJobLocation {
  /** The job file's path in the pods. */
  jobPath: string;
  /** Whether it is one of the image's examples (mounted over the image's copy). */
  inImage: boolean;
}

function isInside(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function real(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/** Where the job file goes in the pods: its own place in the image's examples, or the ConfigMap mount. */
export function podJobLocation(jobFile: string, examples = packageExamples()): PodJobLocation {
  const file = real(jobFile);
  const root = real(examples);
  if (existsSync(root) && isInside(file, root)) {
    return { jobPath: path.posix.join(IMAGE_EXAMPLES, ...path.relative(root, file).split(path.sep)), inImage: true };
  }
  return { jobPath: `${JOB_MOUNT}/job.yaml`, inImage: false };
}

/** The static part of a path that may be a glob (`data/parts/*.parquet` → `data/parts`). */
function staticPart(p: string): string {
  const parts = p.split('/');
  const i = parts.findIndex((s) => /[*?[\]{}]/.test(s));
  return i < 0 ? p : parts.slice(0, i).join('/') || '.';
}

/**
 * The problems of a job's file references in the pods, one message each (empty: none).
 * `jobFile`: the job file on this machine; `location`: where render puts it in the pods.
 */
export function podPathProblems(refs: readonly JobFileRef[], jobFile: string, location: PodJobLocation, volume: DataVolume | undefined, examples = packageExamples()): string[] {
  const problems: string[] = [];
  const localDir = path.dirname(path.resolve(jobFile));
  const podDir = path.posix.dirname(location.jobPath);
  for (const { where, value } of refs) {
    if (isRemoteData(value)) continue;
    const inPod = path.posix.resolve(podDir, staticPart(value));
    if (volume !== undefined && isInside(inPod, volume.mount)) continue;
    if (location.inImage && isInside(inPod, IMAGE_EXAMPLES)) {
      const local = path.resolve(localDir, staticPart(value));
      if (existsSync(local) && isInside(real(local), real(examples))) continue;
      problems.push(`${where}: ${value} is not among the files the image ships (${path.relative(process.cwd(), local) || local} does not exist in this package's examples)`);
      continue;
    }
    const ways = [
      `store it in the NATS object store (mtl data put FILE|DIR --nats URL --name NAME) and name it nats://NAME/...`,
      volume === undefined
        ? `put it on a volume (--data-volume PVC[:MOUNT], mounted at ${DEFAULT_DATA_MOUNT} by default) and give its absolute path there`
        : `give its absolute path under the data volume's mount ${volume.mount}`,
      `or serve it over http(s):// (the pods fetch it)`,
    ];
    problems.push(`${where}: ${value} would be ${inPod} in the pods, where nothing puts it: ${ways.join('; ')}`);
  }
  return problems;
}

/** `--data-volume PVC[:MOUNT]`; undefined with a message when malformed. */
export function parseDataVolume(value: string): DataVolume | string {
  const colon = value.indexOf(':');
  const claim = colon < 0 ? value : value.slice(0, colon);
  const mount = colon < 0 ? DEFAULT_DATA_MOUNT : value.slice(colon + 1);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(claim) || claim.length > 253) return `--data-volume ${value}: "${claim}" is not a PersistentVolumeClaim name`;
  if (!path.posix.isAbsolute(mount) || path.posix.normalize(mount) !== mount || mount === '/') return `--data-volume ${value}: the mount path must be an absolute, normalised path other than / (got "${mount}")`;
  return { claim, mount };
}
