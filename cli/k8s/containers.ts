// Every container of a render, with what it would run: for tests that start the rendered
// commands as local processes, and for anyone reading a render. Works on the plain JSON of the
// objects (renderObjects' toJSON, or the parsed YAML), whatever the format holds them in.
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';

export interface RenderedContainer {
  /** `Kind/name` of the object that holds the pod template. */
  object: string;
  /** The Job of that object: a replicatedJob's name, the Job's or StatefulSet's own name. */
  job: string;
  /** Pods of that template that run at once (a Job's parallelism, a StatefulSet's replicas). */
  replicas: number;
  name: string;
  /** An init container: runs to completion before the others start. */
  init: boolean;
  image: string;
  command: string[];
  args: string[];
  env: IEnvVar[];
  volumeMounts: IVolumeMount[];
  resources: NonNullable<IContainer['resources']>;
  /** The pod's volumes, for the mounts' sources. */
  volumes: IVolume[];
  restartPolicy?: string;
}

interface Doc {
  kind?: string;
  metadata?: { name?: string };
  spec?: Record<string, unknown>;
}

type Labels = Record<string, string>;
type JobLike = { metadata?: { labels?: Labels }; spec?: { parallelism?: number; template?: { metadata?: { labels?: Labels }; spec?: IPodSpec } } };

/** One pod template of a render: where it is, how many pods it runs at once, its pods' labels and spec. */
export interface RenderedPodTemplate {
  /** `Kind/name` of the object that holds it. */
  object: string;
  /** The Job of that object: a replicatedJob's name, the Job's or StatefulSet's own name. */
  job: string;
  /** Pods of the template that run at once (a Job's parallelism × a replicated job's replicas, a StatefulSet's replicas). */
  replicas: number;
  /** The labels its pods carry from the render (a replicated job's template's, then the pod template's). */
  labels: Labels;
  pod: IPodSpec;
}

function docTemplates(doc: Doc): RenderedPodTemplate[] {
  const spec = doc.spec ?? {};
  const own = doc.metadata?.name ?? '?';
  const object = `${doc.kind}/${own}`;
  const fromJob = (job: string, j: JobLike, outer: Labels = {}): RenderedPodTemplate[] =>
    j.spec?.template?.spec ? [{ object, job, replicas: j.spec.parallelism ?? 1, labels: { ...outer, ...j.spec.template.metadata?.labels }, pod: j.spec.template.spec }] : [];
  const fromJobSet = (js: { replicatedJobs?: Array<{ name: string; replicas?: number; template: JobLike }> } | undefined) =>
    (js?.replicatedJobs ?? []).flatMap((r) => fromJob(r.name, r.template, r.template.metadata?.labels).map((t) => ({ ...t, replicas: t.replicas * (r.replicas ?? 1) })));
  switch (doc.kind) {
    case 'Job':
      return fromJob(own, doc as JobLike);
    case 'StatefulSet':
      return fromJob(own, doc as JobLike).map((t) => ({ ...t, replicas: (spec.replicas as number | undefined) ?? 1 }));
    case 'JobSet':
      return fromJobSet(spec);
    case 'ClusterTrainingRuntime':
      return fromJobSet((spec.template as { spec?: never } | undefined)?.spec);
    default:
      return [];
  }
}

/** Every pod template of the objects that hold pods (Job, StatefulSet, JobSet, ClusterTrainingRuntime). */
export function renderedPodTemplates(docs: readonly unknown[]): RenderedPodTemplate[] {
  return docs.flatMap((raw) => docTemplates(raw as Doc));
}

/** The containers of every object that holds pods, init containers first within each pod. */
export function renderedContainers(docs: readonly unknown[]): RenderedContainer[] {
  const out: RenderedContainer[] = [];
  for (const { object, job, replicas, pod } of renderedPodTemplates(docs)) {
    const entry = (c: IContainer, init: boolean): RenderedContainer => ({
      object,
      job,
      replicas,
      name: c.name,
      init,
      image: c.image ?? '',
      command: c.command ?? [],
      args: c.args ?? [],
      env: c.env ?? [],
      volumeMounts: c.volumeMounts ?? [],
      resources: c.resources ?? {},
      volumes: pod.volumes ?? [],
      ...(pod.restartPolicy !== undefined ? { restartPolicy: pod.restartPolicy } : {}),
    });
    for (const c of pod.initContainers ?? []) out.push(entry(c, true));
    for (const c of pod.containers) out.push(entry(c, false));
  }
  return out;
}
