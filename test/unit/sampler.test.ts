import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EpochSampler, partRange, type BatchRequest } from '../../common/datasets/sampler.js';

function request(overrides: Partial<BatchRequest> = {}): BatchRequest {
  return { seed: 1, source: 'src', size: 100, batchSize: 16, shards: 1, step: 0, shard: 0, ...overrides };
}

void describe('partRange', () => {
  void it('cuts 0..total into contiguous parts that cover every item exactly once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 40 }), (total, parts) => {
        let next = 0;
        const sizes: number[] = [];
        for (let k = 0; k < parts; k++) {
          const [start, end] = partRange(total, parts, k);
          assert.equal(start, next, `part ${k} starts where part ${k - 1} ended`);
          assert.ok(end >= start);
          sizes.push(end - start);
          next = end;
        }
        assert.equal(next, total);
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `near-equal parts: ${sizes.join(',')}`);
      }),
    );
  });

  void it('rejects parts that do not exist', () => {
    assert.throws(() => partRange(10, 0, 0), RangeError);
    assert.throws(() => partRange(10, 3, 3), RangeError);
    assert.throws(() => partRange(10, 3, -1), RangeError);
    assert.throws(() => partRange(10, 2.5, 0), RangeError);
  });
});

void describe('EpochSampler', () => {
  void it('is a pure function of the request, whatever the cache holds', () => {
    const steps = [0, 1, 7, 3, 12, 0, 40, 1];
    const fresh = steps.map((step) => new EpochSampler().indices(request({ step })));
    // One long-lived sampler asked in a scrambled order, with a cache too small to hold them all.
    const shared = new EpochSampler(1);
    const reused = steps.map((step) => shared.indices(request({ step })));
    assert.deepEqual(reused, fresh);
    assert.deepEqual(new EpochSampler().indices(request({ step: 7 })), fresh[2]);
  });

  void it('depends on the seed, the source and the step', () => {
    const s = new EpochSampler();
    const base = s.indices(request());
    assert.notDeepEqual(s.indices(request({ seed: 2 })), base);
    assert.notDeepEqual(s.indices(request({ source: 'other' })), base);
    assert.notDeepEqual(s.indices(request({ step: 1 })), base);
  });

  void it('splits a step into shards whose concatenation is the 1-shard batch', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 64 }),
        (size, batchSize, step, wantShards) => {
          const shards = Math.min(wantShards, batchSize);
          const s = new EpochSampler();
          const whole = s.indices(request({ size, batchSize, step }));
          const parts = Array.from({ length: shards }, (_, shard) => Array.from(s.indices(request({ size, batchSize, step, shards, shard }))));
          assert.equal(whole.length, batchSize);
          assert.deepEqual(parts.flat(), Array.from(whole));
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('visits every example exactly once per epoch', () => {
    for (const [size, batchSize] of [[96, 16], [100, 16], [7, 3], [5, 8]] as const) {
      const s = new EpochSampler();
      const stream: number[] = [];
      for (let step = 0; stream.length < 3 * size; step++) stream.push(...s.indices(request({ size, batchSize, step })));
      for (let epoch = 0; epoch < 3; epoch++) {
        const seen = stream.slice(epoch * size, (epoch + 1) * size).sort((a, b) => a - b);
        assert.deepEqual(seen, Array.from({ length: size }, (_, i) => i), `size ${size}, batch ${batchSize}, epoch ${epoch}`);
      }
      // Epochs are reshuffled, not replayed.
      assert.notDeepEqual(stream.slice(0, size), stream.slice(size, 2 * size));
    }
  });

  void it('refuses an empty source', () => {
    assert.throws(() => new EpochSampler().indices(request({ size: 0 })), RangeError);
  });
});
