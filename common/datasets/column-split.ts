// The test split by a column (`split: { column: set, test: [test, val] }`): rows whose column
// holds one of the `test` values (compared as label text, like class labels) are the test
// split, every other row trains. Rows keep their file order in both splits.
import { DatasetError } from '../errors.js';
import type { ColumnSplitSpec } from '../job-schema.js';

/** How a column split reads in messages and in `mtl validate`: column `set` in [test, val]. */
export function showColumnSplit(split: ColumnSplitSpec): string {
  return `column \`${split.column}\` in [${split.test.join(', ')}]`;
}

/** `values`: the split column's label text of each row (in row order). `where` names the data. */
export function splitByColumn(values: readonly string[], split: ColumnSplitSpec, where: string): { trainRows: Uint32Array; testRows: Uint32Array } {
  const test = new Set(split.test);
  const train: number[] = [];
  const held: number[] = [];
  values.forEach((v, r) => (test.has(v) ? held : train).push(r));
  if (train.length === 0 || held.length === 0) {
    const counts = new Map<string, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    const seen = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const shown = seen.slice(0, 10).map(([v, n]) => `${JSON.stringify(v)} ×${n}`).join(', ') + (seen.length > 10 ? `, … (${seen.length} values)` : '');
    throw new DatasetError(
      `${where}: split ${showColumnSplit(split)} leaves ${train.length} train / ${held.length} test rows (need at least 1 of each); ` +
        `values of "${split.column}" seen in the ${values.length} rows: ${shown}`,
    );
  }
  return { trainRows: Uint32Array.from(train), testRows: Uint32Array.from(held) };
}
