// `mtl k8s apply`: server-side apply of the rendered objects with the user's kubeconfig, as
// `kubectl apply --server-side` would. The client library loads only when this command runs.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KubeConfig, KubernetesObject } from '@kubernetes/client-node';
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
}

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

/** Applies the objects in order; reports one line per object, kubectl style. */
export async function applyObjects(objects: readonly K8sObject[], kc: KubeConfig, opts: ApplyOptions, report: (line: string) => void): Promise<void> {
  const k8s = await import('@kubernetes/client-node');
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) {
    const what = `${obj.kind.toLowerCase()}/${obj.metadata?.name ?? '?'}`;
    try {
      await client.patch(obj.toJSON() as KubernetesObject, undefined, opts.serverDryRun ? 'All' : undefined, opts.fieldManager ?? 'mtl', false, k8s.PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new ApplyError(`${what}: ${apiMessage(err)}`, { cause: err });
    }
    report(`${what} serverside-applied${opts.serverDryRun ? ' (server dry run)' : ''}`);
  }
}
