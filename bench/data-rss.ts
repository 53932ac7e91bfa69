// `npm run bench -- data-rss [--gb 2] [--small-mb 50] [--steps 30]`: peak memory of a real run
// on a streamed dataset bigger than memory against one of 50 MB with the same schema (issue 17
// item 6, RSS half: goal worker peak RSS ratio ≤ 1.5). Each dataset is Parquet split into
// several files (126 FLOAT features, an INT32 class label, a FLOAT value; uncompressed row groups
// of 8192 rows, ~4 MiB), streamed to disk row group by row group, plus one small test file both
// share. Each trains a short two-task job with `mtl run --workers 1` (stream: cache 64 MiB); the
// worker reports its peak RSS (process.resourceUsage().maxRSS, in its 'streamed data read' log
// line at exit), the coordinator's is read from /proc/PID/status (VmHWM) while it runs. Prints
// both ratios and the streamed read throughputs: the worker's chunk loads (decoded MB/s) and the
// coordinator's scan (the extra bytes of the big dataset over the extra time its run took).
// Needs about gb + small-mb + 5% of free disk in the temp directory: checked first.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileWriter, ParquetWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import YAML from 'yaml';
import { option, type Bench } from './bench-types.js';

const FEATURES = 126;
const GROUP_ROWS = 8192;
const ROW_BYTES = (FEATURES + 2) * 4;
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/** A fast deterministic generator of the columns (xorshift32): the data need not be interesting, only big. */
class Columns {
  private state = 0x9e3779b9;
  readonly features = Array.from({ length: FEATURES }, () => new Float32Array(GROUP_ROWS));
  readonly label = new Int32Array(GROUP_ROWS);
  readonly y = new Float32Array(GROUP_ROWS);

  private next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }

  /** Fills the buffers with a new row group (reused: the writer has encoded the last one). */
  fill(): ColumnSource[] {
    for (const f of this.features) for (let r = 0; r < GROUP_ROWS; r++) f[r] = this.next() * 2 - 1;
    for (let r = 0; r < GROUP_ROWS; r++) {
      this.label[r] = this.features[0]![r]! > 0 ? (this.features[1]![r]! > 0 ? 1 : 0) : this.features[2]![r]! > 0 ? 3 : 2;
      this.y[r] = this.features[3]![r]! * 0.5 + this.next() * 0.1;
    }
    const plain = { nullable: false, encoding: 'PLAIN' as const };
    return [
      ...this.features.map((data, f) => ({ name: `f${f}`, data, type: 'FLOAT' as const, ...plain })),
      { name: 'label', data: this.label, type: 'INT32' as const, ...plain },
      { name: 'y', data: this.y, type: 'FLOAT' as const, ...plain },
    ];
  }
}

/** Writes `groups` row groups to `file`, one at a time (never the file in memory). */
function writeParquetFile(file: string, groups: number, columns: Columns): void {
  const first = columns.fill();
  const writer = new ParquetWriter({ writer: fileWriter(file), schema: schemaFromColumnData({ columnData: first }), codec: 'UNCOMPRESSED', statistics: false });
  for (let g = 0; g < groups; g++) void writer.write({ columnData: g === 0 ? first : columns.fill(), rowGroupSize: GROUP_ROWS });
  void writer.finish();
}

/** `bytes` of data as Parquet files of at most 256 MiB in `dir`; returns the bytes written. */
function writeDataset(dir: string, bytes: number, columns: Columns): number {
  mkdirSync(dir, { recursive: true });
  const groups = Math.max(1, Math.round(bytes / (GROUP_ROWS * ROW_BYTES)));
  const perFile = Math.floor((256 * 1024 * 1024) / (GROUP_ROWS * ROW_BYTES));
  let written = 0;
  for (let k = 0, left = groups; left > 0; k++, left -= perFile) {
    const file = path.join(dir, `part-${String(k).padStart(3, '0')}.parquet`);
    writeParquetFile(file, Math.min(perFile, left), columns);
    written += statSync(file).size;
  }
  return written;
}

function job(name: string, trainGlob: string, testFile: string, steps: number): object {
  const data = (target: string) => ({
    dataset: 'parquet',
    path: trainGlob,
    test: testFile,
    features: Array.from({ length: FEATURES }, (_, f) => `f${f}`),
    target,
    stream: { cache: '64MiB', blockRows: 4096, window: 4 },
  });
  return {
    name,
    seed: 1,
    model: { trunk: [{ dense: { units: 32, activation: 'relu' } }], heads: { label: [{ dense: { units: 4, activation: 'softmax' } }], y: [{ dense: { units: 1 } }] } },
    tasks: {
      label: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('label') },
      y: { loss: 'meanSquaredError', metrics: ['mae'], data: data('y') },
    },
    training: { steps, batchSize: 256, shardsPerTask: 1, optimizer: { name: 'adam', learningRate: 0.001 } },
  };
}

function vmHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

interface RunMemory {
  seconds: number;
  coordinatorPeak: number;
  workerPeak: number;
  loads: number;
  evictions: number;
  decodedMB: number;
  readMBs: number;
}

