// Categorical values as integer ids, for the Embedding layers of a model: the vocabulary of a
// column is its distinct train values in a canonical order, id 0 is reserved for a value the
// vocabulary does not hold (a category seen only in the test split, or at prediction time),
// and the known values are 1..V. An Embedding over the column needs inputDim V + 1.
//
// The same canonical order sorts class labels: by value when every label is a number (so '10'
// follows '9'), else by code unit.

/** The id of a value the vocabulary does not hold. */
export const UNKNOWN_ID = 0;

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** The canonical order of distinct labels or categories: numeric when all are decimal numbers, else by code unit. */
export function canonicalOrder(distinct: Iterable<string>): string[] {
  const values = [...new Set(distinct)];
  const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  if (values.every((v) => DECIMAL.test(v) && Number.isFinite(Number(v)))) return values.sort((a, b) => Number(a) - Number(b) || byString(a, b));
  return values.sort(byString);
}

export class Vocabulary {
  private readonly ids: ReadonlyMap<string, number>;

  /** `values` in id order: values[i] has id i + 1. */
  constructor(readonly values: readonly string[]) {
    this.ids = new Map(values.map((v, i) => [v, i + 1]));
    if (this.ids.size !== values.length) throw new RangeError('a vocabulary holds each value once');
  }

  /** From the values a column takes on the train rows. */
  static fromValues(values: Iterable<string>): Vocabulary {
    return new Vocabulary(canonicalOrder(values));
  }

  /** Ids 0..V: the inputDim an Embedding over the column needs. */
  get size(): number {
    return this.values.length + 1;
  }

  id(value: string): number {
    return this.ids.get(value) ?? UNKNOWN_ID;
  }

  has(value: string): boolean {
    return this.ids.has(value);
  }
}
