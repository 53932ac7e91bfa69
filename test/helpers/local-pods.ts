// Runs rendered Kubernetes pods as local processes, so that what `mtl k8s render` emits is what
// the tests run: each container's command (or the image's entrypoint) and arguments, its
// environment with Kubernetes' $(VAR) expansion and the downward API, its volumes mapped to
// temporary directories (ConfigMaps and Secrets written out as files, emptyDirs fresh per pod,
// a claim shared by every pod that mounts it), and the Services' names mapped to loopback ports.
// NATS is not started from its StatefulSet: the caller's nats-server stands in for its Service.
// Not reproduced: the image's read-only root and user id (the processes run as this user), and
// resources. Pod templates are found as renderedPodTemplates (cli/k8s/containers.ts) finds them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { renderedPodTemplates, type RenderedPodTemplate } from '../../cli/k8s/containers.js';
import { killTree } from './cli-process.js';
import { REPO_ROOT } from './paths.js';
import { freePort } from './tcp-proxy.js';
import { tempDir } from './temp-dirs.js';

/** The image's working directory and the package inside it (deploy/docker/Dockerfile). */
const IMAGE_APP = '/app';
const IMAGE_ENTRYPOINT = ['node', '/app/dist/cli/main.js'];

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** A container started as a local process. */
export interface LocalContainer {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exit: Promise<number | string>;
  output(): string;
}

export interface LocalPod {
  name: string;
  containers: LocalContainer[];
}

export class LocalCluster {
  readonly root = tempDir('mtl-local-pods-');
  /** `<service>:<port>` → a loopback address, for every Service port. */
  private readonly services = new Map<string, string>();
  /** The local port a pod's containerPort is served on, by `<component>:<containerPort>`. */
  private readonly listens = new Map<string, string>();
  private readonly claims = new Map<string, string>();
  private readonly docs: Doc[];
  private podCount = 0;

  private constructor(docs: readonly Doc[]) {
    this.docs = [...docs];
  }

  /** `natsUrl` stands in for every Service whose name ends in `-nats`. */
  static async create(docs: readonly Doc[], natsUrl: string): Promise<LocalCluster> {
    const cluster = new LocalCluster(docs);
    const nats = new URL(natsUrl);
    for (const svc of docs.filter((d) => d.kind === 'Service')) {
      const ports = (svc.spec as { ports: Array<{ port: number; targetPort?: number | string }> }).ports;
      const selector = (svc.spec as { selector: Record<string, string> }).selector;
      for (const p of ports) {
        let address: string;
        if (svc.metadata.name.endsWith('-nats')) address = p.port === 4222 ? `${nats.hostname}:${nats.port}` : `127.0.0.1:${await freePort()}`;
        else address = `127.0.0.1:${await freePort()}`;
        cluster.services.set(`${svc.metadata.name}:${p.port}`, address);
        const component = selector['app.kubernetes.io/component'];
        const target = typeof p.targetPort === 'number' ? p.targetPort : p.port;
        if (component !== undefined) cluster.listens.set(`${component}:${target}`, address);
      }
    }
    return cluster;
  }

  template(component: string): RenderedPodTemplate {
    const found = renderedPodTemplates(this.docs).find((t) => t.labels['app.kubernetes.io/component'] === component);
    if (!found) throw new Error(`no pod template for component ${component}`);
    return found;
  }

