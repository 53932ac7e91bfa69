// The FLOP count behind `npm run bench -- compute`, against counts done by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildLayout } from '../../common/parameter-layout.js';
import { trainingFlops } from '../../bench/flops.js';
import { jobWithModel } from '../helpers/unit-jobs.js';

void describe('trainingFlops', () => {
  void it('counts dense layers as 3 × 2·n·in·out', () => {
    const job = jobWithModel({ trunk: [{ dense: { units: 4 } }], heads: { a: [{ dense: { units: 2 } }], b: [{ dense: { units: 3 } }] } });
    const layout = buildLayout(job, [5]);
    // trunk 5→4, head a 4→2; n = 10: 3 · 2 · 10 · (20 + 8) = 1680.
    assert.equal(trainingFlops(layout, 'a', 10), 1680);
    // head b 4→3: 3 · 2 · 10 · (20 + 12) = 1920.
    assert.equal(trainingFlops(layout, 'b', 10), 1920);
  });

  void it('counts conv2d as 3 × 2·n·oh·ow·kh·kw·cin·cout and skips pooling and flatten', () => {
    const job = jobWithModel({
      trunk: [{ conv2d: { filters: 2, kernelSize: 3 } }, { maxPooling2d: { poolSize: 2 } }, { flatten: {} }],
      heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] },
    });
    const layout = buildLayout(job, [6, 6, 1]);
    // conv: 6x6x1 → 4x4x2 (valid), 2·1·4·4·3·3·1·2 = 576; pool → 2x2x2 → flatten 8; dense 8→1: 2·1·8·1 = 16.
    assert.equal(trainingFlops(layout, 'a', 1), 3 * (576 + 16));
  });
});
