// The docs' generated parts (the aggregator table of docs/aggregators.md) must match the code:
// regenerate and compare.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

void it('docs/aggregators.md aggregator table is up to date (npm run gen:docs)', () => {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'gen-docs.mjs'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
