import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InsecureListenError, SecurityConfigError } from '../../common/errors.js';
import {
  checkListenSecurity,
  isLoopbackHost,
  loadNatsSecurity,
  loadTlsMaterial,
  loadToken,
  newToken,
  redactUrl,
  tokenDigest,
  tokenMatches,
} from '../../common/security.js';
import { parseSans } from '../../cli/certs.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('join token', () => {
  void it('matches only the same token, whatever the lengths', () => {
    const expected = tokenDigest('correct horse battery staple');
    assert.equal(tokenMatches(expected, 'correct horse battery staple'), true);
    for (const other of ['', 'c', 'correct horse battery stapl', 'correct horse battery staple ', 'x'.repeat(10_000)]) {
      assert.equal(tokenMatches(expected, other), false, JSON.stringify(other.slice(0, 30)));
    }
  });

  void it('reads --token-file without its trailing newline, else MTL_TOKEN, else none', () => {
    const dir = tempDir('mtl-token-');
    const file = path.join(dir, 'token');
    writeFileSync(file, 'file-token-0123456789\n');
    assert.equal(loadToken(file, { MTL_TOKEN: 'env-token-0123456789' }), 'file-token-0123456789');
    assert.equal(loadToken(undefined, { MTL_TOKEN: 'env-token-0123456789' }), 'env-token-0123456789');
    assert.equal(loadToken(undefined, {}), undefined);
    assert.equal(loadToken(undefined, { MTL_TOKEN: '' }), undefined);
  });

  void it('refuses short tokens and unreadable files without showing the token', () => {
    assert.throws(() => loadToken(undefined, { MTL_TOKEN: 'hunter2' }), (err: unknown) => err instanceof SecurityConfigError && /too short/.test(err.message) && !err.message.includes('hunter2'));
    assert.throws(() => loadToken('/no/such/token'), (err: unknown) => err instanceof SecurityConfigError && /cannot read --token-file \/no\/such\/token: ENOENT/.test(err.message));
    const empty = path.join(tempDir('mtl-token-'), 'empty');
    writeFileSync(empty, '\n');
    assert.throws(() => loadToken(empty), SecurityConfigError);
  });

  void it('new tokens are long and different', () => {
    const a = newToken();
    assert.ok(a.length >= 40);
    assert.notEqual(a, newToken());
    assert.doesNotThrow(() => loadToken(undefined, { MTL_TOKEN: a }));
  });
});

void describe('TLS files', () => {
  const dir = tempDir('mtl-tls-');
  for (const f of ['ca.crt', 'c.crt', 'c.key']) writeFileSync(path.join(dir, f), `pem ${f}`);
  const p = (f: string) => path.join(dir, f);

  void it('all three or none', () => {
    assert.equal(loadTlsMaterial({}), undefined);
    const m = loadTlsMaterial({ ca: p('ca.crt'), cert: p('c.crt'), key: p('c.key') });
    assert.equal(m?.ca.toString(), 'pem ca.crt');
    assert.equal(m?.key.toString(), 'pem c.key');
    assert.throws(() => loadTlsMaterial({ ca: p('ca.crt') }), /^SecurityConfigError: --tls-cert and --tls-key missing/);
    assert.throws(() => loadTlsMaterial({ ca: p('ca.crt'), cert: p('c.crt') }), /--tls-key missing/);
  });

  void it('names an unreadable file with its path', () => {
    assert.throws(() => loadTlsMaterial({ ca: p('nope.crt'), cert: p('c.crt'), key: p('c.key') }), /cannot read --tls-ca file .*nope\.crt: ENOENT/);
    if (process.getuid?.() !== 0) {
      chmodSync(p('c.key'), 0);
      assert.throws(() => loadTlsMaterial({ ca: p('ca.crt'), cert: p('c.crt'), key: p('c.key') }), /cannot read --tls-key file .*c\.key: EACCES/);
      chmodSync(p('c.key'), 0o600);
    }
  });

  void it('NATS: CA alone is enough, a certificate needs its key, creds are read as bytes', () => {
    assert.deepEqual(loadNatsSecurity({}), {});
    assert.deepEqual(loadNatsSecurity({ ca: p('ca.crt') }), { tls: { ca: 'pem ca.crt' } });
    assert.throws(() => loadNatsSecurity({ cert: p('c.crt') }), /--nats-key missing/);
    assert.throws(() => loadNatsSecurity({ key: p('c.key') }), /--nats-cert missing/);
    assert.throws(() => loadNatsSecurity({ creds: p('none.creds') }), /cannot read --nats-creds file .*none\.creds/);
    const s = loadNatsSecurity({ cert: p('c.crt'), key: p('c.key'), creds: p('ca.crt') });
    assert.deepEqual(s.tls, { cert: 'pem c.crt', key: 'pem c.key' });
    assert.equal(Buffer.from(s.creds!).toString(), 'pem ca.crt');
  });
});

void describe('secure listen default', () => {
  void it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '[::]', '10.0.0.5', '192.168.1.1', 'example.com', '128.0.0.1', '::2', '', 'localhost.example.com']) assert.equal(isLoopbackHost(h), false, h);
  });

  void it('refuses a non-loopback address without TLS unless insecure', () => {
    assert.doesNotThrow(() => checkListenSecurity('127.0.0.1:0', { tls: false, insecure: false }));
    assert.doesNotThrow(() => checkListenSecurity('[::1]:7070', { tls: false, insecure: false }));
    assert.doesNotThrow(() => checkListenSecurity('0.0.0.0:0', { tls: true, insecure: false }));
    assert.doesNotThrow(() => checkListenSecurity('0.0.0.0:0', { tls: false, insecure: true }));
    assert.throws(() => checkListenSecurity('0.0.0.0:7070', { tls: false, insecure: false }), (err: unknown) => err instanceof InsecureListenError && /--tls-ca.*--insecure/s.test(err.message));
    assert.throws(() => checkListenSecurity('10.0.0.5:7070', { tls: false, insecure: false }), InsecureListenError);
  });
});

void describe('redactUrl', () => {
  void it('removes user and password from NATS URLs', () => {
    assert.equal(redactUrl('nats://alice:s3cret@nats:4222'), 'nats://***@nats:4222');
    assert.equal(redactUrl('nats://a:b@h1:4222,tls://c@h2:4222'), 'nats://***@h1:4222,tls://***@h2:4222');
    assert.equal(redactUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  });
});

void describe('certificate subject alternative names', () => {
  void it('accepts DNS:, IP: and bare names or addresses, comma-separated', () => {
    assert.deepEqual(parseSans(['DNS:coord,IP:10.0.0.5', 'coord.example.com', '10.0.0.6', 'dns:coord', 'IP:fd00::1']), ['DNS:coord', 'IP:10.0.0.5', 'DNS:coord.example.com', 'IP:10.0.0.6', 'IP:fd00::1']);
  });

  void it('rejects anything that is not a host name or address (nothing else reaches openssl)', () => {
    for (const bad of ['IP:10.0.0.300', 'DNS:a b', 'DNS:x\nbasicConstraints=CA:TRUE', 'email:a@b', 'DNS:-x', 'URI:http://x']) {
      assert.throws(() => parseSans([bad]), SecurityConfigError, bad);
    }
  });
});
