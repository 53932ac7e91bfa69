// `mtl predict` end to end: a two-task job on the Seattle weather table trained with its own
// test file (2015; train on 2012–2014), then `mtl predict RUN_DIR test.csv` on the raw rows of
// that file reproduces the run's held-out metrics: the exported model applies the run's
// standardisation itself and answers with class labels.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { SEATTLE_CSV } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('mtl predict', () => {
  const dir = tempDir('mtl-predict-');
  const [header, ...rows] = readFileSync(SEATTLE_CSV, 'utf8').trim().split('\n');
  writeFileSync(path.join(dir, 'train.csv'), [header, ...rows.filter((r) => !r.startsWith('2015'))].join('\n'));
  writeFileSync(path.join(dir, 'test.csv'), [header, ...rows.filter((r) => r.startsWith('2015'))].join('\n'));
  const data = (target: string) => ({ dataset: 'csv', path: 'train.csv', test: 'test.csv', features: ['precipitation', 'temp_min', 'wind'], target });
  const jobFile = writeJob(
    {
      name: 'predict',
      seed: 3,
      model: { trunk: [{ dense: { units: 16, activation: 'relu' } }], heads: { weather: [{ dense: { units: 5, activation: 'softmax' } }], temp_max: [{ dense: { units: 1 } }] } },
      tasks: {
        weather: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('weather') },
        temp_max: { loss: 'meanSquaredError', metrics: ['mae'], data: data('temp_max') },
      },
      training: { steps: 80, batchSize: 32, optimizer: { name: 'adam', learningRate: 0.01 } },
    },
    dir,
  );

  const out = tempDir('mtl-predict-run-');

  void it("on the raw rows of the held-out file reproduces the run's held-out metrics", async () => {
    const run = await runCli(['run', jobFile, '--workers', '2', '--out', out, '--quiet']);
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { tasks: Record<string, { samples: number; accuracy?: number; mae?: number }> };
    assert.equal(summary.tasks.weather!.samples, 365, 'the test split is the 2015 file');

    const predictions = path.join(out, 'predictions.csv');
    const r = await runCli(['predict', out, path.join(dir, 'test.csv'), '--out', predictions]);
    assert.equal(r.code, 0, r.stderr);
    const accuracy = Number(/weather: accuracy ([\d.]+) on 365 rows/.exec(r.stderr)?.[1]);
    const mae = Number(/temp_max: mse [\d.]+ {2}mae ([\d.]+) on 365 rows/.exec(r.stderr)?.[1]);
    assert.ok(Math.abs(accuracy - summary.tasks.weather!.accuracy!) < 1e-4, `predict: accuracy ${accuracy}, the run: ${summary.tasks.weather!.accuracy}`);
    assert.ok(Math.abs(mae - summary.tasks.temp_max!.mae!) < 1e-3, `predict: mae ${mae}, the run: ${summary.tasks.temp_max!.mae}`);

    const lines = readFileSync(predictions, 'utf8').trim().split('\n');
    assert.equal(lines[0], 'weather,weather_score,temp_max');
    assert.equal(lines.length, 366);
    const labels = new Set(lines.slice(1).map((l) => l.split(',')[0]));
    assert.ok([...labels].every((l) => ['drizzle', 'fog', 'rain', 'snow', 'sun'].includes(l!)), `labels: ${[...labels].join(', ')}`);
    // Raw temperatures in °C come back in °C: the model standardised the inputs itself.
    const temps = lines.slice(1).map((l) => Number(l.split(',')[2]));
    assert.ok(temps.every((t) => t > -15 && t < 45), `temperatures out of range: ${Math.min(...temps)}..${Math.max(...temps)}`);
  });

  void it('refuses a row it cannot read, naming the file, line and column, and a directory without a model (exit 2)', async () => {
    const bad = path.join(dir, 'bad.csv');
    writeFileSync(bad, 'precipitation,temp_min,wind\n0,4.4,2\n0,cold,2\n');
    const r = await runCli(['predict', out, bad]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.csv line 3, column "temp_min": expected a number, got "cold"/);
    const none = await runCli(['predict', tempDir('mtl-predict-none-'), bad]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /holds no model/);
  });
});
