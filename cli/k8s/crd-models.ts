// Strict schemas of the custom resources mtl renders, written from their API types (no npm
// package models them): JobSet jobset.x-k8s.io/v1alpha2 as of kubernetes-sigs/jobset v0.12.0
// (api/jobset/v1alpha2/jobset_types.go), ClusterTrainingRuntime and TrainJob
// trainer.kubeflow.org/v1alpha1 as of kubeflow/trainer v2.3.0 (pkg/apis/trainer/v1alpha1), and
// PodGroup scheduling.x-k8s.io/v1alpha1 of kubernetes-sigs/scheduler-plugins. Unknown fields are
// rejected; the embedded core types (Job templates, env, volumes, resources, metadata) are
// checked with kubernetes-models' own schemas, so a JobSet's pods meet batch/v1's rules.
import { JobTemplateSpec } from 'kubernetes-models/batch/v1/JobTemplateSpec';
import { Affinity } from 'kubernetes-models/v1/Affinity';
import { EnvVar } from 'kubernetes-models/v1/EnvVar';
import { LocalObjectReference } from 'kubernetes-models/v1/LocalObjectReference';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { PodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import { ResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import { SecurityContext } from 'kubernetes-models/v1/SecurityContext';
import { Toleration } from 'kubernetes-models/v1/Toleration';
import { Volume } from 'kubernetes-models/v1/Volume';
import { VolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { z } from 'zod';

type Checked = new (data: never) => { validate(): void };

/** A core type, checked by kubernetes-models (its schema's message, under this path). */
function core(Model: Checked) {
  return z.custom<Record<string, unknown>>().superRefine((value, ctx) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'expected an object' });
      return;
    }
    try {
      new Model(value as never).validate();
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
}

const int32 = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const nonNegative32 = int32.min(0);
const name253 = z.string().min(1).max(253);
const unique = (items: z.ZodType<string>) =>
  z.array(items).refine((a) => new Set(a).size === a.length, { message: 'items must be unique' });
// The metadata a rendered object carries (the API server fills in the rest).
const labelMap = z.record(z.string().max(316), z.string().max(63).regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/));
const objectMeta = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/).max(253).optional(),
  namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63).optional(),
  labels: labelMap.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

// ---- JobSet jobset.x-k8s.io/v1alpha2 (v0.12.0) ----

const failurePolicyRule = z.strictObject({
  name: z.string().regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  action: z.enum(['FailJobSet', 'RestartJobSet', 'RestartJobSetAndIgnoreMaxRestarts', 'RestartJob', 'RestartJobAndIgnoreMaxRestarts']),
  onJobFailureReasons: unique(z.string()).optional(),
  onJobFailureMessagePatterns: unique(z.string()).optional(),
  targetReplicatedJobs: z.array(z.string()).optional(),
});

const replicatedJob = z.strictObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).max(63),
  groupName: z.string().optional(),
  template: core(JobTemplateSpec),
  replicas: nonNegative32.optional(),
  dependsOn: z.array(z.strictObject({ name: z.string(), status: z.enum(['Ready', 'Complete']) })).max(5).optional(),
});

