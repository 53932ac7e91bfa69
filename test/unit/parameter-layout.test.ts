import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobSpecError } from '../../common/errors.js';
import { buildLayersModel, fileSystemModel, saveLayersModel } from '../../common/model-files.js';
import {
  SHARED_GROUP,
  buildLayout,
  headOutputShape,
  initialParameters,
  taskGroup,
  unitGradientSize,
  unitTensorIndices,
  type ParameterLayout,
} from '../../common/parameter-layout.js';
import { jobWithModel, type RawLayer } from '../helpers/unit-jobs.js';

const INPUT = [12, 12, 1];

// A chain through every layer type: valid and same padding, square and rectangular strides.
const CONV_TRUNK: RawLayer[] = [
  { conv2d: { filters: 4, kernelSize: 3, activation: 'relu' } }, // 12 → 10
  { maxPooling2d: { poolSize: 2 } }, // 10 → 5
  { conv2d: { filters: 3, kernelSize: 2, strides: 2, padding: 'same' } }, // 5 → ceil(5/2) = 3
  { conv2d: { filters: 2, kernelSize: [2, 1], strides: [1, 2], useBias: false } }, // 3x3 → 2x2
  { flatten: {} }, // 8
  { dropout: { rate: 0.25 } },
  { dense: { units: 6, activation: 'tanh' } },
];
const CONV_HEADS: Record<string, RawLayer[]> = {
  left: [{ dense: { units: 3, activation: 'softmax' } }],
  right: [{ dense: { units: 5, activation: 'relu', useBias: false } }, { dropout: { rate: 0.5 } }, { dense: { units: 2 } }],
};

function convLayout(): ParameterLayout {
  return buildLayout(jobWithModel({ trunk: CONV_TRUNK, heads: CONV_HEADS }), INPUT);
}

