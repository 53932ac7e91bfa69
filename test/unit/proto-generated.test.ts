// proto/generated is produced by `npm run gen:proto` and committed. This regenerates it into a
// temporary directory and compares byte for byte, so an edit to the .proto without
// regenerating (or a hand edit of the generated code) fails the build.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../helpers/unit-jobs.js';

const root = fileURLToPath(repoRoot());
const committed = path.join(root, 'proto', 'generated');
const STALE = 'proto/generated is stale: run `npm run gen:proto` and commit the result';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

void describe('proto/generated', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mtl-unit-proto-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  void it('equals a fresh `npm run gen:proto`, file for file and byte for byte', () => {
    const out = path.join(tmp, 'generated');
    const r = spawnSync(process.execPath, [path.join('scripts', 'gen-proto.mjs'), out], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, `gen-proto failed:\n${r.stderr}`);

    const fresh = filesUnder(out);
    const current = filesUnder(committed);
    assert.ok(fresh.length > 0, 'the generator wrote files');
    assert.ok(fresh.includes('coordinator.ts'));
    assert.deepEqual(current, fresh, `${STALE} (file sets differ)`);
    const differing = fresh.filter((f) => !readFileSync(path.join(out, f)).equals(readFileSync(path.join(committed, f))));
    assert.deepEqual(differing, [], `${STALE} (contents differ)`);
    // The output must not depend on where the repository is checked out.
    for (const f of fresh) assert.ok(!readFileSync(path.join(out, f), 'utf8').includes(root), `${f} holds no absolute path`);
  });
});
