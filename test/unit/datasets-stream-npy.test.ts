// Streamed NumPy inputs (stream: in an npy spec): chunks of examples read by byte offset give the
// in-memory split, values and classes; a bad value in the middle and a truncated file are named;
// and the coordinator's plans, through their JSON (Welcome.data_plan_json), let a worker bind the
// same data without a scan, or refuse files that differ.
import assert from 'node:assert/strict';
import { truncateSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bindTasks, dataPlansJson, parseDataPlans, type TaskDataSpec } from '../../common/datasets/index.js';
import { loadNpy } from '../../common/datasets/npy.js';
import { loadStreamedNpy } from '../../common/datasets/stream/stream-arrays.js';
import type { StreamedDataset } from '../../common/datasets/stream/stream-table.js';
import type { Split } from '../../common/datasets/types.js';
import type { NpySpec } from '../../common/job-schema.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** A C-order .npy file (format 1.0, header padded to 64 bytes as numpy does). */
function writeNpy(file: string, descr: string, shape: number[], data: ArrayBufferView): void {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);
  writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function all(split: Split, width: number, target: string): string[] {
  const idx = Array.from({ length: split.size }, (_, i) => i);
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(idx, x);
  split.targets(target, idx, y);
  return idx.map((i) => [...x.subarray(i * width, (i + 1) * width), y[i]].join(',')).sort();
}

const dir = tempDir('mtl-stream-npy-');
const N = 1000;
const W = 6;
const x = Float64Array.from({ length: N * W }, (_, i) => Math.sin(i) * 10);
writeNpy(path.join(dir, 'x.npy'), '<f8', [N, W], x);
writeNpy(path.join(dir, 'y.npy'), '<i8', [N], BigInt64Array.from({ length: N }, (_, i) => BigInt(i % 3)));
const spec = (stream: NpySpec['stream'] = { chunk: 480, cache: 2000 }): NpySpec => ({ dataset: 'npy', inputs: 'x.npy', target: 'y.npy', seed: 4, testFraction: 0.3, stream });
const requests = [{ name: 'y.npy', kind: 'classification' as const }];

void describe('streamed npy', () => {
  void it('reads the in-memory split, values and classes in chunks, evicting', () => {
    const memory = loadNpy({ ...spec(), stream: undefined }, dir, requests);
    const streamed = loadStreamedNpy(spec(), dir, requests);
    assert.equal(streamed.plan.rowsPerChunk, 10);
    assert.deepEqual(streamed.targets, memory.targets);
    assert.equal(streamed.train.size, memory.train.size);
    assert.deepEqual(all(streamed.train, W, 'y.npy'), all(memory.train, W, 'y.npy'));
    assert.deepEqual(all(streamed.test, W, 'y.npy'), all(memory.test, W, 'y.npy'));
    assert.ok(streamed.cacheStats.evictions > 0);
    assert.ok(streamed.cacheStats.bytes <= 2000);
  });

  void it('names the example holding a non-finite value, as in memory, and a truncated file', () => {
    const bad = Float32Array.from({ length: N * 2 }, (_, i) => (i === 1201 ? Number.NaN : i));
    writeNpy(path.join(dir, 'bad.npy'), '<f4', [N, 2], bad);
    const message = `${path.join(dir, 'bad.npy')}: example 600 holds NaN (value 1 of the example); inputs must be finite`;
    assert.throws(() => loadNpy({ ...spec(), inputs: 'bad.npy', stream: undefined }, dir, requests), (err: Error) => err.message === message);
    assert.throws(() => loadStreamedNpy({ ...spec(), inputs: 'bad.npy' }, dir, requests), (err: Error) => err.message === message);
    writeNpy(path.join(dir, 'short.npy'), '<f4', [N, 2], Float32Array.from({ length: N * 2 }, (_, i) => i));
    truncateSync(path.join(dir, 'short.npy'), statSync(path.join(dir, 'short.npy')).size - 8);
    assert.throws(() => loadStreamedNpy({ ...spec(), inputs: 'short.npy' }, dir, requests), /short\.npy: truncated \.npy data: shape \(1000, 2\) of <f4 needs 8000 bytes, the file holds 7992/);
  });

  void it('carries the coordinator plans to workers as JSON; a worker with other files is refused, naming the file', () => {
    const tasks: Record<string, TaskDataSpec> = { y: { loss: 'sparseCategoricalCrossentropy', data: spec() } };
    const coordinator = bindTasks(tasks, dir);
    const json = dataPlansJson(tasks, coordinator);
    assert.ok(json.length > 0);
    const worker = bindTasks(tasks, dir, parseDataPlans(json));
    const [c, w] = [coordinator.get('y')!, worker.get('y')!];
    assert.equal(w.source, c.source);
    assert.deepEqual(all(w.dataset.train, W, 'y.npy'), all(c.dataset.train, W, 'y.npy'));
    assert.deepEqual((w.dataset as StreamedDataset).plan, (c.dataset as StreamedDataset).plan);
    assert.equal((c.dataset as StreamedDataset).scanned, true);
    assert.equal((w.dataset as StreamedDataset).scanned, false, 'the worker read by the plan, without a scan');
    writeNpy(path.join(dir, 'x.npy'), '<f8', [N, W], x.map((v) => v + 1));
    assert.throws(() => bindTasks(tasks, dir, parseDataPlans(json)), (err: Error) => err.message.startsWith(`${path.join(dir, 'x.npy')}: this file differs from the one the coordinator scanned`));
    writeNpy(path.join(dir, 'x.npy'), '<f8', [N, W], x);
  });
});
