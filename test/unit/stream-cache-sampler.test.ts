// The two pieces that bound a streamed dataset's memory and keep its batches local: the chunk
// cache (its byte bound, eviction, identical bytes when a chunk is read again) and the block
// sampler (a pure function, a permutation of the train positions every epoch, batches that
// touch few blocks, and shard splits that do not change a step's batch).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BlockSampler } from '../../common/datasets/block-sampler.js';
import { ChunkCache } from '../../common/datasets/stream/chunk-cache.js';
import { loadStreamedTable } from '../../common/datasets/stream/stream-table.js';
import { SEATTLE_CSV, SEATTLE_FEATURES } from '../helpers/table-fixtures.js';

void describe('chunk cache', () => {
  void it('keeps at most its bound, evicting the least recently used chunk', () => {
    const cache = new ChunkCache<{ bytes: number; id: number }>(1000);
    let loads = 0;
    const load = (id: number) => () => (loads++, { bytes: 300, id });
    for (const id of [0, 1, 2]) cache.get(id, load(id));
    cache.get(0, load(0)); // 0 is now the most recent: 1 goes first
    cache.get(3, load(3));
    assert.equal(cache.size, 3);
    assert.ok(cache.stats.bytes <= 1000);
    assert.equal(cache.stats.evictions, 1);
    assert.equal(cache.get(0, load(0)).id, 0);
    assert.equal(loads, 4, 'chunk 0 was still held');
    cache.get(1, load(1));
    assert.equal(loads, 5, 'chunk 1 had been evicted and was decoded again');
    assert.ok(cache.stats.peakBytes <= 1000);
  });

  void it('holds one chunk larger than the bound, alone', () => {
    const cache = new ChunkCache<{ bytes: number }>(100);
    cache.get(0, () => ({ bytes: 60 }));
    cache.get(1, () => ({ bytes: 500 }));
    assert.equal(cache.size, 1);
    assert.equal(cache.stats.bytes, 500);
  });

  void it('serves identical values when evicted chunks are read again', () => {
    const spec = { dataset: 'csv' as const, path: SEATTLE_CSV, features: SEATTLE_FEATURES, target: 'weather', normalize: true, seed: 3 };
    const req = [{ column: 'weather', kind: 'classification' as const }];
    const tiny = loadStreamedTable({ ...spec, stream: { chunk: 2048, cache: 4096 } }, '/', req);
    const roomy = loadStreamedTable({ ...spec, stream: { chunk: 2048 } }, '/', req);
    const all = Array.from({ length: tiny.train.size }, (_, i) => i);
    const read = (ds: typeof tiny) => {
      const x = new Float32Array(all.length * 3);
      for (let i = 0; i < all.length; i += 50) ds.train.inputs(all.slice(i, i + 50), x.subarray(i * 3, Math.min(all.length, i + 50) * 3));
      return x;
    };
    const first = read(tiny);
    const again = read(tiny);
    assert.ok(tiny.cacheStats.evictions > 0, 'the tiny cache evicted');
    assert.ok(tiny.cacheStats.bytes <= 4096 || tiny.cacheStats.bytes < 8192);
    assert.deepEqual(again, first);
    assert.deepEqual(read(roomy), first);
    assert.equal(roomy.cacheStats.evictions, 0);
  });
});

void describe('block sampler', () => {
  const shuffle = { blockRows: 16, window: 3 };
  const base = { seed: 7, source: 'table-stream:abc', size: 1000, batchSize: 40, shards: 1, shard: 0 };

  void it('is a pure function of (seed, source, size, step, shard)', () => {
    const a = new BlockSampler();
    const b = new BlockSampler(1);
    for (const step of [0, 5, 60, 3]) assert.deepEqual(a.indices({ ...base, step }, shuffle), b.indices({ ...base, step }, shuffle));
    assert.notDeepEqual(a.indices({ ...base, step: 0 }, shuffle), a.indices({ ...base, seed: 8, step: 0 }, shuffle));
    assert.notDeepEqual(a.indices({ ...base, step: 0 }, shuffle), a.indices({ ...base, source: 'other', step: 0 }, shuffle));
  });

  void it('visits every train position once per epoch, in another order each epoch', () => {
    const sampler = new BlockSampler();
    const epochs = [0, 1].map((e) => sampler.indices({ ...base, batchSize: base.size, step: e }, shuffle));
    for (const epoch of epochs) assert.deepEqual([...epoch].sort((x, y) => x - y), Array.from({ length: base.size }, (_, i) => i));
    assert.notDeepEqual(epochs[0], epochs[1]);
  });

  void it('draws a batch from few blocks', () => {
    const sampler = new BlockSampler();
    for (let step = 0; step < 50; step++) {
      const blocks = new Set([...sampler.indices({ ...base, step }, shuffle)].map((i) => Math.floor(i / shuffle.blockRows)));
      // A batch lies in at most two consecutive windows of `window` blocks each.
      assert.ok(blocks.size <= 2 * shuffle.window, `step ${step}: ${blocks.size} blocks`);
    }
  });

  void it('gives the same batch whatever the shard count', () => {
    const sampler = new BlockSampler();
    for (const step of [0, 7, 30]) {
      const whole = sampler.indices({ ...base, step }, shuffle);
      const parts = [0, 1, 2].flatMap((shard) => [...sampler.indices({ ...base, step, shards: 3, shard }, shuffle)]);
      assert.deepEqual(parts, [...whole]);
    }
  });
});
