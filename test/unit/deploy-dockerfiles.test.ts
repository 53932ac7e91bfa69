// Structural checks of deploy/docker (no Docker daemon here): pinned bases, a non-root final
// stage, and COPY sources that exist in the build context and in what `npm run build` emits.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/paths.js';

interface Stage {
  from: string;
  alias?: string;
  lines: string[];
}

/** Instructions with continuation lines joined and comments dropped, split into stages. */
function parse(file: string): { args: Map<string, string>; stages: Stage[] } {
  const joined = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of joined) {
    const [instr = '', ...rest] = line.split(/\s+/);
    if (instr.toUpperCase() === 'FROM') {
      const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
      assert.ok(m, `${file}: cannot read ${line}`);
      stages.push({ from: m[1]!, alias: m[2], lines: [] });
      continue;
    }
    if (instr.toUpperCase() === 'ARG' && stages.length === 0) {
      const [name = '', value] = rest.join(' ').split('=');
      if (value !== undefined) args.set(name, value);
    }
    stages.at(-1)?.lines.push(line);
  }
  return { args, stages };
}

const DOCKER_DIR = path.join(REPO_ROOT, 'deploy', 'docker');
const FILES = ['Dockerfile', 'Dockerfile.gpu'];
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };

function resolveFrom(from: string, args: Map<string, string>): string {
  return from.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const v = args.get(name);
    assert.ok(v, `FROM uses \${${name}} without a default`);
    return v;
  });
}

void describe('deploy/docker', () => {
  for (const name of FILES) {
    const file = path.join(DOCKER_DIR, name);
    void it(`${name}: every base image is pinned to a version tag (or is an earlier stage)`, () => {
      const { args, stages } = parse(file);
      assert.ok(stages.length >= 2, 'multi-stage');
      const aliases = new Set<string>();
      for (const s of stages) {
        if (!aliases.has(s.from)) {
          const image = resolveFrom(s.from, args);
          const tag = /^[^@]+:([^:/@]+)$/.exec(image)?.[1];
          assert.ok(tag !== undefined && tag !== 'latest' && /\d+\.\d+\.\d+/.test(tag), `${name}: FROM ${image} is not pinned to a full version`);
        }
        if (s.alias) aliases.add(s.alias);
      }
    });

    void it(`${name}: the final stage runs the mtl CLI as a non-root user`, () => {
      const { stages } = parse(file);
      const last = stages.at(-1)!;
      const users = last.lines.filter((l) => /^USER\s/i.test(l)).map((l) => l.split(/\s+/)[1]!);
      assert.ok(users.length > 0, 'USER in the final stage');
      const user = users.at(-1)!.split(':')[0]!;
      assert.ok(user !== 'root' && user !== '0', `final USER ${user}`);
      assert.equal(user, '1000', 'uid 1000, as the Kubernetes securityContext expects');
      const entry = last.lines.find((l) => /^ENTRYPOINT\s/i.test(l));
      assert.ok(entry, 'ENTRYPOINT');
      const argv = JSON.parse(entry.replace(/^ENTRYPOINT\s+/i, '')) as string[];
      assert.deepEqual(argv, ['node', '/app/dist/cli/main.js']);
    });

    void it(`${name}: installs from the lock file and copies only what exists`, () => {
      const { stages } = parse(file);
      const ignored = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'));
      for (const s of stages) {
        for (const line of s.lines) {
          // npm ci everywhere (the lock file pins every version); the one npm install adds the
          // peer dependencies at the exact versions package.json names, without saving.
          const installs = line.split('&&').filter((part) => /npm install(?!-)/.test(part));
          for (const part of installs) assert.match(part, /npm install --no-save .*peerDependencies/, `${name}: ${line}: use npm ci (the lock file pins every version)`);
          const copy = /^COPY\s+(.*)$/i.exec(line);
          if (!copy) continue;
          const parts = copy[1]!.split(/\s+/);
          const fromStage = parts.find((p) => p.startsWith('--from='));
          const sources = parts.filter((p) => !p.startsWith('--')).slice(0, -1);
          for (const src of sources) {
            if (fromStage === '--from=build') {
              // What the build stage emits at /src/dist is what `npm run build` emits here.
              assert.ok(src.startsWith('/src/dist/'), `${name}: ${line}`);
              assert.ok(existsSync(path.join(REPO_ROOT, src.slice('/src/'.length))), `${name}: ${src} is not produced by npm run build`);
            } else if (fromStage === undefined && src !== '.') {
              assert.ok(existsSync(path.join(REPO_ROOT, src)), `${name}: COPY ${src}: not in the repository`);
              assert.ok(!ignored.includes(src.split('/')[0]!), `${name}: COPY ${src}: excluded by .dockerignore`);
            }
          }
        }
      }
    });
  }

  void it('the GPU image matches what @tensorflow/tfjs-node-gpu needs (CUDA 11.2, cuDNN 8) and the CPU image\'s Node', () => {
    // tfjs-node-gpu 4.x links libtensorflow 2.9.1 (CUDA 11.2 + cuDNN 8.1). A new version may
    // need another CUDA: this fails so that the base is looked at again.
    assert.equal(pkg.optionalDependencies['@tensorflow/tfjs-node-gpu'], '4.22.0');
    const gpu = parse(path.join(DOCKER_DIR, 'Dockerfile.gpu'));
    assert.match(resolveFrom(gpu.stages[0]!.from, gpu.args), /^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
    const cpu = parse(path.join(DOCKER_DIR, 'Dockerfile'));
    const cpuNode = /^node:(\d+\.\d+\.\d+)-/.exec(resolveFrom(cpu.stages[0]!.from, cpu.args))?.[1];
    const gpuNode = /ARG NODE_VERSION=(\S+)/.exec(gpu.stages[0]!.lines.join('\n'))?.[1];
    assert.ok(cpuNode && cpuNode.startsWith('20.'), `CPU image Node ${cpuNode}`);
    assert.equal(gpuNode, cpuNode, 'both images run the same Node');
    const gpuDeps = gpu.stages.find((s) => s.alias === 'deps')!.lines.join('\n');
    assert.match(gpuDeps, /npm rebuild @tensorflow\/tfjs-node-gpu/, 'the GPU binding is installed');
  });

  void it('the CPU image installs tfjs and its wasm backend, which npm ci --omit=dev leaves out (peer dependencies)', () => {
    const peers = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies;
    assert.deepEqual(Object.keys(peers).sort(), ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm']);
    const cpu = parse(path.join(DOCKER_DIR, 'Dockerfile'));
    const deps = cpu.stages.find((s) => s.alias === 'deps')!.lines.join('\n');
    assert.match(deps, /npm ci --omit=dev[^&]*&& npm install --no-save [^&]*require\('\.\/package\.json'\)\.peerDependencies/);
  });
});
