// `mtl k8s apply`: server-side apply of the rendered objects with the user's kubeconfig, as
// `kubectl apply --server-side` would. The client library loads only when this command runs.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig, KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import type { K8sObject } from './render.js';

/** No usable kubeconfig (exit 2: the user's setup, not the cluster, is the problem). */
// CLI-only conditions (they never cross gRPC), so they live here rather than in common/errors.ts.
export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
  readonly code = 'KUBECONFIG_UNUSABLE';
}

/** The cluster refused or could not be reached (exit 1). */
export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  readonly code = 'K8S_APPLY_FAILED';
}

export interface ApplyOptions {
  /** Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster account). */
  kubeconfig?: string;
  context?: string;
  /** Server-side dry run: the API server validates and admits, persists nothing. */
  serverDryRun?: boolean;
  fieldManager?: string;
  /** The run's TLS Secret: made (and applied) before the first workload when the cluster has none. */
  secret?: { name: string; make: (namespace: string | undefined) => Promise<K8sObject> };
}

/** The kinds that start pods: the run's Secret must exist before the first of them. */
const WORKLOADS = new Set(['JobSet', 'TrainJob', 'Job']);

function describeSource(opts: ApplyOptions): string {
  if (opts.kubeconfig !== undefined) return opts.kubeconfig;
  if (process.env.KUBECONFIG) return `$KUBECONFIG (${process.env.KUBECONFIG})`;
  return path.join(os.homedir(), '.kube', 'config');
}

/**
 * Loads the kubeconfig the way kubectl finds it. The client library would quietly fall back
 * to http://localhost:8080 when there is none; here that is an error that says where we looked.
 */
export async function loadKubeConfig(opts: ApplyOptions): Promise<KubeConfig> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  const source = describeSource(opts);
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);
  try {
    if (opts.kubeconfig !== undefined) {
      if (!existsSync(opts.kubeconfig)) throw new KubeconfigError(`kubeconfig ${opts.kubeconfig}: no such file`);
      kc.loadFromFile(opts.kubeconfig);
    } else if (process.env.KUBECONFIG || existsSync(path.join(os.homedir(), '.kube', 'config'))) {
      kc.loadFromDefault();
    } else if (inCluster) {
      kc.loadFromCluster();
    } else {
      throw new KubeconfigError(`no kubeconfig: ${source} does not exist, KUBECONFIG is unset and this is not a pod (give --kubeconfig FILE)`);
    }
  } catch (err) {
    if (err instanceof KubeconfigError) throw err;
    throw new KubeconfigError(`kubeconfig ${source}: ${(err as Error).message}`, { cause: err });
  }
  if (opts.context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === opts.context)) throw new KubeconfigError(`kubeconfig ${source}: no context named ${opts.context}`);
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) throw new KubeconfigError(`kubeconfig ${source}: no current context with a cluster (set one with kubectl config use-context, or give --context)`);
  return kc;
}

function apiMessage(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  if (typeof e.code === 'number' && e.body !== undefined) {
    let body: unknown = e.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body) as unknown;
      } catch {
        // Not a Status object: show it as it came.
      }
    }
    const message = (body as { message?: unknown } | null)?.message;
    return `HTTP ${e.code}: ${typeof message === 'string' ? message : typeof body === 'string' ? body : JSON.stringify(body)}`;
  }
  return typeof e.message === 'string' ? e.message : String(err);
}

/**
 * The run's Secret, left alone when it exists (its certificates and token are in use by
 * pods that may still run); otherwise made with a fresh CA and token, and applied.
 */
async function ensureSecret(client: KubernetesObjectApi, kc: KubeConfig, namespace: string | undefined, opts: ApplyOptions, report: (line: string) => void): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const name = `${opts.secret!.name}-tls`;
  const what = `secret/${name}`;
  try {
    await client.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name, ...(namespace !== undefined ? { namespace } : {}) } });
    report(`${what} exists (kept)`);
    return;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 404) throw new ApplyError(`${what}: ${apiMessage(err)}`, { cause: err });
  }
  // Certificate names with the namespace the Secret lands in (the context's when not given).
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const secret = await opts.secret!.make(namespace ?? contextNamespace);
  try {
    await client.patch(secret.toJSON() as KubernetesObject, undefined, opts.serverDryRun ? 'All' : undefined, opts.fieldManager ?? 'mtl', false, k8s.PatchStrategy.ServerSideApply);
  } catch (err) {
    throw new ApplyError(`${what}: ${apiMessage(err)}`, { cause: err });
  }
  report(`${what} created (mutual TLS certificates and join token)${opts.serverDryRun ? ' (server dry run)' : ''}`);
}

/** Applies the objects in order; reports one line per object, kubectl style. */
export async function applyObjects(objects: readonly K8sObject[], kc: KubeConfig, opts: ApplyOptions, report: (line: string) => void): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  let secretChecked = opts.secret === undefined;
  for (const obj of objects) {
    if (!secretChecked && WORKLOADS.has(obj.kind)) {
      secretChecked = true;
      await ensureSecret(client, kc, obj.metadata?.namespace, opts, report);
    }
    const what = `${obj.kind.toLowerCase()}/${obj.metadata?.name ?? '?'}`;
    try {
      await client.patch(obj.toJSON() as KubernetesObject, undefined, opts.serverDryRun ? 'All' : undefined, opts.fieldManager ?? 'mtl', false, k8s.PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new ApplyError(`${what}: ${apiMessage(err)}`, { cause: err });
    }
    report(`${what} serverside-applied${opts.serverDryRun ? ' (server dry run)' : ''}`);
  }
}
