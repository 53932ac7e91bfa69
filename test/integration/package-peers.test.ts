// Installed next to an application's own @tensorflow/tfjs, this package must use that copy:
// two copies of tfjs share one global engine and register every kernel twice. So tfjs and the
// wasm backend (which must match it exactly) are peer dependencies: npm never installs them
// for the package itself, and its code resolves them from the application. A real
// `npm install` of the packed package cannot run offline here (npm needs registry metadata it
// has not cached), so the application is laid out the way npm lays it out: the package's
// dependencies under its own node_modules (where npm puts them when the application's versions
// differ), the application's packages above.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
const installed = (name: string) => (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as PackageJson).version;
const PEERS = ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];

/** Every `@tensorflow/...` package the product code imports (statically or with import()). */
function tensorflowImports(): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) {
        for (const m of readFileSync(file, 'utf8').matchAll(/['"](@tensorflow\/[a-z0-9-]+)['"]/g)) found.add(m[1]!);
      }
    }
  };
  for (const dir of ['common', 'coordinator', 'worker', 'cli']) walk(path.join(REPO_ROOT, dir));
  return found;
}

void describe('tfjs as a peer dependency', () => {
  void it('is declared as an exact peer (not a dependency), the wasm backend at the same version, and installed for development', () => {
    for (const name of PEERS) {
      assert.equal(pkg.dependencies?.[name], undefined, `${name} is not a dependency`);
      assert.match(pkg.peerDependencies?.[name] ?? '', /^\d+\.\d+\.\d+$/, `${name} is an exact peer`);
      assert.equal(pkg.devDependencies?.[name], pkg.peerDependencies?.[name], `${name}: the development copy is the peer version`);
      assert.equal(installed(name), pkg.peerDependencies?.[name], `${name} as installed by npm ci`);
    }
    assert.equal(pkg.peerDependencies?.['@tensorflow/tfjs-backend-wasm'], pkg.peerDependencies?.['@tensorflow/tfjs']);
    const lock = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, PackageJson> };
    assert.deepEqual(lock.packages['']!.peerDependencies, pkg.peerDependencies, 'package-lock.json agrees');
  });

  void it('every tfjs package the code imports is a peer or an optional native backend of the same version', () => {
    const version = pkg.peerDependencies?.['@tensorflow/tfjs'];
    for (const name of tensorflowImports()) {
      const declared = pkg.peerDependencies?.[name] ?? pkg.optionalDependencies?.[name];
      assert.equal(declared, version, `${name} is imported: it must be a peer (or optional) dependency at ${version}`);
    }
  });

  void it("the installed package loads the application's tfjs, not a copy of its own", () => {
    const app = tempDir('mtl-consumer-');
    const modules = path.join(app, 'node_modules');
    // The application's own tfjs and wasm backend: packages of their own (re-exporting the real
    // ones) that record being loaded, so that which copy the library took is visible.
    for (const name of PEERS) {
      const dir = path.join(modules, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: installed(name), main: 'index.cjs' }));
      const real = path.join(REPO_ROOT, 'node_modules', name);
      writeFileSync(path.join(dir, 'index.cjs'), `(globalThis.appCopies ??= []).push(${JSON.stringify(name)});\nmodule.exports = require(${JSON.stringify(real)});\n`);
    }
    // The package as installed: its files (dist copied, so that modules resolve from inside
    // it) and, nested under it, every one of its dependencies.
    const lib = path.join(modules, pkg.name);
    mkdirSync(path.join(lib, 'node_modules'), { recursive: true });
    cpSync(path.join(REPO_ROOT, 'package.json'), path.join(lib, 'package.json'));
    for (const dir of ['dist/common', 'dist/coordinator', 'dist/worker', 'dist/proto', 'dist/index.js', 'proto', 'dashboard']) {
      cpSync(path.join(REPO_ROOT, dir), path.join(lib, dir), { recursive: true });
    }
    for (const dep of Object.keys(pkg.dependencies ?? {})) {
      mkdirSync(path.dirname(path.join(lib, 'node_modules', dep)), { recursive: true });
      symlinkSync(path.join(REPO_ROOT, 'node_modules', dep), path.join(lib, 'node_modules', dep));
    }
    const script = `
      import { createRequire } from 'node:module';
      const lib = await import(${JSON.stringify(pkg.name)});
      const fromLib = createRequire(${JSON.stringify(path.join(lib, 'dist', 'index.js'))});
      console.log(JSON.stringify({
        exports: typeof lib.validateJob === 'function' && typeof lib.Coordinator === 'function',
        appCopies: globalThis.appCopies ?? [],
        resolved: ${JSON.stringify(PEERS)}.map((p) => fromLib.resolve(p)),
      }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { exports: boolean; appCopies: string[]; resolved: string[] };
    assert.ok(out.exports, 'the public API loads');
    assert.deepEqual(out.appCopies, ['@tensorflow/tfjs'], "importing the package loaded the application's tfjs");
    assert.deepEqual(out.resolved, PEERS.map((p) => path.join(modules, p, 'index.cjs')), 'both resolve to the application\'s packages');
    assert.doesNotMatch(r.stderr, /already registered/);
  });
});
