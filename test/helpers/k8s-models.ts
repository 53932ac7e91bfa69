// Offline Kubernetes schema checks for the manifests and rendered objects: each document is
// rebuilt as the kubernetes-models class of its apiVersion/kind and validated; the custom
// kinds (JobSet, ClusterTrainingRuntime, TrainJob, PodGroup) go through our strict schemas of
// their upstream API types (cli/k8s/crd-models.ts), which check their embedded Job templates
// with kubernetes-models; cert-manager's through @kubernetes-models/cert-manager too. A kind
// with no model here is an error, so a new kind cannot slip through unchecked.
import { spawnSync } from 'node:child_process';
import YAML from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { CUSTOM_MODELS, describeIssues } from '../../cli/k8s/crd-models.js';
import { requireTool } from './system-tools.js';

export interface K8sDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

type Validatable = new (data: never) => { validate(): void };
const MODELS: Record<string, Validatable> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'batch/v1/Job': Job,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/** The published cert-manager schemas, on top of our own check of what we render. */
const CERT_MANAGER: Record<string, Validatable> = {
  'cert-manager.io/v1/Certificate': Certificate,
  'cert-manager.io/v1/Issuer': Issuer,
};

/** Throws, naming the object, when the document breaks its kind's schema or has no model. */
export function validateDoc(doc: K8sDoc): void {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = MODELS[key] ?? CERT_MANAGER[key];
  const schema = CUSTOM_MODELS[key];
  if (!Model && !schema) throw new Error(`${key} ${doc.metadata?.name}: no kubernetes-models class or schema registered for this kind`);
  try {
    if (Model) new Model(doc as never).validate();
    if (schema) {
      const r = schema.safeParse(doc);
      if (!r.success) throw new Error(describeIssues(r.error));
    }
  } catch (err) {
    throw new Error(`${key} ${doc.metadata?.name}: ${(err as Error).message}`, { cause: err });
  }
}

export function parseDocs(yaml: string): K8sDoc[] {
  const docs = YAML.parseAllDocuments(yaml);
  for (const d of docs) if (d.errors.length > 0) throw new Error(`YAML: ${d.errors[0]!.message}`);
  return docs.map((d) => d.toJS() as K8sDoc).filter((d) => d !== null);
}

/** `kubectl kustomize DIR`, parsed. Fails clearly when kubectl ($KUBECTL, else /usr/bin/kubectl) is missing. */
export function kustomize(dir: string): K8sDoc[] {
  const r = spawnSync(requireTool('kubectl'), ['kustomize', dir], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} exited ${r.status}: ${r.stderr}`);
  return parseDocs(r.stdout);
}

export const byKindName = (docs: readonly K8sDoc[]) => new Map(docs.map((d) => [`${d.kind}/${d.metadata.name}`, d]));
