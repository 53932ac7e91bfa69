// Per-task data end to end: two tasks reading two different CSV files of different sizes — a
// 2-column regression target with a test split by a column, and a 2-column multi-label target
// with a seeded fraction. `mtl validate` reports each task's own rows, columns, classes and
// split (text and --json); `mtl run` trains it with 1 and with 3 workers to bitwise-same
// weights; `mtl predict` writes one column per target column and reproduces the held-out mse.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../common/trained-model.js';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { stepLosses, trainJob } from '../helpers/training-runs.js';

const setOf = (i: number) => (i % 5 === 0 ? 'test' : i % 7 === 0 ? 'val' : 'train');

function fixtures(dir: string): { aTest: string; heldOut: number } {
  const a = ['x1,x2,y1,y2,set'];
  for (let i = 0; i < 120; i++) {
    const [x1, x2] = [Math.sin(i), Math.cos(i * 0.7)];
    a.push(`${x1.toFixed(4)},${x2.toFixed(4)},${(2 * x1 + x2).toFixed(4)},${(x1 - 3 * x2).toFixed(4)},${setOf(i)}`);
  }
  writeFileSync(path.join(dir, 'a.csv'), a.join('\n') + '\n');
  const aTest = path.join(dir, 'a-test.csv');
  writeFileSync(aTest, [a[0], ...a.slice(1).filter((_, i) => setOf(i) !== 'train')].join('\n') + '\n');
  const b = ['x1,x2,lab1,lab2'];
  for (let i = 0; i < 60; i++) {
    const [x1, x2] = [Math.sin(i * 1.3), Math.cos(i * 0.3)];
    b.push(`${x1.toFixed(4)},${x2.toFixed(4)},${x1 > 0 ? 1 : 0},${x2 > 0 ? 'yes' : 'no'}`);
  }
  writeFileSync(path.join(dir, 'b.csv'), b.join('\n') + '\n');
  return { aTest, heldOut: Array.from({ length: 120 }, (_, i) => setOf(i)).filter((s) => s !== 'train').length };
}

function job(vecUnits = 2): object {
  return {
    name: 'targets',
    seed: 3,
    model: {
      trunk: [{ dense: { units: 8, activation: 'relu' } }],
      heads: { vec: [{ dense: { units: vecUnits } }], ml: [{ dense: { units: 2, activation: 'sigmoid' } }] },
    },
    tasks: {
      vec: {
        loss: 'meanSquaredError',
        metrics: ['mse', 'mae'],
        data: { dataset: 'csv', path: 'a.csv', features: ['x1', 'x2'], target: ['y1', 'y2'], split: { column: 'set', test: ['test', 'val'] } },
      },
      ml: { loss: 'binaryCrossentropy', metrics: ['accuracy'], data: { dataset: 'csv', path: 'b.csv', features: ['x1', 'x2'], target: ['lab1', 'lab2'], testFraction: 0.25, seed: 7 } },
    },
    training: { steps: 40, batchSize: 16, optimizer: { name: 'adam', learningRate: 0.02 } },
  };
}

interface TaskInfo {
  rows: { train: number; test: number };
  columns: { features: string[]; targets: string[] };
  classes: unknown;
  split: string;
  target: string;
}

