// Sequential (progressive) training end to end: stages run in order with the tasks they name,
// earlier heads stay put, replayed tasks join the later stages, every task is evaluated after
// every stage, and a run stopped mid-way and resumed (with another worker count) ends with
// bitwise the weights of an undisturbed run, EWC's Fisher arrays included.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { buildLayout } from '../../common/parameter-layout.js';
import { validateJob } from '../../common/job-spec.js';
import { decodeCheckpoint } from '../../coordinator/checkpoints.js';
import { runCli, startCli } from '../helpers/cli-process.js';
import { waitForSteps, weightsOf } from '../helpers/chaos.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

const NAMES = ['a', 'b', 'c'];
const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 3, dim: 12, rho: 0.5, samples: 1200 });

function sequentialJob(): Record<string, unknown> {
  return {
    name: 'sequential-e2e',
    seed: 3,
    model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: Object.fromEntries(NAMES.map((t) => [t, [{ dense: { units: 1 } }]])) },
    tasks: Object.fromEntries(NAMES.map((t, i) => [t, { loss: 'meanSquaredError', metrics: ['mse'], data: data(i) }])),
    training: {
      mode: 'sequential',
      batchSize: 32,
      shardsPerTask: 2,
      optimizer: { name: 'adam', learningRate: 0.01 },
      stages: [
        { tasks: ['a'], steps: 30 },
        { tasks: ['b'], steps: 30, learningRate: 0.005, protect: { ewc: { lambda: 50, samples: 150 } } },
        {
          name: 'last',
          tasks: ['c'],
          steps: 30,
          freeze: ['b'],
          protect: { replay: { fraction: 0.5 }, ewc: { lambda: 50, samples: 150, online: true, decay: 0.9 }, l2sp: { alpha: 0.01, beta: 0.001 } },
        },
      ],
    },
    checkpoint: { every: 15, keep: 10 },
  };
}

interface StepLine {
  step: number;
  stage: string;
  losses: Record<string, number>;
  penalty?: number;
}
interface EvalLine {
  step: number;
  stage: string;
  tasks: Record<string, { loss: number; metrics: Record<string, number> }>;
}
interface Continual {
  metric: Record<string, string>;
  stages: string[];
  matrix: Array<Record<string, number>>;
  average: number;
  backwardTransfer: number;
  forwardTransfer: number | null;
  retention: Record<string, number>;
}

const lines = <T>(file: string): T[] => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as T);

/** Params of the checkpoint at `step` in run directory `out`. */
function paramsAt(out: string, step: number): Float32Array {
  const file = readdirSync(path.join(out, 'checkpoints')).find((f) => f === `ckpt-${String(step).padStart(9, '0')}.mtlckpt`);
  assert.ok(file, `no checkpoint at step ${step}`);
  return decodeCheckpoint(readFileSync(path.join(out, 'checkpoints', file))).params;
}

