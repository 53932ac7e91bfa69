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

type JobLike = { spec?: { parallelism?: number; template?: { spec?: IPodSpec } } };

function podTemplates(doc: Doc): Array<{ job: string; replicas: number; pod: IPodSpec }> {
  const spec = doc.spec ?? {};
  const own = doc.metadata?.name ?? '?';
  const fromJob = (job: string, j: JobLike) => (j.spec?.template?.spec ? [{ job, replicas: j.spec.parallelism ?? 1, pod: j.spec.template.spec }] : []);
  const fromJobSet = (js: { replicatedJobs?: Array<{ name: string; replicas?: number; template: JobLike }> } | undefined) =>
    (js?.replicatedJobs ?? []).flatMap((r) => fromJob(r.name, r.template).map((t) => ({ ...t, replicas: t.replicas * (r.replicas ?? 1) })));
  switch (doc.kind) {
    case 'Job':
      return fromJob(own, doc);
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

/** The containers of every object that holds pods, init containers first within each pod. */
export function renderedContainers(docs: readonly unknown[]): RenderedContainer[] {
  const out: RenderedContainer[] = [];
  for (const raw of docs) {
    const doc = raw as Doc;
    for (const { job, replicas, pod } of podTemplates(doc)) {
      const entry = (c: IContainer, init: boolean): RenderedContainer => ({
        object: `${doc.kind}/${doc.metadata?.name ?? '?'}`,
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
  }
  return out;
}