export const jobSetSpec = z
  .strictObject({
    replicatedJobs: z.array(replicatedJob).optional(),
    network: z.strictObject({ enableDNSHostnames: z.boolean().optional(), subdomain: z.string().optional(), publishNotReadyAddresses: z.boolean().optional() }).optional(),
    successPolicy: z.strictObject({ operator: z.enum(['All', 'Any']), targetReplicatedJobs: z.array(z.string()).optional() }).optional(),
    failurePolicy: z
      .strictObject({
        maxRestarts: nonNegative32.optional(),
        restartStrategy: z.enum(['Recreate', 'BlockingRecreate', 'InPlaceRestart']).optional(),
        rules: z.array(failurePolicyRule).optional(),
      })
      .optional(),
    startupPolicy: z.strictObject({ startupPolicyOrder: z.enum(['AnyOrder', 'InOrder']) }).optional(),
    suspend: z.boolean().optional(),
    coordinator: z.strictObject({ replicatedJob: z.string(), jobIndex: z.number().int().optional(), podIndex: z.number().int().optional() }).optional(),
    managedBy: z.string().max(63).optional(),
    ttlSecondsAfterFinished: nonNegative32.optional(),
    volumeClaimPolicies: z
      .array(z.strictObject({ templates: z.array(core(PersistentVolumeClaim)).max(50).optional(), retentionPolicy: z.strictObject({ whenDeleted: z.enum(['Delete', 'Retain']).optional() }).optional() }))
      .max(50)
      .optional(),
  })
  .superRefine((spec, ctx) => {
    const names = (spec.replicatedJobs ?? []).map((r) => r.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['replicatedJobs'], message: 'replicatedJob names must be unique' });
    if (spec.startupPolicy?.startupPolicyOrder === 'InOrder' && (spec.replicatedJobs ?? []).some((r) => r.dependsOn !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['startupPolicy'], message: 'StartupPolicy and DependsOn APIs are mutually exclusive' });
    }
    const known = (targets: readonly string[] | undefined, path: (string | number)[]) => {
      for (const t of targets ?? []) if (!names.includes(t)) ctx.addIssue({ code: 'custom', path, message: `${t} is not a replicatedJob of this JobSet` });
    };
    known(spec.successPolicy?.targetReplicatedJobs, ['successPolicy', 'targetReplicatedJobs']);
    spec.failurePolicy?.rules?.forEach((r, i) => known(r.targetReplicatedJobs, ['failurePolicy', 'rules', i, 'targetReplicatedJobs']));
    if (spec.coordinator !== undefined) known([spec.coordinator.replicatedJob], ['coordinator', 'replicatedJob']);
  });

const dnsLabelName = z.string().regex(/^[a-z]([-a-z0-9]*[a-z0-9])?$/, 'metadata.name must match RFC 1035 DNS label format').max(63);

export const jobSet = z.strictObject({
  apiVersion: z.literal('jobset.x-k8s.io/v1alpha2'),
  kind: z.literal('JobSet'),
  metadata: objectMeta,
  spec: jobSetSpec,
});

// ---- Kubeflow Trainer trainer.kubeflow.org/v1alpha1 (v2.3.0) ----

const mlPolicy = z
  .strictObject({
    numNodes: int32.optional(),
    torch: z
      .strictObject({
        envInjection: z
          .strictObject({
            targets: z
              .array(
                z.strictObject({
                  jobName: name253,
                  containerNames: z.array(z.string().max(63)).min(1).max(8).refine((c) => !c.includes('node'), { message: 'containerNames must not include the main node container' }),
                }),
              )
              .max(16)
              .optional(),
          })
          .optional(),
      })
      .optional(),
    mpi: z
      .strictObject({
        numProcPerNode: int32.optional(),
        mpiImplementation: z.enum(['OpenMPI', '']).optional(),
        sshAuthMountPath: z.string().max(4096).optional(),
        runLauncherAsNode: z.boolean().optional(),
      })
      .optional(),
    flux: z.strictObject({ numProcPerNode: int32.min(1).optional() }).optional(),
    jax: z.strictObject({}).optional(),
    xgboost: z.strictObject({}).optional(),
  })
  .refine((p) => [p.torch, p.mpi, p.jax, p.xgboost, p.flux].filter((x) => x !== undefined).length <= 1, { message: 'Only one of the policy can be configured' });

const podGroupPolicy = z
  .strictObject({
    coscheduling: z.strictObject({ scheduleTimeoutSeconds: int32.optional() }).optional(),
    volcano: z.strictObject({ networkTopology: z.record(z.string(), z.unknown()).optional() }).optional(),
  })
  .refine((p) => !(p.coscheduling && p.volcano), { message: 'only one of coscheduling and volcano may be specified' });

const trainingRuntimeSpec = z
  .strictObject({
    mlPolicy: mlPolicy.optional(),
    podGroupPolicy: podGroupPolicy.optional(),
    template: z.strictObject({ metadata: objectMeta.optional(), spec: jobSetSpec.optional() }).refine((t) => Object.keys(t).length >= 1, { message: 'template must have at least 1 property' }),
  })
  .refine((s) => Object.keys(s).length >= 1, { message: 'spec must have at least 1 property' });

