// The FLOP count behind `npm run bench -- compute`, against counts done by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildLayout } from '../../common/parameter-layout.js';
import { sharedBatchFlops, trainingFlops } from '../../bench/flops.js';
import { jobWithModel } from '../helpers/unit-jobs.js';

void describe('trainingFlops and sharedBatchFlops', () => {
  void it('counts dense layers as 3 × 2·n·in·out, less the input gradient of the first', () => {
    const job = jobWithModel({ trunk: [{ dense: { units: 4 } }], heads: { a: [{ dense: { units: 2 } }], b: [{ dense: { units: 3 } }] } });
    const layout = buildLayout(job, [5]);
    // trunk 5→4 (2·10·20 = 400: forward + weight gradient), head a 4→2 (2·10·8 = 160, ×3): 800 + 480.
    assert.equal(trainingFlops(layout, 'a', 10), 1280);
    // head b 4→3 (240, ×3): 800 + 720.
    assert.equal(trainingFlops(layout, 'b', 10), 1520);
    // Sharing the batch saves the trunk's second forward pass (400).
    assert.equal(sharedBatchFlops(layout, ['a', 'b'], 10), 1280 + 1520 - 400);
    assert.equal(sharedBatchFlops(layout, ['a'], 10), 1280);
  });

  void it('counts conv2d as 3 × 2·n·oh·ow·kh·kw·cin·cout and skips pooling and flatten', () => {
    const job = jobWithModel({
      trunk: [{ conv2d: { filters: 2, kernelSize: 3 } }, { maxPooling2d: { poolSize: 2 } }, { flatten: {} }],
      heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] },
    });
    const layout = buildLayout(job, [6, 6, 1]);
    // conv: 6x6x1 → 4x4x2 (valid), 2·1·4·4·3·3·1·2 = 576, reads the input; pool → 2x2x2 →
    // flatten 8; dense 8→1: 2·1·8·1 = 16.
    assert.equal(trainingFlops(layout, 'a', 1), 2 * 576 + 3 * 16);
  });
});
