// Mutual TLS and the join token in the rendered pods. Every mtl pod mounts one read-only
// projected volume at TLS_MOUNT with the same four file names (ca.crt, tls.crt, tls.key,
// token), whichever Secrets they come from: the run's own Secret (made by `mtl k8s secret` or
// `mtl k8s apply`), or the Secrets cert-manager writes for the rendered Certificates plus a
// token Secret. Each pod gets its own role's key only: workers never see the coordinator's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Secret } from 'kubernetes-models/v1/Secret';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { newToken } from '../../common/security.js';
import { certsInit } from '../certs.js';
import { TLS_MOUNT, type RenderOptions } from './render-options.js';

/** Files readable by the pods' group (fsGroup 1000) and nobody else. */
const SECRET_FILE_MODE = 0o440;

export const tlsMount: IVolumeMount = { name: 'tls', mountPath: TLS_MOUNT, readOnly: true };

/** The flags that point coordinator and workers at the mounted files. */
export function tlsArgs(): string[] {
  return ['--tls-ca', `${TLS_MOUNT}/ca.crt`, '--tls-cert', `${TLS_MOUNT}/tls.crt`, '--tls-key', `${TLS_MOUNT}/tls.key`, '--token-file', `${TLS_MOUNT}/token`];
}

export interface TlsSecretNames {
  /** secret mode: the one Secret with both roles' certificates and the token. */
  run: string;
  /** cert-manager mode: the Certificates' Secrets, and the token's. */
  coordinator: string;
  worker: string;
  token: string;
}

export function tlsSecretNames(name: string): TlsSecretNames {
  return { run: `${name}-tls`, coordinator: `${name}-coordinator-tls`, worker: `${name}-worker-tls`, token: `${name}-token` };
}

export function tlsVolume(o: RenderOptions, role: 'coordinator' | 'worker'): IVolume {
  const names = tlsSecretNames(o.name ?? 'mtl');
  const item = (key: string, file: string) => ({ key, path: file });
  const sources =
    o.tls === 'cert-manager'
      ? [
          { secret: { name: role === 'coordinator' ? names.coordinator : names.worker, items: [item('ca.crt', 'ca.crt'), item('tls.crt', 'tls.crt'), item('tls.key', 'tls.key')] } },
          { secret: { name: names.token, items: [item('token', 'token')] } },
        ]
      : [{ secret: { name: names.run, items: [item('ca.crt', 'ca.crt'), item(`${role}.crt`, 'tls.crt'), item(`${role}.key`, 'tls.key'), item('token', 'token')] } }];
  return { name: 'tls', projected: { defaultMode: SECRET_FILE_MODE, sources } };
}

/**
 * The names workers may dial the coordinator by: its Service's short name (what the rendered
 * workers use) and, with a namespace, the qualified ones.
 */
export function coordinatorServiceNames(name: string, namespace: string | undefined): string[] {
  const svc = `${name}-coordinator`;
  return namespace === undefined ? [svc] : [svc, `${svc}.${namespace}`, `${svc}.${namespace}.svc`, `${svc}.${namespace}.svc.cluster.local`];
}

export interface TlsSecretOptions {
  name: string;
  namespace?: string;
  days?: number;
}

/**
 * The run's Secret: a new CA (its key is not kept: nothing more is signed with it), a
 * coordinator certificate for the in-cluster service names, a worker certificate, and a
 * random join token. Made with the same code as `mtl certs init`.
 */
export async function makeTlsSecret(opts: TlsSecretOptions): Promise<Secret> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-k8s-tls-'));
  try {
    await certsInit(path.join(dir, 'certs'), {
      coordinatorSan: coordinatorServiceNames(opts.name, opts.namespace).map((n) => `DNS:${n}`),
      workerName: ['worker'],
      days: opts.days ?? 365,
      force: false,
    });
    const file = (f: string) => readFileSync(path.join(dir, 'certs', f)).toString('base64');
    const data: Record<string, string> = {
      'ca.crt': file('ca.crt'),
      'coordinator.crt': file('coordinator.crt'),
      'coordinator.key': file('coordinator.key'),
      'worker.crt': file('worker.crt'),
      'worker.key': file('worker.key'),
      token: Buffer.from(newToken()).toString('base64'),
    };
    return new Secret({
      metadata: {
        name: tlsSecretNames(opts.name).run,
        ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
        labels: { 'app.kubernetes.io/name': 'mtl-orchestrator', 'app.kubernetes.io/instance': opts.name, 'app.kubernetes.io/component': 'tls' },
      },
      type: 'Opaque',
      data,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What render says on stderr when the pods need a Secret it does not emit. */
export function secretHint(o: RenderOptions): string {
  const name = o.name ?? 'mtl';
  const ns = o.namespace !== undefined ? ` --namespace ${o.namespace}` : '';
  return (
    `the pods mount Secret ${tlsSecretNames(name).run} (mutual TLS certificates and the join token); make it once with\n` +
    `  mtl k8s secret --name ${name}${ns} | kubectl apply -f -\n` +
    '(mtl k8s apply makes it when it is missing; --tls cert-manager renders cert-manager Certificates instead; --tls insecure renders none)\n'
  );
}
