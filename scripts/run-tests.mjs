#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's built-in runner.
// Optional arguments filter by path substring: `node scripts/run-tests.mjs unit/` .
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = path.join(root, 'dist', 'test');
const filters = process.argv.slice(2);
const files = readdirSync(testDir, { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
  .map((f) => path.join(testDir, f));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
// Two test files at a time (node's default on 2 cores is one): most files wait on processes,
// sockets and timeouts more than they compute. The chaos files then run one by one: they judge
// workers dead by their silence, and a second file's processes competing for the two cores
// would make them miss heartbeats. MTL_TEST_CONCURRENCY=1 runs every file one by one.
const concurrency = process.env.MTL_TEST_CONCURRENCY ?? '2';
const alone = (f) => path.relative(testDir, f).split(path.sep)[0] === 'chaos';
let failed = false;
for (const [group, n] of [[files.filter((f) => !alone(f)), concurrency], [files.filter(alone), '1']]) {
  if (group.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${n}`, '--test-reporter=spec', ...group], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
