// `npm run bench [-- NAME ...] [--json] [options]`: runs benchmarks by name (all by default).
// Every benchmark prints ratios measured side by side in the same run, never absolute goals
// checked against a fixed clock: this machine is shared and noisy.
import { parseArgs } from 'node:util';
import { aggregatorsBench } from './aggregators.js';
import { computeBench } from './compute.js';
import { overheadBench } from './overhead.js';
import { scaleBench } from './scale.js';
import { transportBench } from './transport.js';
import { option, type Bench } from './bench-types.js';

const benches: Bench[] = [aggregatorsBench, transportBench, computeBench, overheadBench, scaleBench];

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  // Benchmarks read their own options; here only the names and --json matter.
  const parsed = parseArgs({ args, allowPositionals: true, strict: false, options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, sizes: { type: 'string' }, methods: { type: 'string' }, mib: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' }, backend: { type: 'string' }, params: { type: 'string' }, workers: { type: 'string' } } });
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
    const benchArgs = [...args, ...defaults.flatMap(([k, v]) => [`--${k}`, v])];
    const result = await bench.run(benchArgs, (line) => process.stderr.write(line + '\n'));
    process.stderr.write(`${bench.name}: ${((performance.now() - benchStarted) / 1000).toFixed(1)} s\n`);
    if (json) process.stdout.write(JSON.stringify({ bench: bench.name, ...result.json }) + '\n');
    else process.stdout.write(result.text + '\n');
  }
  process.stderr.write(`total: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}

process.exitCode = await main();
