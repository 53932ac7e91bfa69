#!/usr/bin/env node
// First step of `npm test`: every system tool the tests use must be there, because no test is
// skipped for a missing one. Missing tools are installed from Debian's packages when this
// process may do so (root, apt-get present); otherwise it stops at once with the one command
// that installs them, before the build and the tests spend minutes to fail at the end.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYSTEM_TOOLS, describeLookup, findOnPath, locateTool } from './system-tools.mjs';

/** The tools of `tools` that are not found. */
export function missingTools(tools, lookup) {
  return tools.filter((tool) => lookup(tool) === undefined);
}

function uniquePackages(tools) {
  return [...new Set(tools.map((t) => t.debianPackage))];
}

/** The command a person runs to install the packages (one line). */
export function installCommand(packages, { isRoot }) {
  const sudo = isRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(' ')}`;
}

function describeMissing(tools, env) {
  return tools.map((t) => `  ${t.name}: ${describeLookup(t, env)}; needed by ${t.usedBy}` + (t.hint ? `\n    (${t.hint})` : '')).join('\n');
}

/**
 * What to do about the missing tools: nothing, install their Debian packages (with the argv
 * of each command to run), or stop with a message. Pure, for unit tests.
 */
export function planPreflight(missing, { isRoot, hasAptGet, env = {} }) {
  if (missing.length === 0) return { kind: 'ready' };
  const packages = uniquePackages(missing);
  if (isRoot && hasAptGet) {
    return {
      kind: 'install',
      packages,
      commands: [
        ['apt-get', 'update'],
        ['apt-get', 'install', '-y', ...packages],
      ],
    };
  }
  const names = missing.map((t) => t.name).join(', ');
  const how = hasAptGet
    ? `Install them with:\n  ${installCommand(packages, { isRoot })}`
    : `This machine has no apt-get: install ${names} with its package manager (Debian packages: ${packages.join(', ')}), ` +
      `or point the environment variables named above at the binaries.`;
  return { kind: 'stop', message: `npm test needs system tools that are missing:\n${describeMissing(missing, env)}\n${how}` };
}

/** After an install: the message for the tools still missing. */
export function afterInstallMessage(stillMissing, { env = {}, failedPackages = [] }) {
  const failed = failedPackages.length > 0 ? `apt-get could not install: ${failedPackages.join(', ')}.\n` : '';
  return `${failed}npm test needs system tools that are still missing after installing their packages:\n${describeMissing(stillMissing, env)}`;
}

function run(argv, env) {
  process.stderr.write(`preflight: ${argv.join(' ')}\n`);
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

/** Installs the planned packages; returns the packages apt-get could not install. */
function install(plan, env) {
  if (!run(plan.commands[0], env)) return plan.packages;
  if (run(plan.commands[1], env)) return [];
  // One unavailable package fails the whole command: install the others one by one.
  if (plan.packages.length === 1) return plan.packages;
  return plan.packages.filter((pkg) => !run(['apt-get', 'install', '-y', pkg], env));
}

export function main({ env = process.env, tools = SYSTEM_TOOLS } = {}) {
  const lookup = (tool) => locateTool(tool, { env });
  const missing = missingTools(tools, lookup);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const plan = planPreflight(missing, { isRoot, hasAptGet: findOnPath('apt-get', env) !== undefined, env });
  if (plan.kind === 'ready') {
    process.stderr.write(`preflight: ${tools.map((t) => `${t.name} ${lookup(t)}`).join(', ')}\n`);
    return 0;
  }
  if (plan.kind === 'stop') {
    process.stderr.write(`${plan.message}\n`);
    return 1;
  }
  process.stderr.write(`preflight: ${missing.map((t) => t.name).join(', ')} missing: installing ${plan.packages.join(' ')}\n`);
  const failedPackages = install(plan, env);
  const stillMissing = missingTools(tools, lookup);
  if (stillMissing.length > 0) {
    process.stderr.write(`${afterInstallMessage(stillMissing, { env, failedPackages })}\n`);
    return 1;
  }
  process.stderr.write(`preflight: ${tools.map((t) => `${t.name} ${lookup(t)}`).join(', ')}\n`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main();
}
