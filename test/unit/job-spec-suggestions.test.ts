// Unknown keys in a job file: a misspelt key gets the nearest known one, an unsupported layer
// type the list of supported ones. Real YAML through the real validator.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { parseJobText } from '../../common/job-spec.js';
import { LAYER_TYPES } from '../../common/job-schema.js';
import { editDistance, nearestName } from '../../common/nearest-name.js';
import { aggregatorNames, createAggregator } from '../../coordinator/aggregation/registry.js';

function issues(yaml: string): Map<string, string> {
  try {
    parseJobText(yaml, 'job.yaml', { aggregatorNames });
  } catch (err) {
    assert.ok(err instanceof JobSpecError, `expected a JobSpecError, got ${String(err)}`);
    return new Map(err.issues.map((i) => [i.path, i.message]));
  }
  assert.fail('the job was accepted');
}

const job = (trunk: string, extra = '') => `
name: typos
model:
  trunk:
${trunk}
  heads:
    a: [ { dense: { units: 1 } } ]
tasks:
  a: { loss: meanSquaredError, data: { dataset: synthetic, target: 0 } }
training:
  steps: 10
  batchSize: 4
  optimizer: { name: adam, learningRate: 0.01 }
${extra}`;

void describe('nearestName', () => {
  void it('counts insertions, deletions, substitutions and adjacent swaps, ignoring case', () => {
    assert.equal(editDistance('dense', 'dense'), 0);
    assert.equal(editDistance('dense2', 'dense'), 1);
    assert.equal(editDistance('desne', 'dense'), 1);
    assert.equal(editDistance('Conv2D', 'conv2d'), 0);
    assert.equal(editDistance('', 'abc'), 3);
  });

  void it('suggests only plausible typos', () => {
    assert.equal(nearestName('dense2', LAYER_TYPES), 'dense');
    assert.equal(nearestName('maxpooling2d', LAYER_TYPES), 'maxPooling2d');
    assert.equal(nearestName('attention', LAYER_TYPES), undefined);
    assert.equal(nearestName('transformer', LAYER_TYPES), undefined);
    assert.equal(nearestName('lstmm', LAYER_TYPES), 'lstm');
    assert.equal(nearestName('globalAveragePooling2D', LAYER_TYPES), 'globalAveragePooling2d');
    assert.equal(nearestName('pcgrd', aggregatorNames), 'pcgrad');
  });
});

void describe('unknown keys in a job file', () => {
  void it('a layer type that does not exist lists the supported ones, without a second "got none" issue', () => {
    const found = issues(job('    - attention: { units: 8 }\n    - dense: { units: 4 }'));
    assert.equal(found.get('model.trunk[0].attention'), `layer \`attention\` is not supported (supported: ${LAYER_TYPES.join(', ')})`);
    assert.equal(found.size, 1, [...found].join('\n'));
  });

  void it('a misspelt layer type names the layer it probably is', () => {
    const found = issues(job('    - dense2: { units: 8 }\n    - Conv2D: { filters: 2, kernelSize: 3 }'));
    assert.equal(found.get('model.trunk[0].dense2'), '`dense2` is not a layer; did you mean `dense`?');
    assert.equal(found.get('model.trunk[1].Conv2D'), '`Conv2D` is not a layer; did you mean `conv2d`?');
    assert.equal(found.size, 2, [...found].join('\n'));
  });

  void it('a layer without any type still says so', () => {
    const found = issues(job('    - {}'));
    assert.match(found.get('model.trunk[0]') ?? '', /expected exactly one layer type .* got none/);
  });

  void it('misspelt keys elsewhere get the nearest key of their own mapping', () => {
    const found = issues(
      job(
        '    - conv2d: { filters: 2, kernelSize: 3, stride: 2 }\n    - flatten: {}\n    - dense: { units: 4, activaton: relu }',
        'chekpoint: { every: 5 }\nfault: { heartbeatMS: 100 }\n',
      ),
    );
    assert.equal(found.get('model.trunk[0].conv2d.stride'), 'unknown key; did you mean `strides`?');
    assert.equal(found.get('model.trunk[2].dense.activaton'), 'unknown key; did you mean `activation`?');
    assert.equal(found.get('chekpoint'), 'unknown key; did you mean `checkpoint`?');
    assert.equal(found.get('fault.heartbeatMS'), 'unknown key; did you mean `heartbeatMs`?');
  });

  void it('inside a discriminated union, the keys of the chosen variant count', () => {
    const found = issues(job('    - dense: { units: 4 }').replace('target: 0 }', 'target: 0, sampels: 100 }').replace('learningRate: 0.01 }', 'learningRate: 0.01, beta: 0.9 }'));
    assert.equal(found.get('tasks.a.data.sampels'), 'unknown key; did you mean `samples`?');
    // adam's own options, not those of another optimizer.
    assert.equal(found.get('training.optimizer.beta'), 'unknown key; did you mean `beta1`?');
  });

  void it('a key with no near name lists the keys allowed there', () => {
    const found = issues(job('    - dense: { units: 4 }', 'colour: blue\n'));
    assert.equal(found.get('colour'), 'unknown key (expected one of: name, seed, model, tasks, training, checkpoint, fault, transport, compute, diagnostics)');
  });

  void it('a misspelt aggregator, and a misspelt aggregator option', () => {
    const found = issues(job('    - dense: { units: 4 }').replace('learningRate: 0.01 }', 'learningRate: 0.01 }\n  aggregator: { name: pcgrd }'));
    assert.match(found.get('training.aggregator.name') ?? '', /^unknown aggregator "pcgrd"; did you mean `pcgrad`\? \(available: /);
    try {
      createAggregator('cagrad', { cc: 0.5 });
      assert.fail('the option was accepted');
    } catch (err) {
      assert.ok(err instanceof JobSpecError);
      assert.deepEqual(err.issues, [{ path: 'training.aggregator.cc', message: 'unknown key; did you mean `c`?' }]);
    }
  });
});
