// --format jobset (the default): the coordinator and the workers as the two replicatedJobs of
// one JobSet, so that a run has one lifecycle. The JobSet succeeds when the coordinator's Job
// does (the workers then exit or are stopped), and restarts as a whole when a child Job fails
// for any reason but an invalid job; the coordinator's run id comes from the JobSet's uid,
// which stays the same across those restarts, so the new coordinator continues the run from
// its newest checkpoint in NATS.
import { CustomResource } from './crd-models.js';
import type { RenderOptions } from './render-options.js';
import { meta, type RunJobSpecs } from './run-pods.js';

export const JOBSET_API = 'jobset.x-k8s.io/v1alpha2';
/** Set by the JobSet controller on every child Job and pod. */
export const JOBSET_UID_LABEL = 'jobset.sigs.k8s.io/jobset-uid';
/** Kueue admits a labelled JobSet (or TrainJob) as one workload: all its pods, or none. */
export const KUEUE_QUEUE_LABEL = 'kueue.x-k8s.io/queue-name';
/** Whole-JobSet restarts before it is declared failed (each replaces every pod of the run). */
export const JOBSET_MAX_RESTARTS = 3;

export const COORDINATOR_JOB = 'coordinator';

/** The JobSet spec both jobset and trainjob use; `workersJob` is the workers' replicatedJob name. */
export function jobSetSpec(o: RenderOptions, specs: RunJobSpecs, workersJob: string, workersLabels: Record<string, string> = {}) {
  return {
    // Pods are reachable as <jobset>-<job>-<index>-<pod index>.<subdomain>; the workers still
    // dial the coordinator's Service, whose name the coordinator's certificate carries.
    network: { enableDNSHostnames: true, subdomain: `${o.name ?? 'mtl'}-pods` },
    // The run's outcome is the coordinator's: the workers have no end of their own.
    successPolicy: { operator: 'All', targetReplicatedJobs: [COORDINATOR_JOB] },
    failurePolicy: {
      maxRestarts: JOBSET_MAX_RESTARTS,
      rules: [
        // The coordinator's exit 2 (an invalid job or configuration) fails its Job through its
        // podFailurePolicy; starting again would fail the same way.
        { name: 'invalidJob', action: 'FailJobSet', onJobFailureReasons: ['PodFailurePolicy'], targetReplicatedJobs: [COORDINATOR_JOB] },
        // Anything else (a Job out of retries) restarts the run, counted against maxRestarts.
        // Pod disruptions never get here: the coordinator's Job ignores them.
        { name: 'restartRun', action: 'RestartJobSet' },
      ],
    },
    replicatedJobs: [
      { name: COORDINATOR_JOB, replicas: 1, template: { spec: specs.coordinator } },
      { name: workersJob, replicas: 1, template: { ...(Object.keys(workersLabels).length > 0 ? { metadata: { labels: workersLabels } } : {}), spec: specs.workers } },
    ],
  };
}

export function runLabels(o: RenderOptions, component: string): Record<string, string> {
  return { ...meta(o, '', component).labels, ...(o.queue !== undefined ? { [KUEUE_QUEUE_LABEL]: o.queue } : {}) };
}

export function jobSetObject(o: RenderOptions, specs: RunJobSpecs): CustomResource {
  const m = meta(o, o.name ?? 'mtl', 'run');
  return new CustomResource({
    apiVersion: JOBSET_API,
    kind: 'JobSet',
    metadata: { ...m, labels: runLabels(o, 'run') },
    spec: jobSetSpec(o, specs, 'workers'),
  });
}
