// Input adapters end to end: two tasks with different feature spaces (columns of one CSV)
// train one trunk with real worker processes; 1 and 2 workers agree bitwise, and the exported
// model, with one input per task, loads with tf.loadLayersModel.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { readFileSync } from 'node:fs';
import { fileSystemModel } from '../../common/model-files.js';
import { runCli } from '../helpers/cli-process.js';
import { weightsOf } from '../helpers/chaos.js';
import { EXAMPLES } from '../helpers/paths.js';
import { writeJob } from '../helpers/jobs.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('input adapters end to end', () => {
  void it('trains examples/seattle-weather-adapters.yaml (shortened) with 1 and 2 workers to bitwise the same weights; the model has one input per task', async () => {
    const job = YAML.parse(readFileSync(path.join(EXAMPLES, 'seattle-weather-adapters.yaml'), 'utf8')) as {
      tasks: Record<string, { data: { path: string } }>;
      training: { steps: number; evalEvery?: number };
    };
    for (const t of Object.values(job.tasks)) t.data.path = path.resolve(EXAMPLES, t.data.path);
    job.training.steps = 120;
    delete job.training.evalEvery;
    const jobFile = writeJob(job);
    const outs = [tempDir('mtl-adapters-1-'), tempDir('mtl-adapters-2-')];
    for (const [i, out] of outs.entries()) {
      const r = await runCli(['run', jobFile, '--workers', String(i + 1), '--out', out, '--quiet']);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.ok(weightsOf(outs[0]!).equals(weightsOf(outs[1]!)), '1 and 2 workers end with different weights');
    const summary = JSON.parse(readFileSync(path.join(outs[1]!, 'summary.json'), 'utf8')) as { tasks: Record<string, { accuracy?: number; mae?: number }> };
    assert.ok(summary.tasks.weather!.accuracy! > 0.5, `weather accuracy ${summary.tasks.weather!.accuracy}`);

    tf.enableProdMode();
    await tf.setBackend('cpu');
    const model = await tf.loadLayersModel(fileSystemModel(path.join(outs[1]!, 'model')));
    assert.deepEqual(model.inputNames, ['input_weather', 'input_temp_max']);
    assert.deepEqual(model.inputs.map((x) => x.shape), [[null, 2], [null, 3]]);
    model.dispose();
  });

  void it('trains a two-input model (named inputs over the CSV columns) and exports one input per name', async () => {
    const job = YAML.parse(readFileSync(path.join(EXAMPLES, 'seattle-weather.yaml'), 'utf8')) as {
      model: Record<string, unknown>;
      tasks: Record<string, { data: { path: string } }>;
      training: { steps: number; evalEvery?: number };
    };
    for (const t of Object.values(job.tasks)) t.data.path = path.resolve(EXAMPLES, t.data.path);
    // features: [precipitation, temp_min, wind] → rain: the first column; temp_wind: the other two.
    job.model.inputs = { rain: { features: 1, layers: [{ dense: { units: 4, activation: 'relu' } }] }, temp_wind: { features: 2, layers: [{ dense: { units: 8, activation: 'relu' } }] } };
    job.training.steps = 100;
    delete job.training.evalEvery;
    const out = tempDir('mtl-named-');
    const r = await runCli(['run', writeJob(job), '--workers', '2', '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const model = await tf.loadLayersModel(fileSystemModel(path.join(out, 'model')));
    assert.deepEqual(model.inputNames, ['rain', 'temp_wind']);
    assert.deepEqual(model.inputs.map((x) => x.shape), [[null, 1], [null, 2]]);
    model.dispose();
  });
});
