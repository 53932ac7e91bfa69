// The JSON-lines reader and its type rules through loadTable: values, line numbers, and the
// errors naming file, line and column.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openJsonl } from '../../common/datasets/jsonl.js';
import { loadTable, type TargetRequest } from '../../common/datasets/tabular.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { JsonlSpec } from '../../common/job-schema.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('mtl-jsonl-');

function write(name: string, lines: ReadonlyArray<string | object>): string {
  fs.writeFileSync(path.join(dir, name), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return name;
}

function spec(file: string, overrides: Partial<JsonlSpec> = {}): JsonlSpec {
  return { dataset: 'jsonl', path: file, features: ['a', 'b'], target: 'y', testFraction: 0.25, normalize: false, seed: 0, ...overrides };
}

const regression = (column: string): TargetRequest => ({ column, kind: 'regression' });
const classification = (column: string): TargetRequest => ({ column, kind: 'classification' });

function all(split: Split, width: number, target: string): { x: number[]; y: number[] } {
  const indices = Uint32Array.from({ length: split.size }, (_, i) => i);
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(indices, x);
  split.targets(target, indices, y);
  return { x: Array.from(x), y: Array.from(y) };
}

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

void describe('jsonl tables', () => {
  void it('reads one object per line, skipping blank lines, and locates rows by line', () => {
    const file = write('basic.jsonl', ['\uFEFF{"id": 0, "a": 0.5, "b": -1, "y": 2, "extra": {"nested": true}}', '', '  ', '{"id": 1, "a": 1.5, "b": -2, "y": 4}\r', '{"y": 6, "b": -3, "a": 2.5, "id": 2}', '{"id": 3, "a": 3.5, "b": -4, "y": 8}']);
    const table = openJsonl(path.join(dir, file), [{ name: 'a', role: 'feature' }, { name: 'y', role: 'target' }]);
    assert.equal(table.rowCount, 4);
    assert.deepEqual(Array.from(table.part(0).column('a')), [0.5, 1.5, 2.5, 3.5]);
    assert.deepEqual([0, 1, 2, 3].map((r) => table.locate(r)), ['line 1', 'line 4', 'line 5', 'line 6']);
    const ds = loadTable(spec(file), dir, [regression('y'), regression('id')]);
    for (const split of [ds.train, ds.test]) {
      const { x } = all(split, 2, 'y');
      const { y: ids } = all(split, 2, 'id');
      const { y } = all(split, 2, 'y');
      ids.forEach((id, i) => assert.deepEqual([x[2 * i], x[2 * i + 1], y[i]], [id + 0.5, -(id + 1), 2 * (id + 1)]));
    }
  });

  void it('takes string, integer and boolean class labels as their text', () => {
    const rows = [true, false, true, false].map((label, i) => ({ a: i, b: i, y: label, n: [10, 9, 10, 2][i] }));
    const file = write('labels.jsonl', rows);
    const ds = loadTable(spec(file), dir, [classification('y'), classification('n')]);
    assert.deepEqual(ds.targets.y?.classes, ['false', 'true']);
    assert.deepEqual(ds.targets.n?.classes, ['2', '9', '10']);
  });

  void it('names file and line of a line that is not a JSON object, or not JSON', () => {
    assertDatasetError(() => loadTable(spec(write('array.jsonl', [{ a: 1, b: 2, y: 3 }, '[1, 2, 3]'])), dir, [regression('y')]), 'array.jsonl', 'line 2', 'expected a JSON object, got an array');
    assertDatasetError(() => loadTable(spec(write('scalar.jsonl', ['', '42'])), dir, [regression('y')]), 'scalar.jsonl', 'line 2', 'got a number');
    assertDatasetError(() => loadTable(spec(write('broken.jsonl', [{ a: 1, b: 2, y: 3 }, '{"a": 1, "b": 2, "y": ', { a: 1, b: 2, y: 3 }])), dir, [regression('y')]), 'broken.jsonl', 'line 2', 'not valid JSON');
  });

  void it('names file, line and column of a nested value, a string number, a missing value and a bad label', () => {
    const ok = { a: 1, b: 2, y: 3 };
    assertDatasetError(() => loadTable(spec(write('nested.jsonl', [ok, ok, { a: 1, b: [2], y: 3 }])), dir, [regression('y')]), 'nested.jsonl', 'line 3', 'column "b"', 'got an array');
    assertDatasetError(() => loadTable(spec(write('text.jsonl', [ok, { a: '1.5', b: 2, y: 3 }])), dir, [regression('y')]), 'text.jsonl', 'line 2', 'column "a"', 'expected a number', '"1.5" (a string)');
    assertDatasetError(() => loadTable(spec(write('bool.jsonl', [ok, { a: 1, b: true, y: 3 }])), dir, [regression('y')]), 'bool.jsonl', 'line 2', 'column "b"', 'got true');
    assertDatasetError(() => loadTable(spec(write('null.jsonl', [ok, ok, ok, { a: 1, b: null, y: 3 }])), dir, [regression('y')]), 'null.jsonl', 'line 4', 'column "b"', 'null or no value');
    assertDatasetError(() => loadTable(spec(write('absent.jsonl', [ok, { a: 1, y: 3 }])), dir, [regression('y')]), 'absent.jsonl', 'line 2', 'column "b"', 'null or no value');
    assertDatasetError(() => loadTable(spec(write('float-label.jsonl', [ok, { a: 1, b: 2, y: 1.5 }])), dir, [classification('y')]), 'float-label.jsonl', 'line 2', 'column "y"', 'a class label', 'got 1.5');
    assertDatasetError(() => loadTable(spec(write('null-label.jsonl', [ok, { a: 1, b: 2, y: null }])), dir, [classification('y')]), 'null-label.jsonl', 'line 2', 'column "y"');
  });

  void it('names the file and the keys it has when no line has a column', () => {
    const file = write('keys.jsonl', [{ a: 1, b: 2, y: 3 }, { a: 1, b: 2, y: 3, other: 0 }]);
    assertDatasetError(() => loadTable(spec(file, { features: ['a', 'c'] }), dir, [regression('y')]), 'keys.jsonl', 'feature column "c"', 'a, b, y, other');
    assertDatasetError(() => loadTable(spec(file), dir, [regression('z')]), 'keys.jsonl', 'target column "z"');
  });

  void it('names a missing or empty file', () => {
    assertDatasetError(() => loadTable(spec('absent-file.jsonl'), dir, [regression('y')]), path.join(dir, 'absent-file.jsonl'), 'no such file');
    assertDatasetError(() => loadTable(spec(write('empty.jsonl', ['', ''])), dir, [regression('y')]), 'empty.jsonl', 'no data rows');
  });
});