/** Trains `jobFile` with `mtl run --workers 1`; the peaks of the coordinator (polled) and of the worker (its own report). */
async function measure(jobFile: string, out: string): Promise<RunMemory> {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, 'run', jobFile, '--workers', '1', '--out', out, '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, MTL_LOG_LEVEL: 'info' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let coordinatorPeak = 0;
  const poll = setInterval(() => (coordinatorPeak = Math.max(coordinatorPeak, vmHwm(child.pid!))), 100);
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  clearInterval(poll);
  if (code !== 0) throw new Error(`mtl run ${jobFile} exited with ${code}:\n${stderr.slice(-3000)}`);
  const line = /streamed data read .*/.exec(stderr)?.[0];
  const field = (name: string): number => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line ?? '')?.[1] ?? NaN);
  if (line === undefined) throw new Error(`the worker did not report its streamed data:\n${stderr.slice(-3000)}`);
  const decoded = field('decodedBytes');
  return {
    seconds: (performance.now() - started) / 1000,
    coordinatorPeak,
    workerPeak: field('maxRssBytes'),
    loads: field('loads'),
    evictions: field('evictions'),
    decodedMB: decoded / 1e6,
    readMBs: decoded / 1e3 / field('loadMs'),
  };
}

export const dataRssBench: Bench = {
  name: 'data-rss',
  description: 'peak worker and coordinator RSS training on a streamed ≥ 2 GB Parquet dataset against a 50 MB one (goal ≤ 1.5)',
  async run(args, progress) {
    const gb = Number(option(args, 'gb') ?? 2);
    const smallMb = Number(option(args, 'small-mb') ?? 50);
    const steps = Number(option(args, 'steps') ?? 30);
    const tmp = os.tmpdir();
    const need = (gb * 1024 ** 3 + smallMb * 1024 ** 2) * 1.05 + 64 * 1024 ** 2;
    const fs = statfsSync(tmp);
    const free = fs.bavail * fs.bsize;
    if (free < need) {
      throw new Error(`needs ${(need / 1024 ** 3).toFixed(1)} GiB free in ${tmp} for its generated datasets, only ${(free / 1024 ** 3).toFixed(1)} GiB are: free some space, set TMPDIR elsewhere, or pass a smaller --gb`);
    }
    const dir = mkdtempSync(path.join(tmp, 'mtl-bench-data-rss-'));
    try {
      const columns = new Columns();
      const t0 = performance.now();
      const testFile = path.join(dir, 'test.parquet');
      writeParquetFile(testFile, 1, columns);
      const smallBytes = writeDataset(path.join(dir, 'small'), smallMb * 1024 ** 2, columns);
      progress(`wrote the ${(smallBytes / 1e6).toFixed(0)} MB dataset; writing ${gb} GiB in ${dir} ...`);
      const bigBytes = writeDataset(path.join(dir, 'big'), gb * 1024 ** 3, columns);
      const genSeconds = (performance.now() - t0) / 1000;
      progress(`wrote ${(bigBytes / 1e9).toFixed(2)} GB in ${genSeconds.toFixed(0)} s (${((smallBytes + bigBytes) / 1e6 / genSeconds).toFixed(0)} MB/s)`);
      const write = (name: string, glob: string) => {
        const file = path.join(dir, `${name}.yaml`);
        writeFileSync(file, YAML.stringify(job(name, glob, 'test.parquet', steps)));
        return file;
      };
      const small = await measure(write('small', 'small/part-*.parquet'), path.join(dir, 'out-small'));
      progress(`small: worker peak ${(small.workerPeak / 2 ** 20).toFixed(0)} MiB, coordinator ${(small.coordinatorPeak / 2 ** 20).toFixed(0)} MiB, ${small.seconds.toFixed(0)} s`);
      const big = await measure(write('big', 'big/part-*.parquet'), path.join(dir, 'out-big'));
      progress(`big: worker peak ${(big.workerPeak / 2 ** 20).toFixed(0)} MiB, coordinator ${(big.coordinatorPeak / 2 ** 20).toFixed(0)} MiB, ${big.seconds.toFixed(0)} s`);
      const mib = (b: number) => (b / 2 ** 20).toFixed(0);
      const workerRatio = big.workerPeak / small.workerPeak;
      const coordinatorRatio = big.coordinatorPeak / small.coordinatorPeak;
      const scanMBs = (bigBytes - smallBytes) / 1e6 / (big.seconds - small.seconds);
      const row = (name: string, bytes: number, m: RunMemory) =>
        `| ${name} | ${(bytes / 1e6).toFixed(0)} | ${mib(m.workerPeak)} | ${mib(m.coordinatorPeak)} | ${m.loads} | ${m.evictions} | ${m.readMBs.toFixed(0)} | ${m.seconds.toFixed(0)} |`;
      const text = [
        `Streamed Parquet (${FEATURES} FLOAT features + 2 targets, row groups of ${GROUP_ROWS} rows), mtl run --workers 1, ${steps} steps of 256, cache 64 MiB:`,
        '',
        '| dataset | MB on disk | worker peak RSS MiB | coordinator peak RSS MiB | chunks decoded | evicted | worker decode MB/s | run s |',
        '|---|---|---|---|---|---|---|---|',
        row('small', smallBytes, small),
        row('big', bigBytes, big),
        '',
        `worker peak RSS big ÷ small: ${workerRatio.toFixed(2)} (goal ≤ 1.5); coordinator: ${coordinatorRatio.toFixed(2)}; dataset size ratio ${(bigBytes / smallBytes).toFixed(0)}×`,
        // The runs differ only in the data the coordinator's scan reads (the workers read the same few chunks).
        `coordinator scan throughput (extra bytes ÷ extra run time of big over small): ${scanMBs > 0 ? `${scanMBs.toFixed(0)} MB/s` : 'not measurable (the datasets are too close in size)'}`,
      ].join('\n');
      return { text, json: { gb, smallMb, steps, smallBytes, bigBytes, small, big, workerRatio, coordinatorRatio, scanMBs, generateSeconds: genSeconds } };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