export const clusterTrainingRuntime = z.strictObject({
  apiVersion: z.literal('trainer.kubeflow.org/v1alpha1'),
  kind: z.literal('ClusterTrainingRuntime'),
  metadata: objectMeta.refine((m) => m.namespace === undefined, { message: 'a ClusterTrainingRuntime is cluster-scoped: no namespace' }),
  spec: trainingRuntimeSpec,
});

const storageUri = z
  .string()
  .max(2048)
  .refine((s) => s === '' || /^[A-Za-z][A-Za-z0-9+.-]*:\/\/.+$/.test(s), { message: 'storageUri may be empty, or it must be a valid URI (scheme://...)' });
const initializerSource = z.strictObject({ storageUri: storageUri.optional(), env: z.array(core(EnvVar)).max(128).optional(), secretRef: core(LocalObjectReference).optional() });
const containerPatch = z.strictObject({
  name: name253,
  env: z.array(core(EnvVar)).max(128).optional(),
  volumeMounts: z.array(core(VolumeMount)).max(128).optional(),
  securityContext: core(SecurityContext).optional(),
});
const podSpecPatch = z.strictObject({
  serviceAccountName: z.string().max(253).optional(),
  volumes: z.array(core(Volume)).max(128).optional(),
  initContainers: z.array(containerPatch).max(64).optional(),
  containers: z.array(containerPatch).max(64).optional(),
  imagePullSecrets: z.array(core(LocalObjectReference)).max(64).optional(),
  securityContext: core(PodSecurityContext).optional(),
  nodeSelector: z.record(z.string(), z.string()).optional(),
  affinity: core(Affinity).optional(),
  tolerations: z.array(core(Toleration)).max(128).optional(),
  schedulingGates: z.array(z.strictObject({ name: z.string() })).max(16).optional(),
  terminationGracePeriodSeconds: z.number().int().min(0).optional(),
});
const runtimePatch = z.strictObject({
  manager: name253,
  time: z.string().optional(),
  trainingRuntimeSpec: z
    .strictObject({
      template: z
        .strictObject({
          metadata: objectMeta.optional(),
          spec: z
            .strictObject({
              replicatedJobs: z
                .array(
                  z.strictObject({
                    name: name253,
                    template: z
                      .strictObject({
                        metadata: objectMeta.optional(),
                        spec: z.strictObject({ template: z.strictObject({ metadata: objectMeta.optional(), spec: podSpecPatch.optional() }).optional() }).optional(),
                      })
                      .optional(),
                  }),
                )
                .max(100)
                .optional(),
            })
            .optional(),
        })
        .optional(),
    })
    .optional(),
});

export const trainJob = z.strictObject({
  apiVersion: z.literal('trainer.kubeflow.org/v1alpha1'),
  kind: z.literal('TrainJob'),
  metadata: objectMeta.refine((m) => typeof m.name === 'string' && dnsLabelName.safeParse(m.name).success, { message: 'metadata.name must be an RFC 1035 DNS label of at most 63 characters' }),
  spec: z.strictObject({
    runtimeRef: z.strictObject({ name: name253, apiGroup: z.string().max(253).optional(), kind: z.string().max(253).optional() }),
    initializer: z.strictObject({ dataset: initializerSource.optional(), model: initializerSource.optional() }).optional(),
    trainer: z
      .strictObject({
        image: z.string().max(500).optional(),
        command: z.array(z.string().max(1048576)).max(128).optional(),
        args: z.array(z.string().max(1048576)).max(128).optional(),
        env: z.array(core(EnvVar)).max(128).optional(),
        numNodes: int32.optional(),
        resourcesPerNode: core(ResourceRequirements).optional(),
        numProcPerNode: int32.optional(),
      })
      .optional(),
    runtimePatches: z.array(runtimePatch).max(16).optional(),
    suspend: z.boolean().optional(),
    activeDeadlineSeconds: z.number().int().min(1).optional(),
    managedBy: z.enum(['trainer.kubeflow.org/trainjob-controller', 'kueue.x-k8s.io/multikueue']).optional(),
  }),
});

