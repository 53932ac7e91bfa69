// The Parquet reader and its type rules through loadTable: column types, row groups, nulls,
// unsupported types, truncated and corrupt files, and a file written by another tool (Polars:
// vega-datasets' flights-3m.parquet, zstd-compressed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { openParquet } from '../../common/datasets/parquet.js';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { ParquetSpec } from '../../common/job-schema.js';
import { FLIGHTS_PARQUET, writeParquet } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('mtl-parquet-');
const at = (name: string): string => path.join(dir, name);

function spec(file: string, overrides: Partial<ParquetSpec> = {}): ParquetSpec {
  return { dataset: 'parquet', path: file, features: ['a', 'b'], target: 'y', testFraction: 0.25, normalize: false, seed: 0, ...overrides };
}

const regression = (column: string): TargetRequest => ({ column, kind: 'regression' });
const classification = (column: string): TargetRequest => ({ column, kind: 'classification' });

function column(split: Split, width: number, target?: string): number[] {
  const indices = Uint32Array.from({ length: split.size }, (_, i) => i);
  const out = new Float32Array(split.size * (target === undefined ? width : 1));
  if (target === undefined) split.inputs(indices, out);
  else split.targets(target, indices, out);
  return Array.from(out);
}

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

const N = 10;
const ids = Array.from({ length: N }, (_, i) => i);
// Ten rows in row groups of 4: groups 0-3, 4-7, 8-9. Required columns decode to typed arrays.
const typed = writeParquet(
  at('typed.parquet'),
  [
    { name: 'id', data: Int32Array.from(ids), type: 'INT32', nullable: false },
    { name: 'a', data: ids.map((i) => BigInt(i * 1000)), type: 'INT64' },
    { name: 'b', data: Float32Array.from(ids, (i) => i / 4), type: 'FLOAT', nullable: false },
    { name: 'y', data: ids.map((i) => i * 1.5), type: 'DOUBLE' },
    { name: 'word', data: ids.map((i) => ['cat', 'dog', 'Zebra'][i % 3]!), type: 'STRING' },
    { name: 'flag', data: ids.map((i) => i % 2 === 0), type: 'BOOLEAN' },
    { name: 'code', data: ids.map((i) => [10, 9, 2][i % 3]!), type: 'INT32' },
    { name: 'when', data: ids.map((i) => new Date(i * 86_400_000)), type: 'TIMESTAMP' },
  ],
  4,
);

