// A split over examples held in memory as float32 rows (the array and table datasets): `rows`
// picks which examples (array entries, or table rows across the dataset's files), in which
// order, this split serves.
import { DatasetError } from '../errors.js';
import { checkSplitRequest, type Split } from './types.js';

export class ArraySplit implements Split {
  readonly size: number;

  constructor(
    private readonly features: Float32Array,
    private readonly width: number,
    private readonly targetValues: ReadonlyMap<string, Float32Array>,
    private readonly rows: Uint32Array,
    /** Names the data in errors (a file, or an archive and its arrays). */
    private readonly where: string,
    /** Floats per example of the targets with more than one (a target array of shape [N, k]). */
    private readonly targetWidths: ReadonlyMap<string, number> = new Map(),
  ) {
    this.size = rows.length;
  }

  inputs(indices: ArrayLike<number>, out: Float32Array): void {
    checkSplitRequest(this.size, indices, out, this.width);
    for (let j = 0; j < indices.length; j++) {
      const from = this.rows[indices[j]!]! * this.width;
      out.set(this.features.subarray(from, from + this.width), j * this.width);
    }
  }

  targets(target: string, indices: ArrayLike<number>, out: Float32Array): void {
    const values = this.targetValues.get(target);
    if (values === undefined) {
      throw new DatasetError(`${this.where}: "${target}" is not a target of this dataset (targets: ${[...this.targetValues.keys()].join(', ')})`);
    }
    const k = this.targetWidths.get(target) ?? 1;
    checkSplitRequest(this.size, indices, out, k);
    if (k === 1) for (let j = 0; j < indices.length; j++) out[j] = values[this.rows[indices[j]!]!]!;
    else for (let j = 0; j < indices.length; j++) out.set(values.subarray(this.rows[indices[j]!]! * k, (this.rows[indices[j]!]! + 1) * k), j * k);
  }
}

/** 0, 1, ..., n − 1. */
export function allRows(n: number): Uint32Array {
  return Uint32Array.from({ length: n }, (_, i) => i);
}
