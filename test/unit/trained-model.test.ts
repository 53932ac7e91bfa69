// loadModel's predictor of raw rows (common/trained-model.ts): the examples it makes from raw
// rows are bitwise the ones the run's data gave the model, categories map to their vocabulary
// ids (unknown → 0), class indices come back as labels, and bad rows are errors naming row and
// column. The whole product path (mtl run, then mtl predict) is test/e2e/predict.test.ts.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadTable } from '../../common/datasets/tabular.js';
import { UNKNOWN_ID, Vocabulary } from '../../common/datasets/vocabulary.js';
import type { CsvSpec } from '../../common/job-schema.js';
import { TrainedModel, type ModelMetadata } from '../../common/trained-model.js';
import { tempDir } from '../helpers/temp-dirs.js';

function model(inputs: Array<{ name: string; size: number; dtype?: 'int32' }>, outputs: number[]): tf.LayersModel {
  const xs = inputs.map((i) => tf.input({ shape: [i.size], name: i.name, dtype: i.dtype ?? 'float32' }));
  const cast = xs.map((x, k) => (inputs[k]!.dtype ? (tf.layers.flatten().apply(tf.layers.embedding({ inputDim: 4, outputDim: 2 }).apply(x)) as tf.SymbolicTensor) : x));
  const h = cast.length > 1 ? (tf.layers.concatenate().apply(cast) as tf.SymbolicTensor) : cast[0]!;
  const outs = outputs.map((units, k) => tf.layers.dense({ units, activation: units > 1 ? 'softmax' : 'linear', name: `out${k}` }).apply(h) as tf.SymbolicTensor);
  return tf.model({ inputs: xs, outputs: outs });
}

void describe('a trained model predicts from raw rows', () => {
  void it('makes bitwise the examples the CSV dataset made (standardised with the train statistics)', () => {
    const dir = tempDir('mtl-trained-');
    const file = path.join(dir, 'd.csv');
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i * 1.37 - 9, x: Math.sin(i) * 3.1, c: i % 7 === 0 ? 0 : i % 3, label: i % 2 === 0 ? 'even' : 'odd' }));
    writeFileSync(file, ['id,x,c,label', ...rows.map((r) => `${r.id},${r.x},${r.c},${r.label}`)].join('\n'));
    const spec = { dataset: 'csv', path: 'd.csv', features: ['id', 'x', 'c'], target: 'label', testFraction: 0.25, normalize: true, seed: 3 } as CsvSpec;
    const dataset = loadTable(spec, dir, [{ column: 'label', kind: 'classification' }]);
    const stats = dataset.normalization!;
    const metadata: ModelMetadata = {
      tasks: { parity: { loss: 'sparseCategoricalCrossentropy', target: 'label', classes: ['even', 'odd'], outputIndex: 0, inputs: ['x'] } },
      preprocessing: [{ tasks: ['parity'], columns: spec.features.map((column, f) => ({ column, kind: 'numeric' as const, mean: stats.mean[f]!, std: stats.std[f]! })) }],
    };
    const trained = new TrainedModel(model([{ name: 'x', size: 3 }], [2]), metadata);
    const raw = rows.map((r) => ({ id: String(r.id), x: String(r.x), c: String(r.c) }));
    const examples = trained.examples('parity', raw);
    const byRow = new Set(Array.from({ length: rows.length }, (_, r) => Array.from(examples.subarray(r * 3, r * 3 + 3)).join(',')));
    for (const split of [dataset.train, dataset.test]) {
      const out = new Float32Array(split.size * 3);
      split.inputs(Array.from({ length: split.size }, (_, i) => i), out);
      for (let i = 0; i < split.size; i++) assert.ok(byRow.has(Array.from(out.subarray(i * 3, i * 3 + 3)).join(',')), `example ${i} is not one of the raw rows' examples`);
    }
    const p = trained.predict(raw).get('parity')!;
    assert.equal(p.labels!.length, rows.length);
    assert.ok(p.labels!.every((l) => l === 'even' || l === 'odd'));
    assert.throws(() => trained.examples('parity', [{ id: '1', x: 'n/a', c: '1' }], (r) => `d.csv line ${r + 2}`), /d\.csv line 2, column "x": expected a number, got "n\/a"/);
    assert.throws(() => trained.examples('parity', [{ id: '1', c: '1' }]), /row 1, column "x": expected a number, got no value/);
    trained.dispose();
  });

  void it('maps categories to vocabulary ids (unknown → 0) and feeds int32 inputs; regression values and binary labels', () => {
    const vocabulary = ['a', 'b', 'c'];
    const metadata: ModelMetadata = {
      tasks: {
        value: { loss: 'meanSquaredError', target: 'y', classes: null, outputIndex: 1, inputs: ['num', 'cat'] },
        yes: { loss: 'binaryCrossentropy', target: 'z', classes: ['no', 'yes'], outputIndex: 0, inputs: ['num', 'cat'] },
      },
      preprocessing: [{ tasks: ['value', 'yes'], columns: [{ column: 'n', kind: 'numeric', mean: 1, std: 0 }, { column: 'k', kind: 'categorical', vocabulary }] }],
    };
    const trained = new TrainedModel(model([{ name: 'num', size: 1 }, { name: 'cat', size: 1, dtype: 'int32' }], [1, 1]), metadata);
    const examples = trained.examples('value', [{ n: 3, k: 'b' }, { n: '1.5', k: 'zzz' }, { n: -1, k: 'c' }]);
    // std 0: only centred, as the datasets do; 'zzz' is unknown.
    assert.deepEqual(Array.from(examples), [2, 2, 0.5, UNKNOWN_ID, -2, 3]);
    assert.equal(new Vocabulary(vocabulary).id('c'), 3);
    const predictions = trained.predict([{ n: 3, k: 'b' }, { n: 0, k: 'a' }]);
    assert.equal(predictions.get('value')!.values.length, 2);
    assert.ok(predictions.get('value')!.values.every(Number.isFinite));
    assert.ok(predictions.get('yes')!.labels!.every((l) => l === 'no' || l === 'yes'));
    assert.throws(() => trained.examples('value', [{ n: 1, k: '' }]), /column "k": missing value/);
    assert.throws(() => trained.predict([{ n: 1, k: 'a' }], { only: ['nope'] }), /no task nope/);
    trained.dispose();
  });
});
