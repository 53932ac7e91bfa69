// --tls cert-manager: cert-manager issues the run's certificates instead of `mtl k8s secret`.
// A self-signed Issuer makes a CA of the run's own, a CA Issuer signs with it: a coordinator
// certificate for the Service's names and a worker certificate (client auth only). cert-manager
// writes each into a Secret (ca.crt, tls.crt, tls.key) and renews it; the join token is a
// Secret rendered here with a random value, so render again only for a new run.
import { Secret } from 'kubernetes-models/v1/Secret';
import { newToken } from '../../common/security.js';
import { CustomResource } from './crd-models.js';
import type { K8sObject, RenderOptions } from './render-options.js';
import { meta } from './run-pods.js';
import { coordinatorServiceNames, tlsSecretNames } from './tls.js';

const API = 'cert-manager.io/v1';
const KEY = { algorithm: 'ECDSA', size: 256 };

export function certManagerObjects(o: RenderOptions): K8sObject[] {
  const name = o.name ?? 'mtl';
  const secrets = tlsSecretNames(name);
  const issuers = { selfSigned: `${name}-selfsigned`, ca: `${name}-ca` };
  const resource = (kind: string, objectName: string, spec: Record<string, unknown>) => new CustomResource({ apiVersion: API, kind, metadata: meta(o, objectName, 'tls'), spec });
  const leaf = (secretName: string, commonName: string, usages: string[], dnsNames?: string[]) => ({
    secretName,
    commonName,
    ...(dnsNames ? { dnsNames } : {}),
    duration: '2160h',
    renewBefore: '360h',
    usages,
    privateKey: { ...KEY, rotationPolicy: 'Always' },
    issuerRef: { name: issuers.ca, kind: 'Issuer', group: 'cert-manager.io' },
  });
  return [
    resource('Issuer', issuers.selfSigned, { selfSigned: {} }),
    resource('Certificate', issuers.ca, {
      secretName: issuers.ca,
      commonName: `mtl-orchestrator ${name} CA`,
      isCA: true,
      duration: '87600h',
      privateKey: KEY,
      issuerRef: { name: issuers.selfSigned, kind: 'Issuer', group: 'cert-manager.io' },
    }),
    resource('Issuer', issuers.ca, { ca: { secretName: issuers.ca } }),
    resource('Certificate', `${name}-coordinator`, leaf(secrets.coordinator, 'coordinator', ['digital signature', 'key encipherment', 'server auth', 'client auth'], coordinatorServiceNames(name, o.namespace))),
    resource('Certificate', `${name}-worker`, leaf(secrets.worker, 'worker', ['digital signature', 'key encipherment', 'client auth'])),
    new Secret({ metadata: meta(o, secrets.token, 'tls'), type: 'Opaque', data: { token: Buffer.from(newToken()).toString('base64') } }),
  ];
}
