// The acceptance core of the table formats: the Seattle weather table (examples/seattle-weather.yaml)
// as CSV, as JSON lines and as Parquet split into 3 files of several row groups loads to
// bitwise the same inputs, targets, split, statistics and sampler key.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { bindTasks } from '../../common/datasets/index.js';
import { openParquet } from '../../common/datasets/parquet.js';
import { loadTable, type TableDataset, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import type { TableDatasetKind, TableSpec } from '../../common/job-schema.js';
import { validateJob } from '../../common/job-spec.js';
import { JobSpecError } from '../../common/errors.js';
import { SEATTLE_CSV, SEATTLE_FEATURES, seattleTable, writeSeattleJsonl, writeSeattleParquet } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('mtl-formats-');
const jsonl = writeSeattleJsonl(path.join(dir, 'seattle.jsonl'));
fs.mkdirSync(path.join(dir, 'parts'));
const parts = writeSeattleParquet(path.join(dir, 'parts'), 3);
const requests: TargetRequest[] = [
  { column: 'weather', kind: 'classification' },
  { column: 'temp_max', kind: 'regression' },
];

function spec(dataset: TableDatasetKind, file: string): TableSpec {
  return { dataset, path: file, features: SEATTLE_FEATURES, target: 'weather', testFraction: 0.2, normalize: true, seed: 5 };
}

function bytes(split: Split, width: number, target?: string): Buffer {
  const indices = Uint32Array.from({ length: split.size }, (_, i) => i);
  const out = new Float32Array(split.size * (target === undefined ? width : 1));
  if (target === undefined) split.inputs(indices, out);
  else split.targets(target, indices, out);
  return Buffer.from(out.buffer);
}

function everything(ds: TableDataset): Record<string, Buffer> {
  const width = ds.inputShape[0]!;
  return Object.fromEntries(
    (['train', 'test'] as const).flatMap((side) => [
      [`${side}.inputs`, bytes(ds[side], width)],
      [`${side}.weather`, bytes(ds[side], width, 'weather')],
      [`${side}.temp_max`, bytes(ds[side], width, 'temp_max')],
    ]),
  );
}

void describe('table formats', () => {
  const csv = loadTable(spec('csv', SEATTLE_CSV), dir, requests);
  const lines = loadTable(spec('jsonl', 'seattle.jsonl'), dir, requests);
  const parquet = loadTable(spec('parquet', 'parts/part-*.parquet'), dir, requests);

  void it('reads the whole table from each format', () => {
    const rows = seattleTable().rows.length;
    assert.equal(rows, 1461);
    assert.ok(parts.every((f) => openParquet(f, []).partCount >= 2), 'each Parquet file has several row groups');
    assert.deepEqual(parquet.files, parts);
    assert.deepEqual(lines.files, [jsonl]);
    for (const ds of [csv, lines, parquet]) {
      assert.equal(ds.train.size + ds.test.size, rows);
      assert.deepEqual(ds.targets, { weather: { kind: 'classification', classes: ['drizzle', 'fog', 'rain', 'snow', 'sun'] }, temp_max: { kind: 'regression' } });
    }
    assert.match(parquet.description, /^parquet .*part-\*\.parquet \(3 files\): 3 features, 1169 train \/ 292 test rows/);
  });

  void it('gives bitwise the same inputs, targets and split as CSV, JSON lines and Parquet in 3 files', () => {
    const expected = everything(csv);
    for (const [name, ds] of [['jsonl', lines], ['parquet', parquet]] as const) {
      const got = everything(ds);
      for (const key of Object.keys(expected)) assert.ok(got[key]!.equals(expected[key]!), `${name}: ${key} differs from csv`);
      assert.deepEqual(ds.normalization, csv.normalization, `${name}: statistics`);
      assert.equal(ds.identity, csv.identity, `${name}: sampler key`);
    }
    // The comparison can fail: another seed moves rows between the splits.
    const reseeded = everything(loadTable({ ...spec('csv', SEATTLE_CSV), seed: 6 }, dir, requests));
    assert.ok(!reseeded['train.inputs']!.equals(expected['train.inputs']!));
  });

  void it('binds tasks of the three formats to the same sampler source', () => {
    const sources = (['csv', 'jsonl', 'parquet'] as const).map((kind) => {
      const file = kind === 'csv' ? SEATTLE_CSV : kind === 'jsonl' ? 'seattle.jsonl' : 'parts/*.parquet';
      const bindings = bindTasks(
        {
          weather: { loss: 'sparseCategoricalCrossentropy', data: spec(kind, file) },
          temp_max: { loss: 'meanSquaredError', data: { ...spec(kind, file), target: 'temp_max' } },
        },
        dir,
      );
      assert.equal(bindings.get('weather')!.dataset, bindings.get('temp_max')!.dataset, 'one load per source');
      return bindings.get('weather')!.source;
    });
    assert.equal(new Set(sources).size, 1, sources.join(' / '));
    assert.match(sources[0]!, /^table:[0-9a-f]{64}$/);
  });

  void it('takes the same options with the same defaults for csv, jsonl and parquet, and only those', () => {
    const job = (data: object): object => ({
      name: 'kinds',
      model: { trunk: [{ dense: { units: 4 } }], heads: { t: [{ dense: { units: 1 } }] } },
      tasks: { t: { loss: 'meanSquaredError', data } },
      training: { steps: 1, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
    });
    for (const dataset of ['csv', 'jsonl', 'parquet']) {
      const data = validateJob(job({ dataset, path: 'data/part-*', features: ['a'], target: 'b' }), 'job').tasks.t!.data;
      // testFraction has no schema default (giving it and `test` is an error); the loader's is 0.2.
      assert.deepEqual(data, { dataset, path: 'data/part-*', features: ['a'], target: 'b', normalize: true, seed: 0 });
      assert.throws(() => validateJob(job({ dataset, path: 'x', features: ['a'], target: 'b', inputs: 'X.npy' }), 'job'), (err: unknown) => err instanceof JobSpecError && err.message.includes('tasks.t.data.inputs: unknown key'));
    }
  });
});
