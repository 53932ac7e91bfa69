// Gang scheduling for --gang podgroup: a scheduler-plugins (Coscheduling) PodGroup of every pod
// of the run, so that the scheduler binds the coordinator and all the workers together or
// none of them, and a run never holds half its pods while waiting for the rest. (--queue, the
// Kueue way, is a label on the JobSet: see jobset.ts.)
import { CustomResource } from './crd-models.js';
import type { RenderOptions } from './render-options.js';
import { meta } from './run-pods.js';

export const POD_GROUP_LABEL = 'scheduling.x-k8s.io/pod-group';
/** How long the scheduler keeps part of a gang waiting for the rest before it lets them go. */
export const POD_GROUP_TIMEOUT_SECONDS = 600;

export function podGroupName(o: RenderOptions): string {
  return o.name ?? 'mtl';
}

export function podGroupObject(o: RenderOptions): CustomResource {
  return new CustomResource({
    apiVersion: 'scheduling.x-k8s.io/v1alpha1',
    kind: 'PodGroup',
    metadata: meta(o, podGroupName(o), 'run'),
    // The coordinator and every worker; NATS is a StatefulSet of its own, outside the gang.
    spec: { minMember: o.workers + 1, scheduleTimeoutSeconds: POD_GROUP_TIMEOUT_SECONDS },
  });
}