void describe('sequential training', () => {
  void it('trains stage by stage, keeps inactive and frozen heads, replays earlier tasks, and reports R, BWT and retention', async () => {
    const job = sequentialJob();
    const jobFile = writeJob(job);
    const out = tempDir('mtl-seq-');
    const r = await runCli(['run', jobFile, '--workers', '2', '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);

    const steps = lines<StepLine>(path.join(out, 'metrics.jsonl'));
    assert.equal(steps.length, 90);
    const byStage = (name: string) => steps.filter((s) => s.stage === name);
    assert.deepEqual(byStage('stage-1').map((s) => Object.keys(s.losses)), Array.from({ length: 30 }, () => ['a']));
    assert.deepEqual(byStage('stage-2').map((s) => Object.keys(s.losses)), Array.from({ length: 30 }, () => ['b']));
    assert.deepEqual(byStage('last').map((s) => Object.keys(s.losses)), Array.from({ length: 30 }, () => ['a', 'b', 'c']), 'stage 3 replays a and b');
    assert.ok(byStage('stage-1').every((s) => s.penalty === undefined), 'nothing to protect in stage 1');
    assert.ok(byStage('stage-2').slice(1).every((s) => s.penalty! > 0), 'EWC penalty acts from the second step of stage 2');

    // Heads: a is untouched while stage 2 trains b; b is frozen in stage 3 although replayed; c moves.
    const parsed = validateJob(job, 'job');
    const layout = buildLayout(parsed, [12]); // synthetic inputs: a vector of dim 12
    const head = (params: Float32Array, t: string) => {
      const g = layout.headGroups.get(t)!;
      return params.slice(g.offset, g.offset + g.size);
    };
    const shared = (params: Float32Array) => params.slice(layout.shared.offset, layout.shared.offset + layout.shared.size);
    const [p30, p45, p60, p75] = [30, 45, 60, 75].map((s) => paramsAt(out, s));
    assert.deepEqual(head(p45!, 'a'), head(p30!, 'a'));
    assert.deepEqual(head(p60!, 'a'), head(p30!, 'a'));
    assert.deepEqual(head(p75!, 'b'), head(p60!, 'b'), 'frozen in stage 3');
    assert.notDeepEqual(head(p75!, 'a'), head(p60!, 'a'), 'replay trains a again');
    assert.notDeepEqual(head(p75!, 'c'), head(p60!, 'c'));
    assert.notDeepEqual(head(p60!, 'c'), new Float32Array(head(p60!, 'c').length), 'c has its initial head');
    assert.deepEqual(head(p60!, 'c'), head(p30!, 'c'), 'c untouched before its stage');
    assert.notDeepEqual(shared(p45!), shared(p30!));

    // R[stage][task] is the evaluation at each stage's end; BWT and retention follow from it.
    const evals = lines<EvalLine>(path.join(out, 'eval.jsonl'));
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { continual: Continual; status: string };
    assert.equal(summary.status, 'succeeded');
    const c = summary.continual;
    assert.deepEqual(c.stages, ['stage-1', 'stage-2', 'last']);
    assert.deepEqual(c.metric, { a: 'mse', b: 'mse', c: 'mse' });
    [30, 60, 90].forEach((step, k) => {
      const e = evals.find((x) => x.step === step);
      assert.ok(e, `an evaluation at step ${step}`);
      for (const t of NAMES) assert.equal(c.matrix[k]![t], e.tasks[t]!.metrics.mse);
    });
    assert.equal(evals.find((x) => x.step === 30)!.stage, 'stage-1');
    const R = c.matrix;
    assert.ok(Math.abs(c.average - (R[2]!.a! + R[2]!.b! + R[2]!.c!) / 3) < 1e-12);
    assert.ok(Math.abs(c.backwardTransfer - (R[2]!.a! - R[0]!.a! + (R[2]!.b! - R[1]!.b!)) / 2) < 1e-12);
    assert.ok(Math.abs(c.retention.a! - R[2]!.a! / R[0]!.a!) < 1e-12);
    assert.equal(c.forwardTransfer, null, 'no baselines configured');
    assert.ok(R[0]!.a! < R[0]!.b!, 'after stage 1, a (trained) has a lower mse than b (untrained)');
  });

  void it('stopped in stage 2 and resumed with another worker count: bitwise the weights of an undisturbed run', async () => {
    const jobFile = writeJob(sequentialJob());
    const reference = tempDir('mtl-seq-ref-');
    const ref = await runCli(['run', jobFile, '--workers', '1', '--out', reference, '--quiet']);
    assert.equal(ref.code, 0, ref.stderr);

    const out = tempDir('mtl-seq-stop-');
    const first = startCli(['run', jobFile, '--workers', '2', '--out', out, '--quiet']);
    await waitForSteps(out, 50, first);
    first.child.kill('SIGTERM');
    const stopped = await first.result;
    assert.equal(stopped.code, 143, stopped.stderr);
    const resumed = await runCli(['run', '--resume', out, '--workers', '1', '--quiet']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { resumedFrom: number; continual: Continual };
    assert.ok(summary.resumedFrom >= 45 && summary.resumedFrom < 90, `resumed from ${summary.resumedFrom}`);
    assert.ok(weightsOf(out).equals(weightsOf(reference)), 'the resumed run ends with other weights');
    const refSummary = JSON.parse(readFileSync(path.join(reference, 'summary.json'), 'utf8')) as { continual: Continual };
    assert.deepEqual(summary.continual, refSummary.continual);
  });
});
