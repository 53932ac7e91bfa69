// Streamed tables (stream: in a table spec): the coordinator's scan against the in-memory path
// (statistics, vocabularies, class labels, the same split), chunk offsets at record boundaries
// (quoted csv newlines), errors naming file, line and column from the middle of a big file, a
// truncated Parquet file, `missing: drop`, and a worker's plan refused when a file changed.
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadStreamedTable } from '../../common/datasets/stream/stream-table.js';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import type { TableSpec } from '../../common/job-schema.js';
import { validateJob } from '../../common/job-spec.js';
import { streamSettings } from '../../common/datasets/stream/plan.js';
import { SEATTLE_CSV, SEATTLE_FEATURES, writeSeattleJsonl, writeSeattleParquet } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

const REQUESTS: TargetRequest[] = [
  { column: 'weather', kind: 'classification' },
  { column: 'temp_max', kind: 'regression' },
];

function seattle(dataset: TableSpec['dataset'], file: string, stream?: TableSpec['stream']): TableSpec {
  return { dataset, path: file, features: SEATTLE_FEATURES, target: 'weather', normalize: true, seed: 3, ...(stream === undefined ? {} : { stream }) };
}

function rows(split: Split, width: number, target?: string): { x: Float32Array; y: Float32Array } {
  const all = Array.from({ length: split.size }, (_, i) => i);
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(all, x);
  if (target) split.targets(target, all, y);
  return { x, y };
}

/** Rows as sortable strings, rounded to 5 decimals (the statistics differ in their last bits). */
function rowSet(split: Split, width: number, target: string): string[] {
  const { x, y } = rows(split, width, target);
  return Array.from({ length: split.size }, (_, i) => [...x.subarray(i * width, (i + 1) * width), y[i]!].map((v) => v.toFixed(5)).join(',')).sort();
}

const dir = tempDir('mtl-stream-unit-');
writeSeattleJsonl(path.join(dir, 'seattle.jsonl'));
mkdirSync(path.join(dir, 'parts'));
writeSeattleParquet(path.join(dir, 'parts'), 3, 97);

