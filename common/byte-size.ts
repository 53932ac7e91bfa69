// Sizes as people write them: a number of bytes, or a number with a unit (256MiB, 4MB, 64KB,
// 512B; the units are powers of 1024, KiB and KB alike). The whole text must be number and
// unit: the `bytes` package alone reads "64 apples" as 64 and "500MiB" as 500.
import bytes from 'bytes';

/** Bytes of `text`, or undefined when it is not a size (or not at least 1 byte). */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$/i.exec(text);
  const n = m ? bytes.parse(`${m[1]}${(m[2] ?? 'b').replace(/ib$/i, 'b')}`) : null;
  return n === null || !Number.isFinite(n) || n < 1 ? undefined : Math.floor(n);
}