void describe('per-task data: targets of several columns, a column split, mtl validate per task', () => {
  const dir = tempDir('mtl-targets-e2e-');
  const { aTest, heldOut } = fixtures(dir);
  const jobFile = writeJob(job(), dir);

  void it("mtl validate shows each task's own rows, columns, classes and split, as text and as JSON", async () => {
    const text = await runCli(['validate', jobFile]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /task vec \(target \[y1, y2\]\):.*a\.csv/);
    assert.match(text.stdout, new RegExp(`rows: ${120 - heldOut} train / ${heldOut} test; split: column \`set\` in \\[test, val\\]`));
    assert.match(text.stdout, /reads: x1, x2 → targets y1, y2/);
    assert.match(text.stdout, /rows: 45 train \/ 15 test; split: seeded fraction 0\.25 \(seed 7\)/);
    assert.match(text.stdout, /labels per column: lab1 \(0\/1\), lab2 \(no\/yes\)/);

    const json = await runCli(['validate', jobFile, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const tasks = (JSON.parse(json.stdout) as { tasks: Record<string, TaskInfo> }).tasks;
    assert.deepEqual(tasks.vec!.rows, { train: 120 - heldOut, test: heldOut });
    assert.deepEqual(tasks.vec!.columns, { features: ['x1', 'x2'], targets: ['y1', 'y2'] });
    assert.equal(tasks.vec!.classes, null);
    assert.equal(tasks.vec!.split, 'column `set` in [test, val]');
    assert.deepEqual(tasks.ml!.rows, { train: 45, test: 15 });
    assert.deepEqual(tasks.ml!.classes, { columns: { lab1: ['0', '1'], lab2: ['no', 'yes'] } });
    assert.equal(tasks.ml!.split, 'seeded fraction 0.25 (seed 7)');
  });

  void it('a head without one unit per target column is a job error naming the head and the target (exit 2)', async () => {
    const r = await runCli(['validate', writeJob(job(1), dir, 'one-unit.yaml')]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /model\.heads\.vec: the head outputs 1 values but tasks\.vec\.data\.target has 2 columns \(y1, y2\)/);
  });

  void it('trains with 1 and 3 workers to bitwise-same weights; predict writes task.column outputs and reproduces the held-out mse', async () => {
    const one = await trainJob(jobFile, 1);
    const three = await trainJob(jobFile, 3);
    assert.ok(one.weights.equals(three.weights), 'same seed and backend: bitwise-same weights with 1 and 3 workers');
    const losses = stepLosses(one.out);
    const mean = (t: string, rows: Array<Record<string, number>>) => rows.reduce((s, r) => s + r[t]!, 0) / rows.length;
    for (const t of ['vec', 'ml']) assert.ok(mean(t, losses.slice(-5)) < mean(t, losses.slice(0, 5)), `${t}: the loss went down`);
    const summary = JSON.parse(readFileSync(path.join(one.out, 'summary.json'), 'utf8')) as { tasks: Record<string, { samples: number; mse?: number; accuracy?: number }> };
    assert.equal(summary.tasks.vec!.samples, heldOut, 'the test split is the rows of set test or val');
    assert.equal(summary.tasks.ml!.samples, 15);

    const out = path.join(one.out, 'predictions.csv');
    const r = await runCli(['predict', one.out, aTest, '--out', out, '--tasks', 'vec']);
    assert.equal(r.code, 0, r.stderr);
    const mse = Number(new RegExp(`vec: mse ([\\d.]+) {2}mae [\\d.]+ on ${heldOut} rows \\(targets "y1", "y2", averaged over the 2 columns\\)`).exec(r.stderr)?.[1]);
    assert.ok(Math.abs(mse - summary.tasks.vec!.mse!) < 1e-3, `predict: mse ${mse}, the run: ${summary.tasks.vec!.mse}`);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'vec.y1,vec.y2');
    assert.equal(lines.length, heldOut + 1);

    // loadModel's API returns the vector: width 2, the same values predict wrote.
    const model = await loadModel(path.join(one.out, 'model'));
    try {
      assert.deepEqual(model.tasks.find((t) => t.name === 'vec')!.targetColumns, ['y1', 'y2']);
      const rows = readFileSync(aTest, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(','))
        .map((cells) => ({ x1: cells[0], x2: cells[1] }));
      const p = model.predict(rows, { only: ['vec'] }).get('vec')!;
      assert.equal(p.width, 2);
      assert.equal(p.values.length, 2 * heldOut);
      lines.slice(1).forEach((l, i) => l.split(',').forEach((v, c) => assert.ok(Math.abs(Number(v) - p.values[i * 2 + c]!) < 1e-4, `row ${i} column ${c}`)));
      const ml = model.predict(rows, { only: ['ml'] }).get('ml')!;
      assert.ok(ml.labels!.every((label, j) => (j % 2 === 0 ? ['0', '1'] : ['no', 'yes']).includes(label)), 'each column answers with its own labels');
    } finally {
      model.dispose();
    }
    const labels = await runCli(['predict', one.out, path.join(dir, 'b.csv'), '--tasks', 'ml']);
    assert.equal(labels.code, 0, labels.stderr);
    assert.equal(labels.stdout.split('\n')[0], 'ml.lab1,ml.lab1_score,ml.lab2,ml.lab2_score');
    assert.match(labels.stderr, /ml: accuracy [\d.]+ on 60 rows \(targets "lab1", "lab2", averaged over the 2 columns\)/);
  });
});
