// TLS for gRPC where grpc-js falls short of what we need.
//
// Client side: grpc-js always sends the target host as the TLS server name, an IP address
// included, and Node warns about that (DEP0123: RFC 6066 allows host names only). Our own
// secure connector sends a server name for host names only; the certificate is verified
// exactly as before, against the host name or, for an IP target, against the certificate's
// IP SANs (Node checks the `host` when no server name is given).
//
// Server side: grpc-js handles failed handshakes silently (no event, no log). Its listeners
// are Node TLS servers, which emit `tlsClientError`; watchTlsRefusals reaches them after
// bindAsync to report each failure.
import * as grpc from '@grpc/grpc-js';
import net from 'node:net';
import tls from 'node:tls';

/** PEM CA bundle, certificate chain and private key of one side of a mutual-TLS connection. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Mutual-TLS channel credentials for connections to `host`. */
class TlsChannelCredentials extends grpc.ChannelCredentials {
  private readonly context: tls.SecureContext;

  constructor(
    private readonly material: TlsMaterial,
    private readonly host: string,
  ) {
    super();
    this.context = tls.createSecureContext({ ca: material.ca, cert: material.cert, key: material.key });
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: grpc.ChannelCredentials): boolean {
    return other === this || (other instanceof TlsChannelCredentials && other.material === this.material && other.host === this.host);
  }

  _createSecureConnector(_target: grpc.experimental.GrpcUri, _options: grpc.ChannelOptions, callCredentials?: grpc.CallCredentials): grpc.experimental.SecureConnector {
    const { host, context } = this;
    return {
      connect: (socket) =>
        new Promise((resolve, reject) => {
          const secure = tls.connect({ socket, host, secureContext: context, ALPNProtocols: ['h2'], ...(net.isIP(host) === 0 ? { servername: host } : {}) }, () => {
            // rejectUnauthorized (the default) already failed the handshake otherwise; belt and braces.
            if (!secure.authorized) return reject(secure.authorizationError);
            resolve({ socket: secure, secure: true });
          });
          // Kept for the socket's whole life: a later error must not go unhandled.
          secure.on('error', reject);
        }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => callCredentials ?? grpc.CallCredentials.createEmpty(),
      destroy: () => undefined,
    };
  }
}

/** HOST:PORT split, the host without the brackets of an IPv6 address. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(address.slice(i + 1)) };
}

/** TLS channel credentials that verify the server at `address` (HOST:PORT) and present our certificate. */
export function tlsChannelCredentials(material: TlsMaterial, address: string): grpc.ChannelCredentials {
  return new TlsChannelCredentials(material, splitHostPort(address).host);
}

function peerOf(socket: net.Socket): string {
  const host = socket.remoteAddress ?? 'unknown';
  return `${net.isIPv6(host) ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

export interface TlsRefusal {
  /** Address and port of the client. */
  peer: string;
  /** What failed, as the TLS library says it. */
  reason: string;
  /** Node's error code, e.g. ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE. */
  code: string | undefined;
}

/**
 * Calls `onRefusal` for every TLS handshake that fails on the secure listeners `server` has
 * bound (call it after bindAsync): no client certificate, one our CA did not sign, a plaintext
 * client. A client that just hangs up during the handshake (a port probe, or a worker that
 * refused our certificate and says so in its own log) is not reported. Returns how many
 * listeners are watched: 0 when grpc-js's listeners cannot be reached (its internals changed).
 */
export function watchTlsRefusals(server: grpc.Server, onRefusal: (refusal: TlsRefusal) => void): number {
  const listeners = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) return 0;
  let watched = 0;
  for (const listener of listeners.keys() as IterableIterator<unknown>) {
    if (!(listener instanceof tls.Server)) continue;
    watched++;
    // A refused certificate destroys the TLS socket before the error is emitted, and its peer
    // address with it: note every connection's peer while it is alive.
    const peers = new WeakMap<net.Socket, string>();
    listener.prependListener('connection', (raw: net.Socket) => peers.set(raw, peerOf(raw)));
    listener.on('tlsClientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: tls.TLSSocket) => {
      const raw = (socket as unknown as { _parent?: unknown })._parent;
      const peer = socket.remoteAddress !== undefined ? peerOf(socket) : ((raw instanceof net.Socket ? peers.get(raw) : undefined) ?? 'unknown');
      // A certificate that fails verification is refused by closing the socket: the error is
      // a bare hang-up and the reason (an OpenSSL code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE) is on the socket.
      const unverified = socket.authorizationError as Error | string | null | undefined;
      if (unverified) {
        const code = typeof unverified === 'string' ? unverified : ((unverified as NodeJS.ErrnoException).code ?? unverified.message);
        return onRefusal({ peer, reason: `client certificate not trusted (${code})`, code });
      }
      if (err.code === 'ECONNRESET') return;
      onRefusal({ peer, reason: err.reason ?? err.message, code: err.code });
    });
  }
  return watched;
}
