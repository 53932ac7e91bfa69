// One configuration of `npm run bench -- scale` (or `scale-sim`), in its own process so that its peak RSS is
// its own: a real Coordinator in this process, W simulated workers (bench/simulated-workers.ts)
// in a child process. `node dist/bench/scale-run.js CONFIG_JSON`; prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { loadJobFile } from '../common/job-spec.js';
import { silentLogger } from '../common/logging.js';
import { unitGradientSize } from '../common/parameter-layout.js';
import { Coordinator } from '../coordinator/coordinator.js';
import { prepareRun } from '../coordinator/prepare-run.js';
import type { StepRecord } from '../coordinator/run-records.js';
import type { UnitShapes } from './simulated-workers.js';
import { memoryModel, SCALE_UNIT_BATCH, scaleJob, type ScaleConfig, type ScaleRunResult } from './scale-model.js';

const config = JSON.parse(process.argv[2]!) as ScaleConfig;
const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-scale-'));
try {
  const jobFile = path.join(dir, 'job.yaml');
  writeFileSync(jobFile, YAML.stringify(scaleJob(config)));
  const prepared = prepareRun(loadJobFile(jobFile));
  const { layout } = prepared;
  // What this process holds before the run's own buffers: Node, modules, the (tiny) datasets, the initial parameters.
  const baselineRss = process.memoryUsage().rss;
  const steps: StepRecord[] = [];
  const stepEnds: number[] = [];
  const stepCpu: number[] = [];
  let peakRss = 0;
  let sampling = false;
  const sampler = setInterval(() => {
    // memoryUsage.rss() alone: memoryUsage() also walks the heap spaces, which showed in the coordinator's profile.
    if (sampling) peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 20);
  const coordinator = new Coordinator({
    prepared,
    listen: '127.0.0.1:0',
    outDir: path.join(dir, 'run'),
    minWorkers: config.workers,
    waitForWorkersMs: 120_000,
    maxSessions: Math.max(256, config.workers + 8),
    logger: silentLogger,
    onStateChange: (state) => (sampling = state === 'training'),
    onStep: (record) => {
      steps.push(record);
      stepEnds.push(performance.now());
      const cpu = process.cpuUsage();
      stepCpu.push((cpu.user + cpu.system) / 1000);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    },
  });
  const address = await coordinator.listen();
  const shapes: UnitShapes = {
    gradientFloats: Object.fromEntries(layout.tasks.map((t) => [t, unitGradientSize(layout, t)])),
    trainSamples: SCALE_UNIT_BATCH,
    testSize: prepared.testSizes.get(layout.tasks[0]!)!,
    sleepMs: config.sleepMs ?? 0,
    bucketBytes: prepared.loaded.spec.transport.bucketBytes,
  };
  const script = fileURLToPath(new URL('./simulated-workers.js', import.meta.url));
  const workers = spawn(process.execPath, [script, address, String(config.workers), JSON.stringify(shapes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let workersOut = '';
  workers.stdout.setEncoding('utf8').on('data', (text: string) => (workersOut += text));
  const workersClosed = new Promise((resolve) => workers.once('close', resolve));
  const summary = await coordinator.runToCompletion();
  sampling = false;
  clearInterval(sampler);
  await coordinator.close();
  // 'close', not 'exit': the workers' JSON line must be read to its end.
  await workersClosed;
  if (summary.status !== 'succeeded') throw new Error(`scale run failed: ${JSON.stringify(summary.error)}`);
  const result: ScaleRunResult = {
    config,
    parameters: layout.totalSize,
    shared: layout.shared.size,
    baselineRss,
    peakRss,
    model: memoryModel(layout, config, baselineRss),
    steps: steps.map((s) => s.timeMs),
    stepWallMs: stepEnds.slice(1).map((t, i) => t - stepEnds[i]!),
    stepCpuMs: stepCpu.slice(1).map((t, i) => t - stepCpu[i]!),
    computed: JSON.parse(workersOut.trim().split('\n').pop()!) as ScaleRunResult['computed'],
  };
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