  /**
   * Starts one pod of `template`: its init containers one after the other (each must exit 0),
   * then its containers. `labels` are what the controller adds (e.g. the Job's controller-uid),
   * `annotations` the same (e.g. the completion index).
   */
  async startPod(template: RenderedPodTemplate, opts: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }): Promise<LocalPod> {
    const pod = { name: opts.name, labels: { ...template.labels, ...opts.labels }, annotations: opts.annotations ?? {} };
    const dirs = this.volumes(template.pod, ++this.podCount);
    const component = pod.labels['app.kubernetes.io/component'] ?? '';
    for (const c of template.pod.initContainers ?? []) {
      const init = this.start(c, dirs, pod, component);
      const code = await init.exit;
      if (code !== 0) throw new Error(`init container ${c.name} of ${pod.name} exited with ${code}:\n${init.output()}`);
    }
    return { name: pod.name, containers: template.pod.containers.map((c) => this.start(c, dirs, pod, component)) };
  }

  /** Kills every process still running (the end of a test, passed or not). */
  stop(): void {
    for (const child of live) killTree(child);
  }

  /** The local directory of a PersistentVolumeClaim (the same for every pod). */
  claim(name: string): string {
    let dir = this.claims.get(name);
    if (dir === undefined) {
      dir = path.join(this.root, 'claims', name);
      mkdirSync(dir, { recursive: true });
      this.claims.set(name, dir);
    }
    return dir;
  }

  private volumes(spec: IPodSpec, podIndex: number): Map<string, string> {
    const dirs = new Map<string, string>();
    for (const v of spec.volumes ?? []) {
      if (v.persistentVolumeClaim) {
        dirs.set(v.name, this.claim(v.persistentVolumeClaim.claimName));
        continue;
      }
      const dir = path.join(this.root, `pod-${podIndex}`, v.name);
      mkdirSync(dir, { recursive: true });
      if (v.configMap || v.secret) {
        const name = v.configMap?.name ?? v.secret!.secretName!;
        const kind = v.configMap ? 'ConfigMap' : 'Secret';
        const doc = this.docs.find((d) => d.kind === kind && d.metadata.name === name);
        if (!doc) throw new Error(`volume ${v.name}: ${kind} ${name} is not in the render`);
        for (const [key, value] of Object.entries(doc.data ?? {})) writeFileSync(path.join(dir, key), kind === 'Secret' ? Buffer.from(value, 'base64') : value);
        for (const [key, value] of Object.entries(doc.stringData ?? {})) writeFileSync(path.join(dir, key), value);
      } else if (v.projected) {
        // The TLS files: chosen keys of Secrets (and ConfigMaps), under the names the pod sees.
        for (const source of v.projected.sources ?? []) {
          const ref = source.secret ?? source.configMap;
          if (!ref) throw new Error(`volume ${v.name}: only secret and configMap projections run locally`);
          const kind = source.secret ? 'Secret' : 'ConfigMap';
          const doc = this.docs.find((d) => d.kind === kind && d.metadata.name === ref.name);
          if (!doc) {
            if (ref.optional) continue;
            throw new Error(`volume ${v.name}: ${kind} ${ref.name} is not in the render`);
          }
          const value = (key: string) => (kind === 'Secret' && doc.data?.[key] !== undefined ? Buffer.from(doc.data[key], 'base64') : (doc.stringData?.[key] ?? doc.data?.[key]));
          for (const item of ref.items ?? Object.keys({ ...doc.data, ...doc.stringData }).map((key) => ({ key, path: key }))) {
            const content = value(item.key);
            if (content === undefined) throw new Error(`volume ${v.name}: ${kind} ${ref.name} has no key ${item.key}`);
            writeFileSync(path.join(dir, item.path), content, { mode: 0o600 });
          }
        }
      } else if (!v.emptyDir) {
        throw new Error(`volume ${v.name}: only configMap, secret, projected, emptyDir and persistentVolumeClaim volumes run locally`);
      }
      dirs.set(v.name, dir);
    }
    return dirs;
  }

  private start(c: IContainer, dirs: Map<string, string>, pod: { name: string; labels: Record<string, string>; annotations: Record<string, string> }, component: string): LocalContainer {
    // Container paths → local paths, the longest mount first; the image's /app is this repository.
    const mounts = (c.volumeMounts ?? []).map((m) => ({ from: m.mountPath, to: m.subPath ? path.join(dirs.get(m.name)!, m.subPath) : dirs.get(m.name)! }));
    if (mounts.some((m) => m.to === undefined)) throw new Error(`${c.name}: a mount names a volume the pod does not have`);
    mounts.push({ from: IMAGE_APP, to: REPO_ROOT });
    mounts.sort((a, b) => b.from.length - a.from.length);
    const mountPattern = new RegExp(`(^|[=\\s])(${mounts.map((m) => escape(m.from)).join('|')})(?=/|$|\\s)`, 'g');
    const local = (value: string): string => {
      let v = value;
      for (const [name, address] of this.services) v = v.split(name).join(address);
      v = v.replace(/0\.0\.0\.0:(\d+)/g, (all, port: string) => this.listens.get(`${component}:${port}`) ?? all);
      // One pass, longest mount first: a mapped path (under /tmp) must not be mapped again.
      return v.replace(mountPattern, (_, lead: string, from: string) => lead + mounts.find((m) => m.from === from)!.to);
    };
    const env: Record<string, string> = {};
    const expand = (s: string) => s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string) => env[name] ?? all);
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = local(expand(e.value));
      else if (e.valueFrom?.fieldRef) env[e.name] = fieldValue(e.valueFrom.fieldRef.fieldPath, pod);
      else if (e.valueFrom?.secretKeyRef) env[e.name] = this.secretKey(e.valueFrom.secretKeyRef.name!, e.valueFrom.secretKeyRef.key);
      else throw new Error(`${c.name}: env ${e.name}: only values, fieldRef and secretKeyRef run locally`);
    }
    const argv = [...(c.command ?? IMAGE_ENTRYPOINT), ...(c.args ?? [])].map((a) => local(expand(a)));
    const [program, ...args] = argv;
    const child = spawn(program === 'node' ? process.execPath : program!, args, {
      cwd: c.workingDir ? local(c.workingDir) : REPO_ROOT,
      // A container's environment is its own, not this test's.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exit = new Promise<number | string>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
    live.add(child);
    void exit.then(() => live.delete(child));
    return { name: c.name, child, exit, output: () => output };
  }

  private secretKey(name: string, key: string): string {
    const doc = this.docs.find((d) => d.kind === 'Secret' && d.metadata.name === name);
    const value = doc?.stringData?.[key] ?? (doc?.data?.[key] !== undefined ? Buffer.from(doc.data[key], 'base64').toString() : undefined);
    if (value === undefined) throw new Error(`Secret ${name} has no key ${key} in the render`);
    return value;
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The downward API's fields that the rendered pods use. */
function fieldValue(fieldPath: string, pod: { name: string; labels: Record<string, string>; annotations: Record<string, string> }): string {
  const m = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (m) {
    const value = (m[1] === 'labels' ? pod.labels : pod.annotations)[m[2]!];
    if (value === undefined) throw new Error(`pod ${pod.name} has no ${m[1]} ${m[2]} (fieldRef ${fieldPath})`);
    return value;
  }
  if (fieldPath === 'metadata.name') return pod.name;
  if (fieldPath === 'metadata.namespace') return 'default';
  if (fieldPath === 'status.podIP') return '127.0.0.1';
  throw new Error(`fieldRef ${fieldPath} does not run locally`);
}

// What a failed assertion leaves running is killed when the test process exits.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) killTree(child);
});
