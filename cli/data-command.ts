// `mtl data put | ls | rm`: datasets in the NATS object store, for jobs that name them as
// nats://NAME/path; and `mtl fetch RUN`: a run's results from the same store. 0 success · 1 NATS unreachable or failing · 2 bad input (a missing file, a
// name already holding other content, no such dataset).
import bytes from 'bytes';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ControlPlane } from '../common/control/plane.js';
import { localFiles, NatsDataStore } from '../common/data-store/nats-data.js';
import { fetchRunResults } from '../common/data-store/run-results.js';
import { DATASET_NAME } from '../common/data-store/urls.js';
import { DatasetError, errorMessage } from '../common/errors.js';
import { createLogger } from '../common/logging.js';
import { redactUrl } from '../common/security.js';
import { EXIT } from './exit-codes.js';
import { loadNatsFlags, type NatsSecurityFlags } from './security-options.js';

export interface DataCommandOptions extends NatsSecurityFlags {
  nats: string;
  json: boolean;
}

export interface DataPutOptions extends DataCommandOptions {
  name?: string;
  replace: boolean;
}

const size = (n: number) => bytes.format(n, { unitSeparator: ' ' }) ?? `${n} B`;

/** Connects, runs `body` with the connection, and maps what goes wrong to an exit code (after saying it). */
async function withPlane(opts: NatsSecurityFlags & { nats: string }, command: string, body: (plane: ControlPlane) => Promise<number>): Promise<number> {
  const security = loadNatsFlags(opts);
  if (security === null) return EXIT.usage;
  let plane: ControlPlane;
  try {
    plane = await ControlPlane.connect({ url: opts.nats, name: command, logger: createLogger({ component: 'nats', level: 'error' }), security, reconnectWaitMs: 250 });
  } catch (err) {
    process.stderr.write(`${errorMessage(err)}\n`);
    return EXIT.failed;
  }
  try {
    return await body(plane);
  } catch (err) {
    process.stderr.write(`${command}: ${errorMessage(err)}\n`);
    return err instanceof DatasetError ? EXIT.usage : EXIT.failed;
  } finally {
    await plane.close();
  }
}

/** Runs `body` on the data store (see withPlane). */
function withStore(opts: DataCommandOptions, create: boolean, body: (store: NatsDataStore) => Promise<number>): Promise<number> {
  return withPlane(opts, 'mtl data', async (plane) => body(await NatsDataStore.open(plane, create)));
}

/** The default dataset name of a file or directory: its name without extension, made a valid name. */
function defaultName(source: string): string {
  const base = path.basename(path.resolve(source));
  return base.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_-]/g, '-').replace(/^[-_]+/, '') || 'data';
}

export async function dataPutCommand(source: string, opts: DataPutOptions): Promise<number> {
  const name = opts.name ?? defaultName(source);
  if (!DATASET_NAME.test(name)) {
    process.stderr.write(`mtl data put: "${name}" is not a dataset name (letters, digits, - and _, at most 128; --name NAME)\n`);
    return EXIT.usage;
  }
  try {
    // Before connecting: a missing file is the user's to fix, whether NATS is up or not.
    localFiles(source);
  } catch (err) {
    process.stderr.write(`mtl data put: ${errorMessage(err)}\n`);
    return EXIT.usage;
  }
  return withStore(opts, true, async (store) => {
    const result = await store.put(source, name, {
      replace: opts.replace,
      onFile: (f, sent) => {
        if (!opts.json) process.stdout.write(`  ${sent ? 'stored ' : 'present'}  ${f.path}  ${size(f.size)}  sha256 ${f.sha256}\n`);
      },
    });
    const url = result.files.length === 1 ? `nats://${name}/${result.files[0]!.path}` : `nats://${name}/`;
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ dataset: name, url, files: result.files, bytes: result.bytes, digest: result.digest, uploaded: result.uploaded, unchanged: result.unchanged })}\n`);
    } else {
      const what = result.unchanged ? 'unchanged (already stored with this content)' : `${result.uploaded} file(s) sent`;
      process.stdout.write(`dataset ${name}: ${result.files.length} file(s), ${size(result.bytes)}, digest ${result.digest}; ${what}\n  use it as ${url}${result.files.length === 1 ? '' : '<path>'} (NATS ${redactUrl(opts.nats)})\n`);
    }
    return EXIT.ok;
  });
}

export async function dataLsCommand(name: string | undefined, opts: DataCommandOptions): Promise<number> {
  return withStore(opts, false, async (store) => {
    if (name !== undefined) {
      const m = await store.manifest(name);
      if (m === undefined) throw new DatasetError(`no dataset ${name} on NATS at ${redactUrl(opts.nats)}`);
      if (opts.json) for (const f of m.files) process.stdout.write(`${JSON.stringify(f)}\n`);
      else for (const f of m.files) process.stdout.write(`${f.path}  ${size(f.size)}  sha256 ${f.sha256}\n`);
      return EXIT.ok;
    }
    const all = await store.list();
    if (opts.json) for (const d of all) process.stdout.write(`${JSON.stringify(d)}\n`);
    else for (const d of all) process.stdout.write(`${d.dataset}  ${d.files} file(s)  ${size(d.bytes)}  digest ${d.digest}  ${d.createdAt}\n`);
    return EXIT.ok;
  });
}

export async function dataRmCommand(name: string, opts: DataCommandOptions): Promise<number> {
  return withStore(opts, false, async (store) => {
    if (!(await store.remove(name))) throw new DatasetError(`no dataset ${name} on NATS at ${redactUrl(opts.nats)}`);
    if (!opts.json) process.stdout.write(`removed dataset ${name}\n`);
    return EXIT.ok;
  });
}

export interface FetchCommandOptions extends NatsSecurityFlags {
  nats: string;
  out?: string;
  force: boolean;
}

/** `mtl fetch RUN`: a run's results from the NATS object store into a local directory. */
export async function fetchCommand(runId: string, opts: FetchCommandOptions): Promise<number> {
  const out = opts.out ?? runId;
  let present: string[] = [];
  try {
    present = readdirSync(out);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      process.stderr.write(`mtl fetch: --out ${out}: ${errorMessage(err)}\n`);
      return EXIT.usage;
    }
  }
  if (present.length > 0 && !opts.force) {
    process.stderr.write(`mtl fetch: ${out} is not empty (${present.slice(0, 5).join(', ')}${present.length > 5 ? ', ...' : ''}): give another --out, or --force to write the run's files into it\n`);
    return EXIT.usage;
  }
  return withPlane(opts, 'mtl fetch', async (plane) => {
    const { files, bytes: total } = await fetchRunResults(plane, runId, out);
    process.stdout.write(`fetched run ${runId}: ${files} file(s), ${size(total)}, into ${out}\n`);
    return EXIT.ok;
  });
}
