// Why a connection to the coordinator failed, when gRPC only says it could not connect: one
// plain TLS handshake with the same material, whose error names the cause (an unknown CA, a
// certificate the coordinator refused, a name mismatch, a coordinator that does not speak TLS).
import net from 'node:net';
import tls from 'node:tls';
import type { TlsMaterial } from '../common/security.js';
import { splitHostPort } from '../common/grpc-tls.js';
import { isNotTlsPeer } from '../common/tls-errors.js';

/** How long to wait after the handshake for the coordinator to reject our certificate (TLS 1.3 sends that alert late). */
const ALERT_WAIT_MS = 500;

/**
 * With `material`: the TLS error of a handshake as this worker would make it, or undefined if
 * it succeeds. Without: whether the coordinator speaks TLS at all (then that is the problem).
 */
export function diagnoseTls(address: string, material: TlsMaterial | undefined, timeoutMs = 3000): Promise<string | undefined> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve) => {
    let settled = false;
    const done = (reason: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const socket = tls.connect({
      host,
      port,
      ALPNProtocols: ['h2'],
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
      ...(material ? { ca: material.ca, cert: material.cert, key: material.key } : { rejectUnauthorized: false }),
    });
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => {
      if (!material) return done('the coordinator uses TLS: give --tls-ca, --tls-cert and --tls-key');
      // Read, so that an alert refusing our certificate arrives as an error; a server may also
      // just hang up on a certificate it does not accept.
      socket.resume();
      socket.once('close', () => done('the coordinator closed the connection after the TLS handshake: it does not accept our certificate (is --tls-cert signed by the CA the coordinator trusts?)'));
      setTimeout(() => done(undefined), ALERT_WAIT_MS).unref();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (!material) return done(undefined); // plaintext (or down): nothing TLS can explain
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH') return done(undefined);
      if (isNotTlsPeer(err)) {
        return done(`TLS handshake failed (${err.code ?? err.message}): does the coordinator use TLS?`);
      }
      done(`TLS: ${err.message} (check --tls-ca, --tls-cert and --tls-key)`);
    });
  });
}
