// npm test's preflight (scripts/preflight.mjs): which tools are missing, and from that which
// Debian packages it installs or which command it tells a person to run. Lookups are injected;
// the real install is exercised by running `npm test` itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import type * as Preflight from '../../scripts/preflight.mjs';
import type { SystemTool } from '../../scripts/system-tools.mjs';
import { REPO_ROOT } from '../helpers/paths.js';
import { systemTools } from '../helpers/system-tools.js';

const PREFLIGHT = path.join(REPO_ROOT, 'scripts', 'preflight.mjs');
const preflight = (await import(pathToFileURL(PREFLIGHT).href)) as typeof Preflight;
const { SYSTEM_TOOLS, describeLookup, locateTool, requireTool, systemTool } = systemTools;

const tools = (...names: string[]): SystemTool[] => names.map((n) => systemTool(n));
/** A lookup that finds every tool except the named ones. */
const allBut =
  (...absent: string[]) =>
  (tool: SystemTool) =>
    absent.includes(tool.name) ? undefined : `/found/${tool.name}`;

void describe('preflight: which tools are missing', () => {
  void it('knows every tool the tests use, each with a Debian package', () => {
    assert.deepEqual(
      SYSTEM_TOOLS.map((t) => [t.name, t.debianPackage]),
      [
        ['nats-server', 'nats-server'],
        ['chromium', 'chromium'],
        ['kubectl', 'kubectl'],
        ['openssl', 'openssl'],
      ],
    );
  });

  void it('lists the tools the lookup does not find, in order', () => {
    assert.deepEqual(preflight.missingTools(SYSTEM_TOOLS, allBut()), []);
    assert.deepEqual(
      preflight.missingTools(SYSTEM_TOOLS, allBut('kubectl', 'chromium')).map((t) => t.name),
      ['chromium', 'kubectl'],
    );
  });

  void it('looks only at the environment variable when it is set, else at the usual places', () => {
    const chromium = systemTool('chromium');
    const everything = () => true;
    assert.equal(locateTool(chromium, { env: {}, isExecutable: everything }), '/usr/bin/chromium');
    assert.equal(locateTool(chromium, { env: { MTL_CHROMIUM: '/opt/chrome/chrome' }, isExecutable: everything }), '/opt/chrome/chrome');
    // A wrong explicit path is reported, not silently replaced by /usr/bin/chromium.
    const onlyDefault = (f: string) => f === '/usr/bin/chromium';
    assert.equal(locateTool(chromium, { env: { MTL_CHROMIUM: '/opt/none' }, isExecutable: onlyDefault }), undefined);
    assert.match(describeLookup(chromium, { MTL_CHROMIUM: '/opt/none' }), /\$MTL_CHROMIUM=\/opt\/none is not an executable file/);
    assert.equal(locateTool(systemTool('kubectl'), { env: { KUBECTL: '/k/kubectl' }, isExecutable: everything }), '/k/kubectl');
  });

  void it('finds nats-server on PATH first, then in /usr/sbin; openssl on PATH only', () => {
    const nats = systemTool('nats-server');
    const inSbin = (f: string) => f === '/usr/sbin/nats-server';
    assert.equal(locateTool(nats, { env: { PATH: '/bin:/usr/bin' }, isExecutable: inSbin }), '/usr/sbin/nats-server');
    const both = (f: string) => f === '/usr/sbin/nats-server' || f === '/opt/nats/nats-server';
    assert.equal(locateTool(nats, { env: { PATH: '/opt/nats' }, isExecutable: both }), '/opt/nats/nats-server');
    const openssl = systemTool('openssl');
    assert.equal(locateTool(openssl, { env: { PATH: '/a:/b' }, isExecutable: (f) => f === '/b/openssl' }), '/b/openssl');
    assert.equal(locateTool(openssl, { env: { PATH: '/a' }, isExecutable: (f) => f === '/usr/bin/openssl' }), undefined);
  });

  void it('requireTool names the Debian package, the place looked at and the variable', () => {
    assert.throws(
      () => requireTool('chromium', { MTL_CHROMIUM: '/nonexistent/chromium' }),
      (err: Error) => /apt-get install -y chromium/.test(err.message) && /MTL_CHROMIUM=\/nonexistent\/chromium/.test(err.message),
    );
    assert.throws(() => requireTool('kubectl', { KUBECTL: '/nonexistent/kubectl' }), /apt-get install -y kubectl.*Kubernetes/);
    assert.throws(() => systemTool('docker'), /unknown system tool docker \(known: nats-server, chromium, kubectl, openssl\)/);
  });
});

