// The Kubernetes objects of one training run: the job file in a ConfigMap, the coordinator
// and N workers (one JobSet by default; a Kubeflow TrainJob and its runtime; or two plain
// Jobs), the coordinator's Service, NATS with JetStream, a volume for the run directories and
// a NetworkPolicy that admits only the run's own pods. The pods speak mutual TLS with a join
// token unless asked not to. deploy/k8s/base is this function's output for its job.yaml and
// 2 workers (a test keeps the two equal), so `kubectl apply -k` and `mtl k8s render` agree.
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import YAML from 'yaml';
import { certManagerObjects } from './cert-manager.js';
import { JOBSET_UID_LABEL, jobSetObject } from './jobset.js';
import { checkOptions, RenderOptionsError, type K8sObject, type RenderOptions } from './render-options.js';
import { labels, meta, networkPolicy, runJobSpecs, runNames, supportObjects, type JobSpecOptions } from './run-pods.js';
import { POD_GROUP_LABEL, podGroupName, podGroupObject } from './scheduling.js';
import { TRAINER_NODE, trainJobObjects } from './trainjob.js';

export { JOB_MOUNT } from './pod-paths.js';
export { CACHE_MOUNT, RUNS_MOUNT, TLS_MOUNT, RenderOptionsError, binaryQuantityBytes, defaultGpuImage, type K8sObject, type RenderFormat, type RenderOptions, type TlsMode } from './render-options.js';
export { COORDINATOR_ATTEMPTS, GRPC_PORT, HTTP_PORT, NATS_CLIENT_PORT, NATS_IMAGE, NATS_MONITOR_PORT } from './run-pods.js';

/** Plain Jobs: the uid of the coordinator's Job (new whenever the Job is created again). */
const JOB_UID = { env: 'JOB_UID', label: 'batch.kubernetes.io/controller-uid' };
/** JobSet and TrainJob: the JobSet's uid, the same across the JobSet's restarts of its Jobs. */
const JOBSET_UID = { env: 'JOBSET_UID', label: JOBSET_UID_LABEL };

function extraChecks(o: RenderOptions): void {
  if (o.format === 'trainjob' && !/^[a-z]/.test(o.name ?? 'mtl')) throw new RenderOptionsError(`--name ${o.name}: a TrainJob's name must start with a letter`);
}

/** The objects, in the order they should be applied (namespace, config and Secrets before their users). */
export function renderObjects(o: RenderOptions): K8sObject[] {
  checkOptions(o);
  extraChecks(o);
  const format = o.format ?? 'jobset';
  const name = o.name ?? 'mtl';
  const gang = o.gang === 'podgroup' && format !== 'trainjob';
  const jobOptions: JobSpecOptions = {
    runId: format === 'plain' ? JOB_UID : JOBSET_UID,
    workerContainer: format === 'trainjob' ? TRAINER_NODE : 'worker',
    ...(gang ? { podLabels: { [POD_GROUP_LABEL]: podGroupName(o) } } : {}),
  };
  const specs = runJobSpecs(o, jobOptions);

  const objects: K8sObject[] = [];
  if (o.createNamespace) objects.push(new Namespace({ metadata: { name: o.namespace!, labels: { 'app.kubernetes.io/name': 'mtl-orchestrator' } } }));
  objects.push(...supportObjects(o));
  if (o.tls === 'cert-manager') objects.push(...certManagerObjects(o));
  if (gang) objects.push(podGroupObject(o));
  if (format === 'plain') {
    const names = runNames(name);
    objects.push(new Job({ metadata: meta(o, names.coordinator, 'coordinator'), spec: specs.coordinator }));
    objects.push(new Job({ metadata: meta(o, names.workers, 'worker'), spec: specs.workers }));
  } else if (format === 'jobset') {
    objects.push(jobSetObject(o, specs));
  } else {
    objects.push(...trainJobObjects(o, specs));
  }
  objects.push(networkPolicy(o));
  return objects;
}

/** Validates every object against the schema of its kind (throws the first failure, named). */
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

export { labels };
