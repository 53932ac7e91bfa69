// The security flags every command shares: mutual TLS files and the join token for gRPC,
// TLS and credentials files for NATS. Files are read once, at start; a problem is printed
// (naming the flag or the path, never a secret) and the command exits 2.
import { Option } from 'commander';
import { errorMessage } from '../common/errors.js';
import { checkListenSecurity, loadNatsSecurity, loadTlsMaterial, loadToken, TOKEN_ENV, type NatsSecurity, type TlsMaterial } from '../common/security.js';

export interface GrpcSecurityFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

export interface NatsSecurityFlags {
  natsCa?: string;
  natsCert?: string;
  natsKey?: string;
  natsCreds?: string;
}

export interface GrpcSecurity {
  tls?: TlsMaterial;
  token?: string;
}

export function grpcSecurityOptions(side: 'coordinator' | 'worker'): Option[] {
  const peer = side === 'coordinator' ? 'worker' : 'coordinator';
  return [
    new Option('--tls-ca <file>', `CA certificate (PEM) that ${peer} certificates must chain to; mutual TLS with --tls-cert and --tls-key`),
    new Option('--tls-cert <file>', `this ${side}'s certificate (PEM), signed by the CA (mtl certs init)`),
    new Option('--tls-key <file>', `this ${side}'s private key (PEM)`),
    new Option('--token-file <file>', `join token ${side === 'coordinator' ? 'workers must present' : 'to present'} (default: the ${TOKEN_ENV} variable)`),
  ];
}

export function insecureOption(): Option {
  return new Option('--insecure', 'allow a non-loopback listen address without TLS (a trusted network only)').default(false);
}

/**
 * The HTTP endpoints alone in plaintext: the kubelet's probes and an in-cluster Prometheus
 * reach --http on the pod's address while gRPC keeps its TLS. They are read-only (GET), so
 * what this exposes is the run's progress, to whatever the network lets in.
 */
export function httpPlaintextOption(): Option {
  return new Option('--http-plaintext', 'allow a non-loopback --http address (plain HTTP, no authentication: dashboard, /metrics, probes) while gRPC uses TLS; a network that admits only trusted clients').default(false);
}

export function natsSecurityOptions(): Option[] {
  return [
    new Option('--nats-ca <file>', 'CA certificate (PEM) the NATS server certificate must chain to (TLS to NATS)'),
    new Option('--nats-cert <file>', 'client certificate (PEM) for NATS servers that verify clients'),
    new Option('--nats-key <file>', 'private key (PEM) of --nats-cert'),
    new Option('--nats-creds <file>', 'NATS credentials file (user JWT and NKey seed, from nsc)'),
  ];
}

function report(err: unknown): null {
  process.stderr.write(`${errorMessage(err)}\n`);
  return null;
}

/** TLS material and join token from the flags (and MTL_TOKEN); null after printing why they are unusable. */
export function loadGrpcSecurity(flags: GrpcSecurityFlags): GrpcSecurity | null {
  try {
    const tls = loadTlsMaterial({ ca: flags.tlsCa, cert: flags.tlsCert, key: flags.tlsKey });
    const token = loadToken(flags.tokenFile);
    return { ...(tls ? { tls } : {}), ...(token !== undefined ? { token } : {}) };
  } catch (err) {
    return report(err);
  }
}

/** Secure by default (see checkListenSecurity); false after printing why not. */
export function listenAllowed(listen: string, security: GrpcSecurity, insecure: boolean): boolean {
  try {
    checkListenSecurity(listen, { tls: security.tls !== undefined, insecure });
    return true;
  } catch (err) {
    report(err);
    return false;
  }
}

export function loadNatsFlags(flags: NatsSecurityFlags): NatsSecurity | null {
  try {
    return loadNatsSecurity({ ca: flags.natsCa, cert: flags.natsCert, key: flags.natsKey, creds: flags.natsCreds });
  } catch (err) {
    return report(err);
  }
}