// ---- scheduler-plugins scheduling.x-k8s.io/v1alpha1 ----

const quantity = z.union([z.string().regex(/^[+-]?[0-9.]+([eE][+-]?[0-9]+|[mkMGTPE]|[KMGTPE]i)?$/), z.number()]);
export const podGroup = z.strictObject({
  apiVersion: z.literal('scheduling.x-k8s.io/v1alpha1'),
  kind: z.literal('PodGroup'),
  metadata: objectMeta,
  spec: z.strictObject({ minMember: int32.optional(), minResources: z.record(z.string(), quantity).optional(), scheduleTimeoutSeconds: int32.optional() }),
});

// ---- cert-manager.io/v1: the parts of Issuer and Certificate mtl renders (tests check the
// rendered objects against @kubernetes-models/cert-manager's full schemas as well) ----

const issuerRef = z.strictObject({ name: z.string().min(1), kind: z.enum(['Issuer', 'ClusterIssuer']).optional(), group: z.literal('cert-manager.io').optional() });
export const issuer = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Issuer'),
  metadata: objectMeta,
  spec: z.union([z.strictObject({ selfSigned: z.strictObject({}) }), z.strictObject({ ca: z.strictObject({ secretName: z.string().min(1) }) })]),
});
export const certificate = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Certificate'),
  metadata: objectMeta,
  spec: z.strictObject({
    secretName: z.string().min(1),
    commonName: z.string().max(64).optional(),
    isCA: z.boolean().optional(),
    dnsNames: z.array(z.string()).optional(),
    duration: z.string().regex(/^([0-9]+h)?([0-9]+m)?([0-9]+s)?$/).optional(),
    renewBefore: z.string().regex(/^([0-9]+h)?([0-9]+m)?([0-9]+s)?$/).optional(),
    usages: z.array(z.enum(['digital signature', 'key encipherment', 'server auth', 'client auth', 'cert sign', 'crl sign'])).optional(),
    privateKey: z.strictObject({ algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']), size: z.number().int().optional(), rotationPolicy: z.enum(['Never', 'Always']).optional() }).optional(),
    issuerRef,
  }),
});

/** Every custom kind mtl renders, by `apiVersion/kind`. */
export const CUSTOM_MODELS: Record<string, z.ZodType> = {
  'jobset.x-k8s.io/v1alpha2/JobSet': jobSet,
  'trainer.kubeflow.org/v1alpha1/ClusterTrainingRuntime': clusterTrainingRuntime,
  'trainer.kubeflow.org/v1alpha1/TrainJob': trainJob,
  'scheduling.x-k8s.io/v1alpha1/PodGroup': podGroup,
  'cert-manager.io/v1/Issuer': issuer,
  'cert-manager.io/v1/Certificate': certificate,
};

/** The first problems of a failed parse, each with its path. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('/') : '(object)'}: ${i.message}`)
    .join('; ');
}

/** A custom resource: plain data with the schema of its kind (K8sObject's shape). */
export class CustomResource {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  readonly spec: Record<string, unknown>;

  constructor(data: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec: Record<string, unknown> }) {
    this.apiVersion = data.apiVersion;
    this.kind = data.kind;
    this.metadata = data.metadata;
    this.spec = data.spec;
  }

  validate(): void {
    const schema = CUSTOM_MODELS[`${this.apiVersion}/${this.kind}`];
    if (!schema) throw new Error(`${this.apiVersion}/${this.kind}: no schema for this kind`);
    const r = schema.safeParse(this.toJSON());
    if (!r.success) throw new Error(describeIssues(r.error));
  }

  toJSON(): { apiVersion: string; kind: string; metadata: CustomResource['metadata']; spec: Record<string, unknown> } {
    // Through JSON: the schemas and YAML see plain data, as the API server would.
    return JSON.parse(JSON.stringify({ apiVersion: this.apiVersion, kind: this.kind, metadata: this.metadata, spec: this.spec })) as ReturnType<CustomResource['toJSON']>;
  }
}
