// `npm run bench [-- NAME ...] [--json] [options]`: runs benchmarks by name (all by default).
// Every benchmark prints ratios measured side by side in the same run, never absolute goals
// checked against a fixed clock: this machine is shared and noisy.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { aggregatorsBench } from './aggregators.js';
import { computeBench } from './compute.js';
import { convGradsBench } from './conv-grads.js';
import { decodeBench } from './decode.js';
import { dataBench } from './data.js';
import { dataRssBench } from './data-rss.js';
import { overheadBench } from './overhead.js';
import { scaleBench } from './scale.js';
import { scaleSimBench } from './scale-sim.js';
import { threadsBench } from './threads.js';
import { transportBench } from './transport.js';
import { option, type Bench } from './bench-types.js';

/** Set in the environment of a suite's per-benchmark processes. */
const CHILD_ENV = 'MTL_BENCH_CHILD';
const isChild = process.env[CHILD_ENV] !== undefined;

const benches: Bench[] = [aggregatorsBench, transportBench, computeBench, convGradsBench, overheadBench, scaleBench, scaleSimBench, decodeBench, dataBench, dataRssBench, threadsBench];

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  // Benchmarks read their own options; here only the names and --json matter.
  const parsed = parseArgs({ args, allowPositionals: true, strict: false, options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, sizes: { type: 'string' }, methods: { type: 'string' }, mib: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, backend: { type: 'string' }, params: { type: 'string' }, workers: { type: 'string' }, job: { type: 'string' }, rows: { type: 'string' }, reps: { type: 'string' }, gb: { type: 'string' }, 'small-mb': { type: 'string' }, sleep: { type: 'string' }, tasks: { type: 'string' }, connections: { type: 'string' }, 'bucket-bytes': { type: 'string' } } });
  const json = parsed.values.json === true;
  const names = parsed.positionals;
  const unknown = names.filter((n) => !benches.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')} (available: ${benches.map((b) => b.name).join(', ')})\n`);
    return 2;
  }
  const selected = names.length === 0 ? benches : benches.filter((b) => names.includes(b.name));
  const started = performance.now();
  for (const bench of selected) {
    const benchStarted = performance.now();
    const defaults = names.length === 0 ? Object.entries(bench.suiteDefaults ?? {}).filter(([k]) => option(args, k) === undefined) : [];
    const benchArgs = [...args.filter((a) => !names.includes(a)), ...defaults.flatMap(([k, v]) => [`--${k}`, v])];
    if (selected.length > 1) {
      // Each benchmark of a suite in its own process: one's heap (aggregators leave GBs of
      // buffers behind) made the next one's garbage collections slower (measured: transport
      // uploads at 550 MB/s after aggregators, ~1000 MB/s on their own).
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [fileURLToPath(import.meta.url), bench.name, ...benchArgs], { stdio: 'inherit', env: { ...process.env, [CHILD_ENV]: '1' } });
        child.on('exit', (c) => resolve(c ?? 1));
      });
      if (code !== 0) return code;
    } else {
      let result;
      try {
        result = await bench.run(benchArgs, (line) => process.stderr.write(line + '\n'));
      } catch (err) {
        // A benchmark that refuses (too little disk, a failed run) says why, without a stack.
        process.stderr.write(`${bench.name}: ${err instanceof Error ? err.message : String(err)}\n`);
        return 1;
      }
      if (json) process.stdout.write(JSON.stringify({ bench: bench.name, ...result.json }) + '\n');
      else process.stdout.write(result.text + '\n');
    }
    // A suite's child leaves the timing lines to its parent.
    if (!isChild) process.stderr.write(`${bench.name}: ${((performance.now() - benchStarted) / 1000).toFixed(1)} s\n`);
  }
  if (!isChild) process.stderr.write(`total: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}

process.exitCode = await main();