void describe('preflight: what it does about them', () => {
  void it('does nothing when every tool is there', () => {
    assert.deepEqual(preflight.planPreflight([], { isRoot: false, hasAptGet: false }), { kind: 'ready' });
  });

  void it('as root with apt-get: updates the package lists, then installs the missing packages', () => {
    assert.deepEqual(preflight.planPreflight(tools('chromium'), { isRoot: true, hasAptGet: true }), {
      kind: 'install',
      packages: ['chromium'],
      commands: [
        ['apt-get', 'update'],
        ['apt-get', 'install', '-y', 'chromium'],
      ],
    });
    const plan = preflight.planPreflight(tools('nats-server', 'chromium', 'openssl'), { isRoot: true, hasAptGet: true });
    assert.equal(plan.kind, 'install');
    assert.deepEqual(plan.kind === 'install' ? plan.commands[1] : [], ['apt-get', 'install', '-y', 'nats-server', 'chromium', 'openssl']);
  });

  void it('not root: stops with the one sudo command that installs them all', () => {
    const plan = preflight.planPreflight(tools('nats-server', 'chromium'), { isRoot: false, hasAptGet: true, env: {} });
    assert.equal(plan.kind, 'stop');
    const message = plan.kind === 'stop' ? plan.message : '';
    assert.ok(message.includes('sudo apt-get update && sudo apt-get install -y nats-server chromium'), message);
    assert.match(message, /nats-server: looked in PATH, \/usr\/sbin/);
    assert.match(message, /chromium: looked in \/usr\/bin\/chromium \(or set MTL_CHROMIUM\); needed by the dashboard test/);
  });

  void it('without apt-get: names the tools, their Debian packages and the variables to set', () => {
    const plan = preflight.planPreflight(tools('kubectl'), { isRoot: true, hasAptGet: false, env: {} });
    assert.equal(plan.kind, 'stop');
    const message = plan.kind === 'stop' ? plan.message : '';
    assert.match(message, /no apt-get/);
    assert.match(message, /Debian packages: kubectl/);
    assert.match(message, /or set KUBECTL/);
    assert.match(message, /Debian's kubernetes-client is too old/);
  });

  void it('after an install: names what apt-get could not install and what is still missing', () => {
    const message = preflight.afterInstallMessage(tools('kubectl'), { env: {}, failedPackages: ['kubectl'] });
    assert.match(message, /apt-get could not install: kubectl\./);
    assert.match(message, /still missing after installing their packages:\n {2}kubectl: looked in \/usr\/bin\/kubectl/);
  });

  void it('the script stops at once, exit 1, when a tool is missing and cannot be installed', () => {
    // No directory on PATH: no openssl and no apt-get to install it with, whoever runs this.
    const r = spawnSync(process.execPath, [PREFLIGHT], { encoding: 'utf8', env: { PATH: '/nonexistent', MTL_CHROMIUM: '/nonexistent/chromium' } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /npm test needs system tools that are missing:/);
    assert.match(r.stderr, /chromium: \$MTL_CHROMIUM=\/nonexistent\/chromium is not an executable file/);
    assert.match(r.stderr, /openssl: looked in PATH; needed by mtl certs init/);
    assert.match(r.stderr, /This machine has no apt-get: install chromium, openssl/);
  });
});
