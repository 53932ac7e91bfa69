// What `npm publish` would ship (package.json `files`), read from `npm pack --dry-run`: what a
// user needs at run time is there, and no tests, benchmarks or study results are.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

/** npm itself: the one running `npm test` when there is one, else the npm on PATH. */
function npmCommand(): [string, string[]] {
  const execPath = process.env.npm_execpath;
  return execPath && /npm-cli\.js$/.test(execPath) ? [process.execPath, [execPath]] : ['npm', []];
}

function packedFiles(): string[] {
  const [command, prefix] = npmCommand();
  // --ignore-scripts: listing must not run `prepare` (a whole build) again.
  const r = spawnSync(command, [...prefix, 'pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `npm pack --dry-run failed: ${r.stderr}`);
  const [report] = JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>;
  return report!.files.map((f) => f.path).sort();
}

void describe('the published package (npm pack)', () => {
  let files: string[] = [];
  before(() => {
    files = packedFiles();
  });

  void it('holds the library, the CLI and what they read at run time', () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string; types: string; bin: Record<string, string> };
    const required = [
      pkg.main,
      pkg.types,
      ...Object.values(pkg.bin),
      'proto/mtl/v1/coordinator.proto',
      'dashboard/index.html',
      'dashboard/dashboard.js',
      'examples/multimnist.yaml',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'docs/design.md',
      'docs/aggregators.md',
    ].map((f) => path.posix.normalize(f));
    assert.deepEqual(
      required.filter((f) => !files.includes(f)),
      [],
      'missing from the package',
    );
  });

  void it('holds no tests, benchmarks, scripts or study results', () => {
    const forbidden = /^(test|dist\/test|bench|dist\/bench|scripts|\.ci|node_modules|runs)\/|^docs\/.*results|\.test\.js$/;
    assert.deepEqual(
      files.filter((f) => forbidden.test(f)),
      [],
      'in the package but not for users',
    );
  });

  void it('every relative import of the packaged JavaScript resolves to a packaged file', () => {
    const shipped = new Set(files);
    const unresolved: string[] = [];
    for (const file of files.filter((f) => f.endsWith('.js'))) {
      const source = readFileSync(path.join(REPO_ROOT, file), 'utf8');
      for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!));
        if (!shipped.has(target)) unresolved.push(`${file} → ${m[1]}`);
      }
    }
    assert.deepEqual(unresolved, [], 'imports that would fail in an installed package');
  });
});
