// Targets of the array and image datasets: what the tasks of one source ask for, and class
// labels as sorted indices (the rule csv.ts follows too: sorted distinct labels, by value when
// every label is a number, so '10' follows '9'; the target value is the index into that list).
import type { TargetKind } from './types.js';

/** A target the tasks of one source ask for. */
export interface TaskTargetRequest {
  /** The target's name (`spec.target`). */
  name: string;
  kind: TargetKind;
  /** Arrays with an explicit test split: the test split's target (file or array name). */
  testTarget?: string;
}

/** A plain decimal number (as csv.ts reads cells), or undefined. */
export function parseDecimal(text: string): number | undefined {
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorted distinct labels (numerically when all are decimal numbers) and each label's index. */
export function classIndex(labels: Iterable<string>): { classes: string[]; index: ReadonlyMap<string, number> } {
  const distinct = [...new Set(labels)];
  const numbers = new Map(distinct.map((c) => [c, parseDecimal(c)] as const));
  if (distinct.every((c) => numbers.get(c) !== undefined)) distinct.sort((a, b) => numbers.get(a)! - numbers.get(b)! || byString(a, b));
  else distinct.sort(byString);
  return { classes: distinct, index: new Map(distinct.map((c, i) => [c, i] as const)) };
}

/** Class labels of numeric values (array targets): sorted distinct values, named as numbers ('3', '0.5'). */
export function numericClasses(values: Float64Array, boolean: boolean): { classes: string[]; indices: Float32Array } {
  const distinct = [...new Set(values)].sort((a, b) => a - b);
  const position = new Map(distinct.map((v, i) => [v, i] as const));
  const classes = distinct.map((v) => (boolean ? (v === 0 ? 'false' : 'true') : String(v)));
  return { classes, indices: Float32Array.from(values, (v) => position.get(v)!) };
}
