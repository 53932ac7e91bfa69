// Task affinity end to end: a run on data with a known task grouping records the affinity
// every step and in its summary, and `mtl affinity` recovers the grouping.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

type Matrix = Record<string, Record<string, number>>;
interface AffinityOutput {
  tasks: string[];
  steps: number;
  source: string;
  affinity: Matrix;
  grouping?: { k: number; groups: string[][]; score: number; method: string };
}

// Tasks a and c share one direction of the label functions, b and d another (rho 0.9 within,
// 0 across): the grouping the affinity should find is {a, c} {b, d}.
function groupedJob(): object {
  const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 4, dim: 20, rho: 0.9, groups: [[0, 2], [1, 3]], samples: 2000 });
  const names = ['a', 'b', 'c', 'd'];
  return {
    name: 'affinity-groups',
    seed: 1,
    model: { trunk: [{ dense: { units: 32, activation: 'relu' } }], heads: Object.fromEntries(names.map((t) => [t, [{ dense: { units: 1 } }]])) },
    tasks: Object.fromEntries(names.map((t, i) => [t, { loss: 'meanSquaredError', data: data(i) }])),
    training: { steps: 100, batchSize: 64, optimizer: { name: 'adam', learningRate: 0.01 } },
  };
}

void describe('task affinity', () => {
  void it('is recorded per step and on average, and `mtl affinity --groups 2` recovers the planted task groups', async () => {
    const out = tempDir('mtl-affinity-');
    const run = await runCli(['run', writeJob(groupedJob()), '--out', out, '--json']);
    assert.equal(run.code, 0, run.stderr);

    const steps = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { affinity: Matrix });
    assert.equal(steps.length, 100);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { affinity: { estimate: string; steps: number; mean: Matrix } };
    assert.equal(summary.affinity.estimate, 'first-order');
    assert.equal(summary.affinity.steps, 100);
    for (const from of ['a', 'b', 'c', 'd']) {
      for (const to of ['a', 'b', 'c', 'd']) {
        const mean = steps.reduce((s, r) => s + r.affinity[from]![to]!, 0) / steps.length;
        assert.ok(Math.abs(summary.affinity.mean[from]![to]! - mean) <= 1e-12 * Math.abs(mean) + 1e-15, `${from}→${to}`);
      }
      assert.ok(summary.affinity.mean[from]![from]! > 0, `a step on ${from} lowers its own loss`);
    }

    const r = await runCli(['affinity', out, '--groups', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as AffinityOutput;
    assert.equal(printed.source, 'summary.json');
    assert.deepEqual(printed.affinity, summary.affinity.mean);
    assert.deepEqual(printed.grouping?.groups, [['a', 'c'], ['b', 'd']]);
    assert.equal(printed.grouping?.method, 'exhaustive');
    const m = printed.affinity;
    assert.ok(Math.min(m.a!.c!, m.c!.a!, m.b!.d!, m.d!.b!) > Math.max(m.a!.b!, m.a!.d!, m.b!.c!, m.c!.d!), JSON.stringify(m));

    // An unfinished run (no summary.json) is read from metrics.jsonl: the same matrix.
    const copy = tempDir('mtl-affinity-copy-');
    cpSync(out, copy, { recursive: true });
    rmSync(path.join(copy, 'summary.json'));
    const fromMetrics = JSON.parse((await runCli(['affinity', copy, '--json'])).stdout) as AffinityOutput;
    assert.equal(fromMetrics.source, 'metrics.jsonl');
    assert.equal(fromMetrics.steps, 100);
    for (const from of printed.tasks) for (const to of printed.tasks) assert.ok(Math.abs(fromMetrics.affinity[from]![to]! - m[from]![to]!) <= 1e-12 * Math.abs(m[from]![to]!) + 1e-15);

    const text = await runCli(['affinity', out, '--groups', '2']);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /Best partition into 2 groups \(exhaustive, 7 partitions scored\): \{a, c\} \{b, d\}/);

    const tooMany = await runCli(['affinity', out, '--groups', '5']);
    assert.equal(tooMany.code, 2);
    assert.match(tooMany.stderr, /only 4 tasks/);
    const missing = await runCli(['affinity', path.join(out, 'nope')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /is it a run directory/);
  });

  void it('measures the exact lookahead every K steps without touching training, close to the first-order estimate', async () => {
    const job = groupedJob() as Record<string, unknown>;
    const plain = tempDir('mtl-affinity-plain-');
    const measured = tempDir('mtl-affinity-exact-');
    const a = await runCli(['run', writeJob(job), '--workers', '2', '--out', plain, '--quiet']);
    assert.equal(a.code, 0, a.stderr);
    const b = await runCli(['run', writeJob({ ...job, diagnostics: { exactAffinityEvery: 10 } }), '--workers', '2', '--out', measured, '--quiet']);
    assert.equal(b.code, 0, b.stderr);
    assert.ok(readFileSync(path.join(plain, 'model', 'weights.bin')).equals(readFileSync(path.join(measured, 'model', 'weights.bin'))), 'measuring affinity changed the weights');

    type Line = { step: number; affinity: Matrix; affinityExact?: Matrix; timeMs: { lookahead?: number } };
    const lines = readFileSync(path.join(measured, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    const exactSteps = lines.filter((l) => l.affinityExact).map((l) => l.step);
    assert.deepEqual(exactSteps, [1, 11, 21, 31, 41, 51, 61, 71, 81, 91]);
    for (const l of lines.filter((x) => x.affinityExact)) {
      assert.ok(l.timeMs.lookahead! > 0);
      for (const from of ['a', 'b', 'c', 'd']) {
        for (const to of ['a', 'b', 'c', 'd']) {
          const e = l.affinityExact![from]![to]!;
          const f = l.affinity[from]![to]!;
          // They differ by the second-order term; at this learning rate it is small next to the largest entries.
          assert.ok(Math.abs(e - f) < 0.1 * Math.abs(l.affinity[from]![from]!) + 1e-6, `step ${l.step} ${from}→${to}: exact ${e}, first-order ${f}`);
        }
      }
    }
    const r = await runCli(['affinity', measured, '--groups', '2', '--exact', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as AffinityOutput & { estimate: string };
    assert.equal(printed.estimate, 'exact');
    assert.equal(printed.steps, 10);
    assert.deepEqual(printed.grouping?.groups, [['a', 'c'], ['b', 'd']]);
    const none = await runCli(['affinity', plain, '--exact']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /exactAffinityEvery/);
  });
});
