#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in runner.
// Optional arguments filter by path substring: `node scripts/run-tests.mjs unit/` .
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = path.join(root, 'dist', 'test');
const costsFile = path.join(root, 'scripts', 'test-costs.json');
const filters = process.argv.slice(2);
const files = readdirSync(testDir, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => f.split(path.sep).join('/'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

// Seconds each file took alone on 2 cores (scripts/test-costs.json; MTL_TEST_RECORD_COSTS=1
// rewrites it from this run). Files start longest first so that the two lanes end together
// instead of one lane starting a long file when the other is nearly done. A file missing
// from the table counts as 10 s.
const costs = (() => {
  try {
    return JSON.parse(readFileSync(costsFile, 'utf8'));
  } catch {
    return {};
  }
})();
const costOf = (f) => costs[f] ?? 10;
const byCost = (a, b) => costOf(b) - costOf(a) || (a < b ? -1 : 1);

// Three test files at a time (node's default on 2 cores is one): the files wait on processes,
// sockets and timeouts as much as they compute (their CPU seconds add up to about half of
// what two cores give over the time two at a time took). The chaos files, and the e2e file
// whose workers are declared dead after 400 ms of silence, then run one by one: another
// file's processes competing for the two cores would make them miss heartbeats (with three
// at a time on a loaded machine shared-batch-liveness did). MTL_TEST_CONCURRENCY=N runs N
// files at a time.
const concurrency = Math.max(1, Number(process.env.MTL_TEST_CONCURRENCY ?? 3));
const SILENCE_JUDGED = new Set(['e2e/shared-batch-liveness.test.js']);
const alone = (f) => f.split('/')[0] === 'chaos' || SILENCE_JUDGED.has(f);

// One directory per suite run for fixtures that several files compute alike (the undisturbed
// reference weights of a chaos job: test/helpers/chaos.ts); removed at the end.
const cacheDir = mkdtempSync(path.join(os.tmpdir(), 'mtl-test-cache-'));
process.on('exit', () => rmSync(cacheDir, { recursive: true, force: true }));
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** Runs one file in its own `node --test`; its output is printed in one piece when it ends. */
function runFile(f) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', path.join(testDir, f)], {
      cwd: root,
      env: { ...process.env, MTL_TEST_CACHE_DIR: cacheDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks = [];
    child.stdout.on('data', (d) => chunks.push(d));
    child.stderr.on('data', (d) => chunks.push(d));
    child.on('close', (code, signal) => {
      const output = Buffer.concat(chunks).toString();
      const count = (what) => Number(new RegExp(`^ℹ ${what} (\\d+)$`, 'm').exec(output)?.[1] ?? 0);
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(`\n── ${f} (${seconds.toFixed(1)} s)\n${output}`);
      resolve({ file: f, ok: code === 0, code, signal, seconds, tests: count('tests'), pass: count('pass'), fail: count('fail') });
    });
  });
}

async function runGroup(group, lanes) {
  const queue = [...group].sort(byCost);
  const results = [];
  const lane = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) results.push(await runFile(f));
  };
  await Promise.all(Array.from({ length: Math.min(lanes, queue.length) }, lane));
  return results;
}

const started = Date.now();
const results = [];
const groupTimes = [];
for (const [name, group, lanes] of [['parallel', files.filter((f) => !alone(f)), concurrency], ['alone', files.filter(alone), 1]]) {
  if (group.length === 0) continue;
  const t = Date.now();
  results.push(...(await runGroup(group, lanes)));
  groupTimes.push(`${name} group ${((Date.now() - t) / 1000).toFixed(0)} s (${group.length} files, ${lanes} at a time)`);
}

const failed = results.filter((r) => !r.ok);
const sum = (k) => results.reduce((s, r) => s + r[k], 0);
console.log(`\n══ ${results.length} files, ${sum('tests')} tests, ${sum('pass')} passed, ${sum('fail')} failed in ${((Date.now() - started) / 1000).toFixed(0)} s: ${groupTimes.join('; ')}`);
console.log('slowest files: ' + [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 8).map((r) => `${r.file} ${r.seconds.toFixed(0)} s`).join(', '));
for (const r of failed) console.log(`FAILED ${r.file} (${r.signal ? `signal ${r.signal}` : `exit code ${r.code}`}, ${r.fail} failing tests)`);
if (process.env.MTL_TEST_RECORD_COSTS === '1') {
  for (const r of results) costs[r.file] = Math.round(r.seconds * 10) / 10;
  const sorted = Object.fromEntries(Object.keys(costs).sort().map((k) => [k, costs[k]]));
  writeFileSync(costsFile, JSON.stringify(sorted, null, 2) + '\n');
  console.log(`costs written to ${path.relative(root, costsFile)}`);
}
process.exit(failed.length > 0 ? 1 : 0);
