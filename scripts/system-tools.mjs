// The system tools the tests use, and where they are looked for. One definition for the
// preflight of `npm test` (scripts/preflight.mjs) and for the tests themselves
// (test/helpers/system-tools.ts), so that a tool the preflight found is the one a test runs.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Directories searched after PATH for tools that Debian installs to sbin (nats-server). */
const SBIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/local/bin'];

export function isExecutableFile(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function pathDirs(env) {
  return (env.PATH ?? '').split(path.delimiter).filter(Boolean);
}

/** The first executable `command` in the directories of env.PATH, or undefined. */
export function findOnPath(command, env = process.env) {
  return pathDirs(env)
    .map((d) => path.join(d, command))
    .find((file) => isExecutableFile(file));
}

export const SYSTEM_TOOLS = [
  {
    name: 'nats-server',
    envVar: 'NATS_SERVER',
    debianPackage: 'nats-server',
    usedBy: 'the control-plane tests (each starts its own server with JetStream)',
    searched: `PATH, ${SBIN_DIRS.join(', ')}`,
    candidates: (env) => [...pathDirs(env), ...SBIN_DIRS].map((d) => path.join(d, 'nats-server')),
  },
  {
    name: 'chromium',
    envVar: 'MTL_CHROMIUM',
    debianPackage: 'chromium',
    usedBy: 'the dashboard test in a browser (test/e2e/dashboard-browser), driven by playwright-core',
    searched: '/usr/bin/chromium',
    candidates: () => ['/usr/bin/chromium'],
  },
  {
    name: 'kubectl',
    envVar: 'KUBECTL',
    debianPackage: 'kubectl',
    usedBy: 'the Kubernetes manifest tests (kubectl kustomize deploy/k8s/...)',
    searched: '/usr/bin/kubectl',
    candidates: () => ['/usr/bin/kubectl'],
    // Debian's own kubernetes-client (kubectl 1.20) is too old: its kustomize rejects the
    // configMapGenerator options and inline patches of deploy/k8s.
    hint: 'the package kubectl comes from the Kubernetes (or Google Cloud SDK) apt repository, not from Debian; Debian\'s kubernetes-client is too old for deploy/k8s',
  },
  {
    name: 'openssl',
    envVar: undefined,
    debianPackage: 'openssl',
    usedBy: 'mtl certs init and the TLS tests',
    searched: 'PATH',
    candidates: (env) => pathDirs(env).map((d) => path.join(d, 'openssl')),
  },
];

/** The tool's definition; throws for a name that is not one of SYSTEM_TOOLS. */
export function systemTool(name) {
  const tool = SYSTEM_TOOLS.find((t) => t.name === name);
  if (!tool) throw new Error(`unknown system tool ${name} (known: ${SYSTEM_TOOLS.map((t) => t.name).join(', ')})`);
  return tool;
}

/**
 * The files looked at, in order: only the tool's environment variable when it is set (a
 * wrong path there is an error to see, not something to work around), else the candidates.
 */
export function toolCandidates(tool, env = process.env) {
  const explicit = tool.envVar ? env[tool.envVar] : undefined;
  return explicit ? [explicit] : tool.candidates(env);
}

/** The first executable candidate, or undefined. `isExecutable` is injectable for tests. */
export function locateTool(tool, { env = process.env, isExecutable = isExecutableFile } = {}) {
  return toolCandidates(tool, env).find((file) => isExecutable(file));
}

/** Where a missing tool was looked for, for error messages. */
export function describeLookup(tool, env = process.env) {
  const explicit = tool.envVar ? env[tool.envVar] : undefined;
  if (explicit) return `$${tool.envVar}=${explicit} is not an executable file`;
  return `looked in ${tool.searched}` + (tool.envVar ? ` (or set ${tool.envVar})` : '');
}

/** The tool's path; throws an error naming the Debian package to install when it is missing. */
export function requireTool(name, env = process.env) {
  const tool = systemTool(name);
  const found = locateTool(tool, { env });
  if (found) return found;
  throw new Error(
    `${tool.name} not found: ${describeLookup(tool, env)}. It is needed by ${tool.usedBy}; ` +
      `install the Debian package with \`apt-get install -y ${tool.debianPackage}\` (npm test's preflight does this when run as root)` +
      (tool.hint ? `; ${tool.hint}` : ''),
  );
}