void describe('streamed tables: the scan', () => {
  const memory = loadTable(seattle('csv', SEATTLE_CSV), '/', REQUESTS);
  const streamed = loadStreamedTable(seattle('csv', SEATTLE_CSV, { chunk: 4096, cache: 16384 }), '/', REQUESTS);

  void it('finds the in-memory statistics, class labels and split, over many chunks', () => {
    assert.ok(streamed.plan.chunks.length > 10, `${streamed.plan.chunks.length} chunks`);
    assert.deepEqual(streamed.targets, memory.targets);
    assert.equal(streamed.train.size, memory.train.size);
    assert.equal(streamed.test.size, memory.test.size);
    streamed.columns!.forEach((t, f) => {
      const m = memory.columns![f]!;
      assert.ok(t.kind === 'numeric' && m.kind === 'numeric');
      // Double precision, summed in another order (compensated, in row order): equal to ~1e-15.
      assert.ok(Math.abs(t.mean! - m.mean!) <= 1e-12 * Math.abs(m.mean!), `${t.column} mean ${t.mean} vs ${m.mean}`);
      assert.ok(Math.abs(t.std! - m.std!) <= 1e-12 * m.std!, `${t.column} std ${t.std} vs ${m.std}`);
    });
    // The same rows in each split (the split is keyed by seed and row count as in memory), served in row order.
    assert.deepEqual(rowSet(streamed.train, 3, 'weather'), rowSet(memory.train, 3, 'weather'));
    assert.deepEqual(rowSet(streamed.test, 3, 'temp_max'), rowSet(memory.test, 3, 'temp_max'));
  });

  void it('gives the same rows, identity and plan counts for CSV, JSON lines and Parquet split into files', () => {
    const jsonl = loadStreamedTable(seattle('jsonl', 'seattle.jsonl', { chunk: 3000 }), dir, REQUESTS);
    const parquet = loadStreamedTable(seattle('parquet', 'parts/part-*.parquet', true), dir, REQUESTS);
    assert.equal(parquet.plan.chunks.length, 3 * Math.ceil(1461 / 3 / 97));
    for (const other of [jsonl, parquet]) {
      assert.equal(other.identity, streamed.identity);
      assert.deepEqual(other.columns, streamed.columns);
      assert.deepEqual(rows(other.train, 3, 'weather'), rows(streamed.train, 3, 'weather'));
      assert.deepEqual(rows(other.test, 3, 'temp_max'), rows(streamed.test, 3, 'temp_max'));
    }
  });

  void it('cuts csv chunks at record boundaries, never inside a quoted cell holding newlines', () => {
    const lines = ['x,note,y'];
    for (let i = 0; i < 400; i++) lines.push(`${i},"line one\nline ""two"" of ${i}\n",${i % 3}`);
    const file = path.join(dir, 'quoted.csv');
    writeFileSync(file, lines.join('\n') + '\n');
    const spec = (stream?: TableSpec['stream']): TableSpec => ({ dataset: 'csv', path: file, features: ['x'], target: 'y', normalize: false, seed: 1, testFraction: 0.25, ...(stream ? { stream } : {}) });
    const ds = loadStreamedTable(spec({ chunk: 500 }), '/', [{ column: 'y', kind: 'regression' }]);
    assert.ok(ds.plan.chunks.length > 20);
    const bytes = readFileSync(file);
    for (const c of ds.plan.chunks) {
      assert.equal(bytes[c.start - 1], 0x0a, `chunk at ${c.start} starts after a newline`);
      assert.match(bytes.subarray(c.start, c.start + 16).toString(), /^\d+,"line/);
    }
    assert.equal(ds.plan.chunks.reduce((n, c) => n + c.rows, 0), 400);
    const memory = loadTable(spec(), '/', [{ column: 'y', kind: 'regression' }]);
    assert.deepEqual(rowSet(ds.train, 1, 'y'), rowSet(memory.train, 1, 'y'));
  });

  void it('names file, line and column of a bad cell in the middle of a big file, as in memory', () => {
    const lines = ['a,b,label'];
    for (let i = 0; i < 30000; i++) lines.push(i === 17321 ? `${i},calm,x` : `${i},${i * 0.5},${i % 2 ? 'x' : 'y'}`);
    const file = path.join(dir, 'big.csv');
    writeFileSync(file, lines.join('\n'));
    const spec: TableSpec = { dataset: 'csv', path: file, features: ['a', 'b'], target: 'label', normalize: true, seed: 0 };
    const expected = `${file}: line 17323, column "b": expected a number, got "calm"`;
    assert.throws(() => loadTable(spec, '/', [{ column: 'label', kind: 'classification' }]), (err: Error) => err.message === expected);
    assert.throws(
      () => loadStreamedTable({ ...spec, stream: { chunk: 8192 } }, '/', [{ column: 'label', kind: 'classification' }]),
      (err: Error) => err.message === expected,
    );
    const jsonl = path.join(dir, 'big.jsonl');
    writeFileSync(jsonl, lines.slice(1).map((l) => { const [a, b, label] = l.split(','); return JSON.stringify({ a: Number(a), b: Number.isNaN(Number(b)) ? b : Number(b), label }); }).join('\n'));
    assert.throws(
      () => loadStreamedTable({ ...spec, dataset: 'jsonl', path: jsonl, stream: { chunk: 8192 } }, '/', [{ column: 'label', kind: 'classification' }]),
      (err: Error) => err.message === `${jsonl}: line 17322, column "b": expected a number, got "calm" (a string)`,
    );
  });

  void it('reports a truncated Parquet file by name', () => {
    const file = path.join(dir, 'truncated.parquet');
    copyFileSync(path.join(dir, 'parts', 'part-0.parquet'), file);
    truncateSync(file, statSync(file).size - 100);
    assert.throws(() => loadStreamedTable(seattle('parquet', file, true), '/', REQUESTS), (err: Error) => err.message.startsWith(`${file}: truncated or not a Parquet file`));
  });

  void it('drops rows with a missing value as in memory, keeping only counts in the plan', () => {
    const lines = ['x,y'];
    for (let i = 0; i < 1000; i++) lines.push(i % 7 === 3 ? `,${i}` : `${i / 10},${i % 4 === 1 ? '' : i}`);
    const file = path.join(dir, 'gaps.csv');
    writeFileSync(file, lines.join('\n'));
    const spec: TableSpec = { dataset: 'csv', path: file, features: ['x'], target: 'y', normalize: true, seed: 5, missing: 'drop' };
    const memory = loadTable(spec, '/', [{ column: 'y', kind: 'regression' }]);
    const ds = loadStreamedTable({ ...spec, stream: { chunk: 1024 } }, '/', [{ column: 'y', kind: 'regression' }]);
    assert.equal(ds.plan.fileRows, 1000);
    assert.equal(ds.plan.rowCount, memory.train.size + memory.test.size);
    assert.ok(ds.plan.chunks.some((c) => c.kept < c.rows));
    assert.deepEqual(rowSet(ds.train, 1, 'y'), rowSet(memory.train, 1, 'y'));
    assert.deepEqual(rowSet(ds.test, 1, 'y'), rowSet(memory.test, 1, 'y'));
  });

  void it('refuses a plan whose files changed, naming the file', () => {
    const file = path.join(dir, 'changing.jsonl');
    copyFileSync(path.join(dir, 'seattle.jsonl'), file);
    const plan = loadStreamedTable(seattle('jsonl', file, true), '/', REQUESTS).plan;
    // Same plan, same files: read without scanning.
    assert.equal(loadStreamedTable(seattle('jsonl', file, true), '/', REQUESTS, plan).identity, plan.identity);
    appendFileSync(file, '{"precipitation":0,"temp_min":1,"wind":2,"weather":"sun","temp_max":3}\n');
    assert.throws(() => loadStreamedTable(seattle('jsonl', file, true), '/', REQUESTS, plan), (err: Error) => err.message.startsWith(`${file}: this file differs from the one the coordinator scanned`));
  });
});

void describe('streamed tables: the spec', () => {
  const job = (stream: unknown) => ({
    name: 'j',
    model: { trunk: [{ dense: { units: 2 } }], heads: { y: [{ dense: { units: 1 } }] } },
    tasks: { y: { loss: 'meanSquaredError', data: { dataset: 'csv', path: 'x.csv', features: ['a'], target: 'y', stream } } },
    training: { steps: 1, batchSize: 1, optimizer: { name: 'sgd', learningRate: 0.1 } },
  });
  const streamOf = (stream: unknown) => {
    const data = validateJob(job(stream), 'job.yaml').tasks.y!.data;
    return data.dataset === 'csv' ? streamSettings(data.stream) : undefined;
  };

  void it('reads sizes with units, in powers of 1024, and defaults the rest', () => {
    assert.deepEqual(streamOf({ cache: '64MiB', chunk: '4KB', blockRows: 100 }), { cache: 64 * 1024 * 1024, chunk: 4096, blockRows: 100, window: 4 });
    assert.deepEqual(streamOf(true), { cache: 256 * 1024 * 1024, chunk: 4 * 1024 * 1024, blockRows: 4096, window: 4 });
    assert.equal(streamOf(false), undefined);
  });

  void it('refuses a size that is not all number and unit', () => {
    assert.throws(() => streamOf({ cache: '64 apples' }), /tasks\.y\.data\.stream.*expected a size such as 256MiB, 4MB or 65536, got "64 apples"/s);
  });
});