void describe('parquet tables', () => {
  void it('reads integer, float and double features and string, boolean and integer labels across row groups', () => {
    const table = openParquet(typed, [{ name: 'a', role: 'feature' }]);
    assert.deepEqual([table.rowCount, table.partCount], [N, 3]);
    assert.deepEqual([table.part(1).firstRow, table.part(1).rowCount, table.part(2).rowCount], [4, 4, 2]);
    assert.deepEqual(['row 1 (row group 0)', 'row 5 (row group 1)', 'row 10 (row group 2)'], [0, 4, 9].map((r) => table.locate(r)));
    const ds = loadTable(spec('typed.parquet'), dir, [regression('y'), regression('id'), classification('word'), classification('flag'), classification('code')]);
    assert.deepEqual(ds.targets.word?.classes, ['Zebra', 'cat', 'dog']);
    assert.deepEqual(ds.targets.flag?.classes, ['false', 'true']);
    assert.deepEqual(ds.targets.code?.classes, ['2', '9', '10']);
    for (const split of [ds.train, ds.test]) {
      const x = column(split, 2);
      const [id, y, word, flag, code] = ['id', 'y', 'word', 'flag', 'code'].map((t) => column(split, 2, t));
      id!.forEach((i, k) => {
        assert.deepEqual([x[2 * k], x[2 * k + 1], y![k]], [i * 1000, i / 4, i * 1.5], `row ${i}`);
        assert.deepEqual([word![k], flag![k], code![k]], [[1, 2, 0][i % 3], i % 2 === 0 ? 1 : 0, [2, 1, 0][i % 3]]);
      });
    }
    assert.equal(ds.train.size + ds.test.size, N);
  });

  void it('names file, row, row group and column of a null, a NaN, an inexact integer and a bad label', () => {
    const nulls = writeParquet(at('nulls.parquet'), [{ name: 'a', data: [1, 2, 3, 4, 5, null, 7], type: 'DOUBLE' }, { name: 'b', data: [1, 2, 3, 4, 5, 6, 7], type: 'DOUBLE' }, { name: 'y', data: [1, 2, 3, 4, 5, 6, 7], type: 'DOUBLE' }], 4);
    assertDatasetError(() => loadTable(spec('nulls.parquet'), dir, [regression('y')]), nulls, 'row 6 (row group 1)', 'column "a"', 'expected a number, got null');
    writeParquet(at('nan.parquet'), [{ name: 'a', data: [1, 2, Number.NaN], type: 'DOUBLE' }, { name: 'b', data: [1, 2, 3], type: 'DOUBLE' }, { name: 'y', data: [1, 2, 3], type: 'DOUBLE' }]);
    assertDatasetError(() => loadTable(spec('nan.parquet'), dir, [regression('y')]), 'nan.parquet', 'row 3 (row group 0)', 'column "a"', 'got NaN');
    writeParquet(at('huge.parquet'), [{ name: 'a', data: [1n, 2n, 2n ** 53n + 1n], type: 'INT64' }, { name: 'b', data: [1, 2, 3], type: 'DOUBLE' }, { name: 'y', data: [1, 2, 3], type: 'DOUBLE' }]);
    assertDatasetError(() => loadTable(spec('huge.parquet'), dir, [regression('y')]), 'huge.parquet', 'row 3', 'column "a"', 'exactly', '9007199254740993');
    assert.deepEqual(loadTable(spec('huge.parquet', { features: ['b'] }), dir, [classification('a')]).targets.a?.classes, ['1', '2', '9007199254740993']);
    assertDatasetError(() => loadTable(spec('typed.parquet'), dir, [classification('y')]), 'typed.parquet', 'column "y"', 'a class label', 'got 1.5');
    assertDatasetError(() => loadTable(spec('typed.parquet', { features: ['a', 'word'] }), dir, [regression('y')]), 'typed.parquet', 'column "word"', '"cat" (a string)');
  });

  void it('reads only the requested columns, and names an unsupported or absent one', () => {
    assert.doesNotThrow(() => loadTable(spec('typed.parquet'), dir, [regression('y')]), 'the timestamp column is not read');
    assertDatasetError(() => loadTable(spec('typed.parquet', { features: ['a', 'when'] }), dir, [regression('y')]), 'typed.parquet', 'feature column "when"', 'TIMESTAMP', 'only numbers, strings and booleans');
    assertDatasetError(() => loadTable(spec('typed.parquet'), dir, [regression('nope')]), 'typed.parquet', 'target column "nope"', 'id, a, b, y, word, flag, code, when');
  });

  void it('reports a truncated, corrupt or foreign file, never a shorter table', () => {
    const whole = fs.readFileSync(typed);
    fs.writeFileSync(at('cut.parquet'), whole.subarray(0, whole.length - 30));
    assertDatasetError(() => loadTable(spec('cut.parquet'), dir, [regression('y')]), 'cut.parquet', 'truncated');
    fs.writeFileSync(at('tiny.parquet'), whole.subarray(0, 6));
    assertDatasetError(() => loadTable(spec('tiny.parquet'), dir, [regression('y')]), 'tiny.parquet', 'too short');
    fs.writeFileSync(at('text.parquet'), 'a,b,y\n1,2,3\n4,5,6\n');
    assertDatasetError(() => loadTable(spec('text.parquet'), dir, [regression('y')]), 'text.parquet', 'not a Parquet file');
    // The footer kept, the data of row group 1 cut out: the chunks point past the data left.
    const footerLength = whole.readUInt32LE(whole.length - 8);
    const footer = whole.subarray(whole.length - 8 - footerLength);
    const meta = parquetMetadata(whole);
    const cutAt = Number(meta.row_groups[1]!.columns[0]!.meta_data!.data_page_offset);
    fs.writeFileSync(at('hollow.parquet'), Buffer.concat([whole.subarray(0, cutAt), footer]));
    assertDatasetError(() => loadTable(spec('hollow.parquet'), dir, [regression('y')]), 'hollow.parquet', 'row group 1', 'column "a"', 'outside the file');
    // A page header overwritten: the decoder's error, with file, row group and column.
    const start = Number(meta.row_groups[0]!.columns[1]!.meta_data!.data_page_offset);
    const garbled = Buffer.from(whole);
    garbled.fill(0xff, start, start + 6);
    fs.writeFileSync(at('garbled.parquet'), garbled);
    assertDatasetError(() => loadTable(spec('garbled.parquet'), dir, [regression('y')]), 'garbled.parquet', 'row group 0', 'column "a"', 'cannot decode');
  });

  void it('reads a file written by another tool (Polars, zstd): row count, types and values against its own statistics', () => {
    const columns = ['delay', 'distance', 'origin', 'destination'].map((name) => ({ name, role: 'feature' }));
    const table = openParquet(FLIGHTS_PARQUET, columns);
    assert.deepEqual([table.rowCount, table.partCount], [3_000_000, 11]);
    const meta = parquetMetadata(fs.readFileSync(FLIGHTS_PARQUET));
    for (const g of [0, 10]) {
      const part = table.part(g);
      assert.equal(part.rowCount, Number(meta.row_groups[g]!.num_rows));
      for (const chunk of meta.row_groups[g]!.columns) {
        const name = chunk.meta_data!.path_in_schema[0]!;
        if (name === 'date') continue;
        const stats = chunk.meta_data!.statistics!;
        const cells: unknown[] = Array.from(part.column(name));
        assert.equal(cells.length, part.rowCount);
        if (name === 'delay' || name === 'distance') {
          assert.ok(cells.every((c) => typeof c === 'bigint'), `${name}: INT64 cells`);
          const values = cells;
          assert.deepEqual([values.reduce((m, v) => (v < m ? v : m)), values.reduce((m, v) => (v > m ? v : m))], [stats.min_value, stats.max_value], `row group ${g}, ${name}`);
        } else {
          const codes = cells as string[];
          assert.ok(codes.every((c) => /^[A-Z]{3}$/.test(c)), `${name}: airport codes`);
          assert.deepEqual([codes.reduce((m, v) => (v < m ? v : m)), codes.reduce((m, v) => (v > m ? v : m))], [stats.min_value, stats.max_value], `row group ${g}, ${name}`);
        }
      }
    }
    assert.deepEqual(['delay', 'distance', 'origin', 'destination'].map((c) => table.part(0).column(c)[0]), [33n, 2176n, 'LAS', 'PHL']);
    assertDatasetError(() => openParquet(FLIGHTS_PARQUET, [{ name: 'date', role: 'feature' }]), 'flights-3m.parquet', 'column "date"', 'INT64 (TIMESTAMP)');
  });
});
