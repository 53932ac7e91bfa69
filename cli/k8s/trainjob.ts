// --format trainjob: a Kubeflow Trainer (v2) ClusterTrainingRuntime whose template is the
// JobSet of --format jobset, and a TrainJob that refers to it. Trainer names the JobSet after
// the TrainJob, sets the trainer nodes' count from trainer.numNodes and merges
// trainer.resourcesPerNode into the container named `node`; so the workers are the
// replicatedJob `node` (labelled as the trainer step) with a container `node`, and the
// coordinator is a replicatedJob of ours beside it.
import { TRAINER_STATUS_ENV } from '../../coordinator/trainer-status.js';
import { CustomResource } from './crd-models.js';
import { COORDINATOR_JOB, jobSetSpec, runLabels } from './jobset.js';
import type { RenderOptions } from './render-options.js';
import { labels, meta, workerResources, type RunJobSpecs } from './run-pods.js';

export const TRAINER_API = 'trainer.kubeflow.org/v1alpha1';
export const TRAINER_NODE = 'node';
const ANCESTOR_LABEL = 'trainer.kubeflow.org/trainjob-ancestor-step';

export function runtimeName(name: string): string {
  return `mtl-orchestrator-${name}`;
}

const STATUS_MOUNT = '/var/run/secrets/kubeflow/trainer';

/**
 * The coordinator reports progress, but Trainer injects the status server's address, CA and
 * token only into the trainer nodes (the workers). A runtime patch gives the coordinator the
 * same: a service-account token for the TrainJob's audience, the CA ConfigMap Trainer makes
 * for it (optional: without the feature gate there is none, and the pod still starts), and
 * the variables. The token's audience names the TrainJob, hence a patch of the TrainJob.
 */
function statusPatch(o: RenderOptions) {
  const ns = o.namespace!;
  const job = o.name ?? 'mtl';
  const path = `/apis/trainer.kubeflow.org/v1alpha1/namespaces/${ns}/trainjobs/${job}/status`;
  return {
    manager: 'mtl-orchestrator',
    trainingRuntimeSpec: {
      template: {
        spec: {
          replicatedJobs: [
            {
              name: COORDINATOR_JOB,
              template: {
                spec: {
                  template: {
                    spec: {
                      volumes: [
                        {
                          name: 'trainer-status',
                          projected: {
                            sources: [
                              { serviceAccountToken: { audience: `trainer.kubeflow.org/v1alpha1/namespaces/${ns}/trainjobs/${job}/status`, expirationSeconds: 3600, path: 'token' } },
                              { configMap: { name: `${job}-tls-config`, items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } },
                            ],
                          },
                        },
                      ],
                      containers: [
                        {
                          name: 'coordinator',
                          env: [
                            { name: TRAINER_STATUS_ENV.url, value: `${o.trainerStatusServer!}${path}` },
                            { name: TRAINER_STATUS_ENV.ca, value: `${STATUS_MOUNT}/ca.crt` },
                            { name: TRAINER_STATUS_ENV.token, value: `${STATUS_MOUNT}/token` },
                          ],
                          volumeMounts: [{ name: 'trainer-status', mountPath: STATUS_MOUNT, readOnly: true }],
                        },
                      ],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    },
  };
}

export function trainJobObjects(o: RenderOptions, specs: RunJobSpecs): CustomResource[] {
  const name = o.name ?? 'mtl';
  const runtime = new CustomResource({
    apiVersion: TRAINER_API,
    kind: 'ClusterTrainingRuntime',
    // Cluster-scoped: its name carries the run's prefix, since its template names the run's objects.
    metadata: { name: runtimeName(name), labels: labels(name, 'runtime') },
    spec: {
      mlPolicy: { numNodes: o.workers },
      // Trainer makes the PodGroup itself (minMember: every pod of the JobSet).
      ...(o.gang === 'podgroup' ? { podGroupPolicy: { coscheduling: { scheduleTimeoutSeconds: 600 } } } : {}),
      template: { spec: jobSetSpec(o, specs, TRAINER_NODE, { [ANCESTOR_LABEL]: 'trainer' }) },
    },
  });
  const trainJob = new CustomResource({
    apiVersion: TRAINER_API,
    kind: 'TrainJob',
    metadata: { ...meta(o, name, 'run'), labels: runLabels(o, 'run') },
    spec: {
      runtimeRef: { name: runtimeName(name), apiGroup: 'trainer.kubeflow.org', kind: 'ClusterTrainingRuntime' },
      trainer: { numNodes: o.workers, resourcesPerNode: workerResources(o) },
      ...(o.trainerStatusServer !== undefined ? { runtimePatches: [statusPatch(o)] } : {}),
    },
  });
  return [runtime, trainJob];
}
