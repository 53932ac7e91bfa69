// Image files for the image dataset tests: PNGs written byte by byte (any colour type and bit
// depth, palette included: an encoder independent of the pngjs decoder under test), and a
// reader of the binary PPM/PGM files that libjpeg's djpeg wrote as the reference decoding of the
// JPEG fixtures (test/fixtures/images, scripts/make-jpeg-fixtures.py).
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

export interface PngSpec {
  width: number;
  height: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA. */
  colorType: 0 | 2 | 3 | 4 | 6;
  bitDepth?: 1 | 2 | 4 | 8 | 16;
  /** Samples row-major, channels interleaved (palette: indices), each < 2^bitDepth. */
  samples: ArrayLike<number>;
  /** colorType 3: [r, g, b] per entry. */
  palette?: ReadonlyArray<readonly [number, number, number]>;
}

const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const;

/** A valid PNG file of `spec` (filter 0 on every row). */
export function pngFile(spec: PngSpec): Buffer {
  const depth = spec.bitDepth ?? 8;
  const perRow = spec.width * CHANNELS[spec.colorType];
  const rowBytes = Math.ceil((perRow * depth) / 8);
  const raw = Buffer.alloc((rowBytes + 1) * spec.height);
  for (let y = 0; y < spec.height; y++) {
    const row = raw.subarray(y * (rowBytes + 1) + 1);
    for (let i = 0; i < perRow; i++) {
      const v = spec.samples[y * perRow + i]!;
      if (depth === 16) row.writeUInt16BE(v, 2 * i);
      else if (depth === 8) row[i] = v;
      else {
        const bit = i * depth;
        row[bit >> 3] = row[bit >> 3]! | (v << (8 - depth - (bit & 7)));
      }
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(spec.width, 0);
  header.writeUInt32BE(spec.height, 4);
  header[8] = depth;
  header[9] = spec.colorType;
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header)];
  if (spec.palette) parts.push(chunk('PLTE', Uint8Array.from(spec.palette.flat())));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0)));
  return Buffer.concat(parts);
}

/** A binary PPM (P6) or PGM (P5) file with 8-bit samples. */
export function readNetpbm(bytes: Buffer): { width: number; height: number; channels: 1 | 3; samples: Uint8Array } {
  const m = /^(P[56])\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(bytes.subarray(0, 64).toString('latin1'));
  if (m === null || m[4] !== '255') throw new Error('not an 8-bit binary PPM/PGM file');
  const channels = m[1] === 'P6' ? 3 : 1;
  const width = Number(m[2]);
  const height = Number(m[3]);
  return { width, height, channels, samples: bytes.subarray(m[0].length, m[0].length + width * height * channels) };
}
