// `npm run bench -- decode [--mib N] [--reps N]`: read throughput of the npy and image datasets on
// one core, each side by side with reading the same bytes raw (readFileSync) in the same run:
// - npy: parseNpy + npyToFloat32 of an --mib MiB array (64 by default) as <f4 (one copy), >f4,
//   |u1 and <i8 (element by element), and loadNpy (read, parse, convert, finite check);
// - PNG: the 3000 28×28 grey files of examples/data/mnist-png, decoded (pngjs) and decoded into
//   model inputs; 256×256 RGB PNGs likewise, and resized to 64×64 (bilinear and area);
// - JPEG: 256×256 RGB files (jpeg-js encoder, quality 90), decoded and resized.
// MB/s are of the file's bytes (compressed, for images).
import jpeg from 'jpeg-js';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { decodeImage, imageFileToInput, type PixelOptions } from '../common/datasets/image-decode.js';
import { npyToFloat32, parseNpy } from '../common/datasets/npy-format.js';
import { loadNpy } from '../common/datasets/npy.js';
import { medianMs, option, type Bench } from './bench-types.js';

const MIB = 1 << 20;
const EXAMPLE_PNGS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'data', 'mnist-png');

/** A .npy file (format 1.0) of `count` elements of `descr` with shape (rows, count / rows). */
function npyFile(descr: string, rows: number, body: Uint8Array): Buffer {
  const size = Number(descr.slice(2));
  const header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${body.length / size / rows}), }`;
  const padded = header.padEnd(Math.ceil((header.length + 11) / 64) * 64 - 11) + '\n';
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length & 0xff, padded.length >> 8]);
  return Buffer.concat([prefix, Buffer.from(padded, 'latin1'), body]);
}

interface Row {
  what: string;
  ms: number;
  bytes: number;
  items?: number;
}

function table(rows: readonly Row[], rawMs: number, rawBytes: number, unit: string): string {
  const rawRate = rawBytes / MIB / (rawMs / 1000);
  const lines = [`| ${unit} | MB/s | ${rows.some((r) => r.items) ? 'items/s | ' : ''}÷ raw read |`, `|---|---|${rows.some((r) => r.items) ? '---|' : ''}---|`];
  lines.push(`| raw read (readFileSync) | ${rawRate.toFixed(0)} | ${rows.some((r) => r.items) ? '— | ' : ''}1 |`);
  for (const r of rows) {
    const rate = r.bytes / MIB / (r.ms / 1000);
    const items = r.items !== undefined ? `${(r.items / (r.ms / 1000)).toFixed(0)} | ` : rows.some((x) => x.items) ? '— | ' : '';
    lines.push(`| ${r.what} | ${rate.toFixed(1)} | ${items}${(rate / rawRate).toFixed(3)} |`);
  }
  return lines.join('\n');
}

function npyRows(dir: string, mib: number, reps: number): string {
  const count = (mib * MIB) / 4;
  const f32 = new Float32Array(count).map((_, i) => (i % 1000) / 7);
  const cases: Array<[string, Uint8Array]> = [
    ['<f4', new Uint8Array(f32.buffer)],
    ['>f4', Buffer.from(f32.buffer).swap32()],
    ['|u1', new Uint8Array(count).map((_, i) => i % 251)],
    ['<i8', new Uint8Array(BigInt64Array.from({ length: count / 2 }, (_, i) => BigInt(i % 1000)).buffer)],
  ];
  const rows: Row[] = [];
  let rawMs = 0;
  let rawBytes = 0;
  for (const [descr, body] of cases) {
    const file = path.join(dir, `${descr.slice(1)}.npy`);
    const bytes = npyFile(descr, 1024, body);
    writeFileSync(file, bytes);
    const ms = medianMs(() => void npyToFloat32(parseNpy(readFileSync(file), file)), reps);
    rows.push({ what: `read + parse + to float32, ${descr}`, ms, bytes: bytes.length });
    if (descr === '<f4') {
      rawMs = medianMs(() => void readFileSync(file), reps);
      rawBytes = bytes.length;
      const spec = { dataset: 'npy' as const, inputs: file, target: file, seed: 0 };
      rows.push({ what: 'loadNpy (inputs only: read, parse, convert, finite check, split)', ms: medianMs(() => void loadNpy(spec, dir, []), reps), bytes: bytes.length });
    }
  }
  return `npy (${mib} MiB arrays):\n\n${table(rows, rawMs, rawBytes, 'npy')}`;
}

function imageRows(files: readonly Buffer[], label: string, options: PixelOptions, resized: readonly PixelOptions[], reps: number, dir: string): string {
  const bytes = files.reduce((n, b) => n + b.length, 0);
  const paths = files.map((b, i) => {
    const p = path.join(dir, `${label.replace(/\W+/g, '-')}-${i}`);
    writeFileSync(p, b);
    return p;
  });
  const rawMs = medianMs(() => paths.forEach((p) => readFileSync(p)), reps);
  const rows: Row[] = [
    { what: 'read + decode', ms: medianMs(() => paths.forEach((p) => decodeImage(readFileSync(p), p)), reps), bytes, items: files.length },
    { what: 'read + decode + to input (same size)', ms: medianMs(() => paths.forEach((p) => imageFileToInput(readFileSync(p), p, options)), reps), bytes, items: files.length },
  ];
  for (const o of resized) {
    rows.push({ what: `read + decode + ${o.resize} to ${o.size.join('×')}×${o.channels}`, ms: medianMs(() => paths.forEach((p) => imageFileToInput(readFileSync(p), p, o)), reps), bytes, items: files.length });
  }
  return `${label} (${files.length} files, ${(bytes / files.length).toFixed(0)} B each):\n\n${table(rows, rawMs, bytes, 'images')}`;
}

/** `count` 256×256 RGB pictures (smooth ramps and noise, like photos more than like noise). */
function pictures(count: number): Array<{ width: number; height: number; data: Buffer }> {
  const side = 256;
  return Array.from({ length: count }, (_, n) => {
    const data = Buffer.alloc(side * side * 4);
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const p = 4 * (y * side + x);
        const noise = ((x * 131 + y * 71 + n * 17) * 2654435761) >>> 28;
        data[p] = (x + n * 9 + noise) & 255;
        data[p + 1] = (y + noise) & 255;
        data[p + 2] = ((x + y) / 2 + n) & 255;
        data[p + 3] = 255;
      }
    }
    return { width: side, height: side, data };
  });
}

export const decodeBench: Bench = {
  name: 'decode',
  description: 'npy and PNG/JPEG read throughput (MB/s, images/s) against raw file reads, one core',
  suiteDefaults: { mib: '16', reps: '3' },
  run(args, progress) {
    const mib = Number(option(args, 'mib') ?? 64);
    const reps = Number(option(args, 'reps') ?? 5);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mtl-bench-decode-'));
    try {
      progress(`npy: ${mib} MiB arrays, median of ${reps}`);
      const sections = [npyRows(dir, mib, reps)];
      progress('PNG: examples/data/mnist-png');
      const mnist = readdirSync(EXAMPLE_PNGS, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith('.png'))
        .sort()
        .map((f) => readFileSync(path.join(EXAMPLE_PNGS, f)));
      sections.push(imageRows(mnist, 'PNG 28×28 grey (examples/data/mnist-png)', { size: [28, 28], channels: 1, resize: 'bilinear' }, [], reps, dir));
      const big = pictures(24);
      const rgb: PixelOptions = { size: [256, 256], channels: 3, resize: 'bilinear' };
      const shrink: PixelOptions[] = [
        { size: [64, 64], channels: 3, resize: 'bilinear' },
        { size: [64, 64], channels: 3, resize: 'area' },
      ];
      progress('PNG and JPEG: 256×256 RGB');
      sections.push(imageRows(big.map((p) => PNG.sync.write(Object.assign(new PNG({ width: p.width, height: p.height }), { data: p.data }), { colorType: 2 })), 'PNG 256×256 RGB', rgb, shrink, reps, dir));
      sections.push(imageRows(big.map((p) => Buffer.from(jpeg.encode(p, 90).data)), 'JPEG 256×256 RGB (quality 90)', rgb, shrink, reps, dir));
      return Promise.resolve({ text: sections.join('\n\n'), json: { mib, reps, report: sections } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