function layoutError(fn: () => unknown): JobSpecError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JobSpecError, `expected a JobSpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a JobSpecError');
}

function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

void describe('buildLayout shapes', () => {
  void it('infers output shapes through conv2d, maxPooling2d, flatten, dropout and dense', () => {
    const layout = convLayout();
    assert.deepEqual(
      layout.trunk.map((l) => [l.name, l.outputShape]),
      [
        ['trunk_0_conv2d', [10, 10, 4]],
        ['trunk_1_maxPooling2d', [5, 5, 4]],
        ['trunk_2_conv2d', [3, 3, 3]],
        ['trunk_3_conv2d', [2, 2, 2]],
        ['trunk_4_flatten', [8]],
        ['trunk_5_dropout', [8]],
        ['trunk_6_dense', [6]],
      ],
    );
    assert.deepEqual(layout.featureShape, [6]);
    assert.deepEqual(layout.trunk[0]?.inputShape, INPUT);
    assert.deepEqual(headOutputShape(layout, 'left'), [3]);
    assert.deepEqual(headOutputShape(layout, 'right'), [2]);
    assert.deepEqual(
      layout.heads.get('right')?.map((l) => l.name),
      ['right_0_dense', 'right_1_dropout', 'right'],
    );
  });

  void it('gives each weight its tfjs name, shape and fans', () => {
    const layout = convLayout();
    assert.deepEqual(
      layout.tensors.map((t) => [t.name, t.shape, t.init]),
      [
        ['trunk_0_conv2d/kernel', [3, 3, 1, 4], 'glorotUniform'],
        ['trunk_0_conv2d/bias', [4], 'zeros'],
        ['trunk_2_conv2d/kernel', [2, 2, 4, 3], 'glorotUniform'],
        ['trunk_2_conv2d/bias', [3], 'zeros'],
        ['trunk_3_conv2d/kernel', [2, 1, 3, 2], 'glorotUniform'],
        ['trunk_6_dense/kernel', [8, 6], 'glorotUniform'],
        ['trunk_6_dense/bias', [6], 'zeros'],
        ['left/kernel', [6, 3], 'glorotUniform'],
        ['left/bias', [3], 'zeros'],
        ['right_0_dense/kernel', [6, 5], 'glorotUniform'],
        ['right/kernel', [5, 2], 'glorotUniform'],
        ['right/bias', [2], 'zeros'],
      ],
    );
    const byName = new Map(layout.tensors.map((t) => [t.name, t]));
    assert.deepEqual([byName.get('trunk_2_conv2d/kernel')?.fanIn, byName.get('trunk_2_conv2d/kernel')?.fanOut], [2 * 2 * 4, 2 * 2 * 3]);
    assert.deepEqual([byName.get('trunk_6_dense/kernel')?.fanIn, byName.get('trunk_6_dense/kernel')?.fanOut], [8, 6]);
  });

  void it('handles a dense-only model on a flat input', () => {
    const layout = buildLayout(jobWithModel({ trunk: [{ dense: { units: 7 } }], heads: { a: [{ dense: { units: 1 } }] } }), [3]);
    assert.deepEqual(
      layout.tensors.map((t) => [t.name, t.shape]),
      [
        ['trunk_0_dense/kernel', [3, 7]],
        ['trunk_0_dense/bias', [7]],
        ['a/kernel', [7, 1]],
        ['a/bias', [1]],
      ],
    );
    assert.equal(layout.totalSize, 3 * 7 + 7 + 7 + 1);
  });

  void it('handles heads reading the input directly when there is no trunk', () => {
    const layout = buildLayout(jobWithModel({ heads: { a: [{ dense: { units: 2 } }], b: [{ dense: { units: 3 } }] } }), [4]);
    assert.equal(layout.shared.size, 0);
    assert.deepEqual(layout.shared.tensors, []);
    assert.equal(layout.headGroups.get('a')?.offset, 0);
    assert.equal(layout.totalSize, 4 * 2 + 2 + 4 * 3 + 3);
  });
});

void describe('buildLayout groups and offsets', () => {
  void it('packs tensors contiguously: shared first, then each head in task order', () => {
    const layout = convLayout();
    let offset = 0;
    for (const t of layout.tensors) {
      assert.equal(t.offset, offset, `${t.name} starts where the previous tensor ended`);
      assert.equal(t.size, t.shape.reduce((a, b) => a * b, 1));
      offset += t.size;
    }
    assert.equal(layout.totalSize, offset);

    assert.deepEqual(layout.tasks, ['left', 'right']);
    assert.equal(layout.shared.group, SHARED_GROUP);
    assert.equal(layout.shared.offset, 0);
    const groups = [layout.shared, ...layout.tasks.map((t) => layout.headGroups.get(t)!)];
    let next = 0;
    for (const g of groups) {
      assert.equal(g.offset, next, `${g.group} follows the previous group`);
      const members = g.tensors.map((i) => layout.tensors[i]!);
      assert.ok(members.every((t) => t.group === g.group), `${g.group} holds only its own tensors`);
      assert.equal(
        members.reduce((n, t) => n + t.size, 0),
        g.size,
      );
      assert.equal(members[0]?.offset ?? g.offset, g.offset);
      next += g.size;
    }
    assert.equal(next, layout.totalSize);
    assert.equal(layout.headGroups.get('left')?.group, taskGroup('left'));
    // Every tensor is in exactly one group.
    const all = groups.flatMap((g) => g.tensors).sort((a, b) => a - b);
    assert.deepEqual(all, layout.tensors.map((_, i) => i));
  });

  void it('gives a unit the shared tensors then its head', () => {
    const layout = convLayout();
    const right = layout.headGroups.get('right')!;
    assert.deepEqual(unitTensorIndices(layout, 'right'), [...layout.shared.tensors, ...right.tensors]);
    assert.equal(unitGradientSize(layout, 'right'), layout.shared.size + right.size);
    assert.throws(() => unitGradientSize(layout, 'nope'), RangeError);
  });
});

void describe('buildLayout shape errors', () => {
  void it('rejects conv2d on a flat input, naming the layer', () => {
    const job = jobWithModel({ trunk: [{ flatten: {} }, { conv2d: { filters: 1, kernelSize: 1 } }], heads: { a: [{ dense: { units: 1 } }] } });
    const err = layoutError(() => buildLayout(job, [4, 4, 1]));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['model.trunk[1].conv2d'],
    );
    assert.match(err.issues[0]?.message ?? '', /rank 3/);
  });

  void it('rejects a kernel larger than its input, naming the layer', () => {
    const job = jobWithModel({ trunk: [{ conv2d: { filters: 1, kernelSize: 5 } }], heads: { a: [{ dense: { units: 1 } }] } });
    const err = layoutError(() => buildLayout(job, [3, 3, 1]));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['model.trunk[0].conv2d'],
    );
    assert.match(err.issues[0]?.message ?? '', /5x5/);
  });

  void it('accepts the same kernel with same padding', () => {
    const job = jobWithModel({ trunk: [{ conv2d: { filters: 1, kernelSize: 5, padding: 'same' } }], heads: { a: [{ flatten: {} }, { dense: { units: 1 } }] } });
    assert.deepEqual(buildLayout(job, [3, 3, 1]).featureShape, [3, 3, 1]);
  });

  void it('names errors inside heads and for pooling too', () => {
    const head = jobWithModel({ trunk: [{ flatten: {} }], heads: { a: [{ dense: { units: 1 } }], b: [{ maxPooling2d: {} }, { dense: { units: 1 } }] } });
    assert.deepEqual(
      layoutError(() => buildLayout(head, [2, 2, 1])).issues.map((i) => i.path),
      ['model.heads.b[0].maxPooling2d'],
    );
    const pool = jobWithModel({ trunk: [{ maxPooling2d: { poolSize: 4 } }], heads: { a: [{ flatten: {} }, { dense: { units: 1 } }] } });
    assert.deepEqual(
      layoutError(() => buildLayout(pool, [3, 3, 1])).issues.map((i) => i.path),
      ['model.trunk[0].maxPooling2d'],
    );
  });
});

void describe('initialParameters', () => {
  const layout = convLayout();

  void it('is a pure function of the seed', () => {
    const a = initialParameters(layout, 7);
    const b = initialParameters(layout, 7);
    assert.equal(a.length, layout.totalSize);
    assert.ok(bytesOf(a).equals(bytesOf(b)));
    const c = initialParameters(layout, 8);
    for (const t of layout.tensors.filter((x) => x.init === 'glorotUniform')) {
      const x = a.subarray(t.offset, t.offset + t.size);
      const y = c.subarray(t.offset, t.offset + t.size);
      assert.ok(!bytesOf(x).equals(bytesOf(y)), `${t.name} changes with the seed`);
    }
  });

  void it('zeroes biases and keeps kernels inside the Glorot bound, using its range', () => {
    const params = initialParameters(layout, 3);
    for (const t of layout.tensors) {
      const view = params.subarray(t.offset, t.offset + t.size);
      if (t.init === 'zeros') {
        assert.ok(view.every((v) => Object.is(v, 0)), `${t.name} is zero`);
        continue;
      }
      const limit = Math.sqrt(6 / (t.fanIn + t.fanOut));
      const maxAbs = view.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(maxAbs <= Math.fround(limit), `${t.name}: max |w| ${maxAbs} within ${limit}`);
      if (t.size >= 30) assert.ok(maxAbs > 0.8 * limit, `${t.name}: max |w| ${maxAbs} spans the range up to ${limit}`);
      assert.ok(
        view.some((v) => v < 0) && view.some((v) => v > 0),
        `${t.name} has both signs`,
      );
    }
  });

  void it('does not change the trunk (or an existing head) when a task is added', () => {
    const one = buildLayout(jobWithModel({ trunk: CONV_TRUNK, heads: { left: CONV_HEADS.left! } }), INPUT);
    const two = convLayout();
    const p1 = initialParameters(one, 11);
    const p2 = initialParameters(two, 11);
    assert.equal(one.shared.size, two.shared.size);
    assert.ok(bytesOf(p1.subarray(0, one.shared.size)).equals(bytesOf(p2.subarray(0, two.shared.size))));
    const h1 = one.headGroups.get('left')!;
    const h2 = two.headGroups.get('left')!;
    assert.ok(bytesOf(p1.subarray(h1.offset, h1.offset + h1.size)).equals(bytesOf(p2.subarray(h2.offset, h2.offset + h2.size))));
  });
});

void describe('layout vs tfjs-layers', () => {
  let dir = '';
  before(async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-unit-layout-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void it('builds a model with the same weights, shapes and one output per task', () => {
    const layout = convLayout();
    const model = buildLayersModel(layout, 'unit');
    try {
      assert.deepEqual(model.outputNames, ['left', 'right']);
      const tfWeights = new Map(model.weights.map((w) => [w.originalName, w.shape]));
      assert.deepEqual([...tfWeights.keys()].sort(), layout.tensors.map((t) => t.name).sort());
      for (const t of layout.tensors) assert.deepEqual(tfWeights.get(t.name), t.shape, `${t.name} shape`);
      for (const placed of [...layout.trunk, ...layout.tasks.flatMap((t) => layout.heads.get(t)!)]) {
        assert.deepEqual(model.getLayer(placed.name).outputShape, [null, ...placed.outputShape], `${placed.name} output shape`);
      }
    } finally {
      model.dispose();
    }
  });

  void it('sets weights from the flat parameters at their offsets', () => {
    const layout = convLayout();
    const params = initialParameters(layout, 5);
    const model = buildLayersModel(layout, 'unit', params);
    try {
      for (const placed of [...layout.trunk, ...layout.tasks.flatMap((t) => layout.heads.get(t)!)]) {
        const values = model.getLayer(placed.name).getWeights();
        assert.equal(values.length, placed.tensors.length, `${placed.name} weight count`);
        placed.tensors.forEach((index, k) => {
          const spec = layout.tensors[index]!;
          const got = values[k]!.dataSync() as Float32Array;
          assert.ok(bytesOf(got).equals(bytesOf(params.subarray(spec.offset, spec.offset + spec.size))), `${spec.name} values`);
        });
      }
    } finally {
      model.dispose();
    }
  });

  // The model is only built after training (coordinator.ts), so whatever buildLayout accepts
  // must also build as a tfjs-layers model; anything else must be rejected up front.
  const buildable: Array<[what: string, task: string, trunk: RawLayer[], input: number[]]> = [
    ['a task named "input" (the input layer\'s name)', 'input', [{ dense: { units: 2 } }], [3]],
    ['a task named after a weightless trunk layer', 'trunk_1_dropout', [{ dense: { units: 2 } }, { dropout: { rate: 0.5 } }], [3]],
    ['flatten on an input that is already flat', 'a', [{ flatten: {} }, { dense: { units: 2 } }], [3]],
  ];
  for (const [what, task, trunk, input] of buildable) {
    void it(`${what}: rejected by buildLayout, or the tfjs model builds`, () => {
      const job = jobWithModel({ trunk, heads: { [task]: [{ dense: { units: 1 } }] } });
      let layout: ParameterLayout;
      try {
        layout = buildLayout(job, input);
      } catch (err) {
        assert.ok(err instanceof JobSpecError, `rejected with a JobSpecError, got ${String(err)}`);
        return;
      }
      let model: tf.LayersModel | undefined;
      assert.doesNotThrow(() => {
        model = buildLayersModel(layout, 'unit');
      }, 'buildLayout accepted this model, so tfjs-layers must build it');
      model?.dispose();
    });
  }

  void it('saves and loads back with bitwise-equal predictions', async () => {
    const layout = convLayout();
    const params = initialParameters(layout, 9);
    const model = buildLayersModel(layout, 'unit', params);
    const input = tf.tensor4d(
      Float32Array.from({ length: 2 * 12 * 12 }, (_, i) => Math.sin(i * 0.37)),
      [2, 12, 12, 1],
    );
    try {
      const modelDir = path.join(dir, 'model');
      await saveLayersModel(model, modelDir, { tasks: ['left', 'right'] });
      const loaded = await tf.loadLayersModel(fileSystemModel(modelDir));
      try {
        assert.deepEqual(loaded.outputNames, ['left', 'right']);
        assert.deepEqual(loaded.getUserDefinedMetadata(), { tasks: ['left', 'right'] });
        const before = model.predict(input) as tf.Tensor[];
        const afterLoad = loaded.predict(input) as tf.Tensor[];
        assert.equal(afterLoad.length, 2);
        before.forEach((t, i) => {
          const a = t.dataSync() as Float32Array;
          const b = afterLoad[i]!.dataSync() as Float32Array;
          assert.deepEqual(afterLoad[i]!.shape, t.shape);
          assert.ok(bytesOf(a).equals(bytesOf(b)), `output ${i} is bitwise equal`);
        });
        tf.dispose([...before, ...afterLoad]);
      } finally {
        loaded.dispose();
      }
    } finally {
      input.dispose();
      model.dispose();
    }
  });
});
