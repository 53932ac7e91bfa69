// A dataset's identity for the sampler (`Dataset.identity`): a digest of the decoded inputs and
// of the train examples' order, so that the same examples named by another path, read from
// another format or fetched from elsewhere are batched (and their dropout masks drawn) the same.
import { createHash, type Hash } from 'node:crypto';

export class InputsDigest {
  private readonly hash: Hash;

  /** `kind` separates families whose equal bytes mean different things (table rows, images, arrays). */
  constructor(
    private readonly kind: string,
    width: number,
  ) {
    this.hash = createHash('sha256').update(`mtl-${kind}-inputs-v1\0${width}\0`);
  }

  add(values: Float32Array): this {
    this.hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    return this;
  }

  /** The identity, after every input was added, with the train examples' order. */
  finish(trainRows: Uint32Array): string {
    this.hash.update(new Uint8Array(trainRows.buffer, trainRows.byteOffset, trainRows.byteLength));
    return `${this.kind}:${this.hash.digest('hex')}`;
  }
}
