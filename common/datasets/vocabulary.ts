// Categorical values as integer ids, for the Embedding layers of a model: the vocabulary of a
// column is its distinct train values in a canonical order, id 0 is reserved for a value the
// vocabulary does not hold (a category seen only in the test split, or at prediction time),
// and the known values are 1..V. An Embedding over the column needs inputDim V + 1.
//
// The values are in the order of class labels (class-labels.ts): by value when every value is a
// number (so '10' follows '9'), else by code unit.
import { classIndex } from './class-labels.js';

/** The id of a value the vocabulary does not hold. */
export const UNKNOWN_ID = 0;

export class Vocabulary {
  private readonly ids: ReadonlyMap<string, number>;

  /** `values` in id order: values[i] has id i + 1. */
  constructor(readonly values: readonly string[]) {
    this.ids = new Map(values.map((v, i) => [v, i + 1]));
    if (this.ids.size !== values.length) throw new RangeError('a vocabulary holds each value once');
  }

  /** From the values a column takes on the train rows. */
  static fromValues(values: Iterable<string>): Vocabulary {
    return new Vocabulary(classIndex(values).classes);
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
