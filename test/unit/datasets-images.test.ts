// The images dataset: decoding (PNG of every colour type, JPEG against libjpeg's decoding),
// channel conversion and resizing against values computed by hand, labels from folders and
// from a table, and bad files as errors naming them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TaskTargetRequest } from '../../common/datasets/class-labels.js';
import { decodeImage, imageFileToInput, imageToInput, type DecodedImage, type PixelOptions } from '../../common/datasets/image-decode.js';
import { listImages, loadImages } from '../../common/datasets/images.js';
import type { Split } from '../../common/datasets/types.js';
import { DatasetError } from '../../common/errors.js';
import type { ImagesSpec } from '../../common/job-schema.js';
import { pngFile, readNetpbm } from '../helpers/images.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'images');
const same = (size: [number, number], channels: 1 | 3): PixelOptions => ({ size, channels, resize: 'bilinear' });
const classification = (name: string): TaskTargetRequest => ({ name, kind: 'classification' });
const regression = (name: string): TaskTargetRequest => ({ name, kind: 'regression' });

function assertDatasetError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetError, `expected a DatasetError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tolerance, `${what}: value ${i} is ${actual[i]}, expected ${expected[i]} ± ${tolerance}`);
  }
}

const f32 = (values: number[]): number[] => values.map(Math.fround);

/** A grey image of `width` × `height` from values 0..255, as decodeImage returns it. */
function grey(width: number, height: number, values: number[]): DecodedImage {
  return { width, height, stride: 3, data: Uint8Array.from(values.flatMap((v) => [v, v, v])) };
}

void describe('image decoding', () => {
  void it('reads PNG grey, RGB, RGBA (alpha dropped), palette, grey + alpha, 16-bit and 1-bit files', () => {
    const rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30];
    const cases: Array<[string, Buffer, number[]]> = [
      ['grey', pngFile({ width: 2, height: 2, colorType: 0, samples: [0, 51, 204, 255] }), [0, 0, 0, 51, 51, 51, 204, 204, 204, 255, 255, 255]],
      ['rgb', pngFile({ width: 2, height: 2, colorType: 2, samples: rgb }), rgb],
      ['rgba', pngFile({ width: 2, height: 2, colorType: 6, samples: [255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 7] }), rgb],
      ['palette', pngFile({ width: 2, height: 2, colorType: 3, samples: [2, 1, 0, 2], palette: [[10, 20, 30], [0, 255, 0], [255, 0, 0]] }), [255, 0, 0, 0, 255, 0, 10, 20, 30, 255, 0, 0]],
      ['grey-alpha', pngFile({ width: 2, height: 1, colorType: 4, samples: [40, 0, 200, 255] }), [40, 40, 40, 200, 200, 200]],
      ['16-bit', pngFile({ width: 2, height: 1, colorType: 0, bitDepth: 16, samples: [65535, 257 * 100] }), [255, 255, 255, 100, 100, 100]],
      ['1-bit', pngFile({ width: 3, height: 1, colorType: 0, bitDepth: 1, samples: [1, 0, 1] }), [255, 255, 255, 0, 0, 0, 255, 255, 255]],
    ];
    for (const [what, bytes, want] of cases) {
      const pixels = want.length / 3;
      const width = what === '1-bit' ? 3 : 2;
      const input = imageFileToInput(bytes, what, same([pixels / width, width], 3));
      assert.deepEqual(Array.from(input), f32(want.map((v) => v / 255)), what);
    }
  });

  void it('converts to one channel by BT.601 luma, exact for grey, and grey to three channels by copying', () => {
    const rgb = pngFile({ width: 2, height: 1, colorType: 2, samples: [255, 0, 0, 10, 20, 30] });
    assert.deepEqual(Array.from(imageFileToInput(rgb, 'rgb', same([1, 2], 1))), f32([(299 * 255) / 255000, (299 * 10 + 587 * 20 + 114 * 30) / 255000]));
    const g = pngFile({ width: 3, height: 1, colorType: 0, samples: [0, 77, 255] });
    assert.deepEqual(Array.from(imageFileToInput(g, 'g', same([1, 3], 1))), f32([0, 77 / 255, 1]));
    assert.deepEqual(Array.from(imageFileToInput(g, 'g', same([1, 3], 3))), f32([0, 0, 0, 77 / 255, 77 / 255, 77 / 255, 1, 1, 1]));
  });

  void it('decodes baseline, progressive and grey JPEGs within 2 levels of libjpeg', () => {
    for (const [jpg, reference] of [['rgb-baseline.jpg', 'rgb-baseline.ppm'], ['rgb-progressive.jpg', 'rgb-progressive.ppm'], ['grey.jpg', 'grey.pgm']] as const) {
      const image = decodeImage(fs.readFileSync(path.join(FIXTURES, jpg)), jpg);
      const want = readNetpbm(fs.readFileSync(path.join(FIXTURES, reference)));
      assert.deepEqual([image.width, image.height], [want.width, want.height], jpg);
      const got = Array.from({ length: image.width * image.height * want.channels }, (_, i) => image.data[want.channels === 3 ? i : 3 * i]!);
      assertClose(got, want.samples, 2, jpg);
    }
  });

  void it('reports corrupt, truncated, empty and foreign files naming them', () => {
    const png = pngFile({ width: 4, height: 4, colorType: 2, samples: new Array<number>(48).fill(9) });
    const jpg = fs.readFileSync(path.join(FIXTURES, 'rgb-baseline.jpg'));
    const crc = Buffer.from(png);
    crc[40] = crc[40]! ^ 0xff;
    assertDatasetError(() => decodeImage(png.subarray(0, png.length - 20), 'cut.png'), 'cut.png', 'corrupt or truncated PNG');
    assertDatasetError(() => decodeImage(crc, 'crc.png'), 'crc.png', 'corrupt or truncated PNG');
    assertDatasetError(() => decodeImage(jpg.subarray(0, jpg.length / 2), 'cut.jpg'), 'cut.jpg', 'corrupt or truncated JPEG');
    assertDatasetError(() => decodeImage(Buffer.alloc(0), 'empty.png'), 'empty.png', 'not a PNG or JPEG', 'empty');
    assertDatasetError(() => decodeImage(Buffer.from('GIF89a....'), 'pic.png'), 'pic.png', 'not a PNG or JPEG', '47 49 46 38');
  });
});

void describe('resizing', () => {
  // One row a = 0, b = 255 (as 0 and 1): bilinear with pixel centres samples at
  // (o + 0.5) · 2/4 − 0.5 = −0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
  void it('bilinear 2 → 4 interpolates between pixel centres and clamps at the edges', () => {
    const out = imageToInput(grey(2, 2, [0, 255, 0, 255]), { size: [2, 4], channels: 1, resize: 'bilinear' });
    assert.deepEqual(Array.from(out), f32([0, 0.25, 0.75, 1, 0, 0.25, 0.75, 1]));
  });

  void it('bilinear halving averages each 2 × 2 block; area averages the covered area', () => {
    const v = [0, 51, 102, 153, 204, 255, 0, 51, 102, 153, 204, 255, 0, 51, 102, 153];
    const block = (i: number): number => (v[i]! + v[i + 1]! + v[i + 4]! + v[i + 5]!) / 4 / 255;
    const want = f32([block(0), block(2), block(8), block(10)]);
    const image = grey(4, 4, v);
    assertClose(imageToInput(image, { size: [2, 2], channels: 1, resize: 'bilinear' }), want, 1e-7, 'bilinear');
    assertClose(imageToInput(image, { size: [2, 2], channels: 1, resize: 'area' }), want, 1e-7, 'area');
  });

  void it('area 3 → 2 weights the pixel split between two outputs', () => {
    // Output 0 covers input [0, 1.5): 2/3 of pixel 0 and 1/3 of pixel 1; output 1 the rest.
    const out = imageToInput(grey(3, 1, [0, 153, 255]), { size: [1, 2], channels: 1, resize: 'area' });
    assertClose(out, [((2 / 3) * 0 + (1 / 3) * 153) / 255, ((1 / 3) * 153 + (2 / 3) * 255) / 255], 1e-7, 'area 3 → 2');
  });

  void it('keeps channels apart and is the identity at the same size', () => {
    const rgb: DecodedImage = { width: 2, height: 1, stride: 3, data: Uint8Array.from([255, 0, 51, 0, 255, 102]) };
    const wide = imageToInput(rgb, { size: [1, 4], channels: 3, resize: 'bilinear' });
    assertClose(wide.subarray(3, 6), [0.75, 0.25, (0.75 * 51 + 0.25 * 102) / 255], 1e-7, 'second output pixel');
    assert.deepEqual(Array.from(imageToInput(rgb, { size: [1, 2], channels: 3, resize: 'area' })), f32([1, 0, 0.2, 0, 1, 0.4]));
  });
});

/** Writes `files` (relative path → bytes) under a new temporary folder. */
function folder(files: Record<string, Buffer | string>): string {
  const dir = tempDir('mtl-images-');
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return dir;
}

/** A 2 × 2 grey PNG of one level. */
const flat = (level: number): Buffer => pngFile({ width: 2, height: 2, colorType: 0, samples: [level, level, level, level] });
const spec = (overrides: Partial<ImagesSpec> = {}): ImagesSpec => ({ dataset: 'images', path: 'imgs', labels: 'from-folders', target: 'folder', size: [2, 2], channels: 1, resize: 'bilinear', testFraction: 0.25, seed: 0, ...overrides });

function readAll(split: Split, width: number, target: string): { levels: number[]; y: number[] } {
  const all = Uint32Array.from({ length: split.size }, (_, i) => i);
  const x = new Float32Array(split.size * width);
  const y = new Float32Array(split.size);
  split.inputs(all, x);
  split.targets(target, all, y);
  return { levels: Array.from({ length: split.size }, (_, j) => Math.round(x[j * width]! * 255)), y: Array.from(y) };
}

void describe('images dataset', () => {
  // Levels identify images: the class of level L is its folder.
  const files = {
    'imgs/dog/b.png': flat(20),
    'imgs/dog/a.png': flat(10),
    'imgs/cat/x.PNG': flat(30),
    'imgs/cat/deeper/y.jpg': fs.readFileSync(path.join(FIXTURES, 'grey.jpg')),
    'imgs/cat/notes.txt': 'not an image',
    'imgs/.hidden/z.png': flat(99),
    'imgs/.DS_Store.png': 'x',
    'labels.csv': 'file,colour,weight\nimgs/dog/a.png,brown,1.5\nimgs/dog/b.png,black,2\nimgs/cat/x.PNG,black,3.25\nimgs/cat/deeper/y.jpg,white,4\nother/elsewhere.png,red,5\n',
    'other/elsewhere.png': flat(1),
  };

  void it('lists PNG and JPEG files in sorted relative-path order, without hidden or other files', () => {
    const dir = folder(files);
    const { base, images } = listImages('imgs', dir);
    assert.equal(base, path.join(dir, 'imgs'));
    assert.deepEqual(images.map((i) => i.relative), ['cat/deeper/y.jpg', 'cat/x.PNG', 'dog/a.png', 'dog/b.png']);
    assert.deepEqual(listImages('imgs/dog/*.png', dir).images.map((i) => i.relative), ['a.png', 'b.png']);
    assert.deepEqual(listImages('imgs/*/*', dir).images.map((i) => i.relative), ['cat/x.PNG', 'dog/a.png', 'dog/b.png']);
  });

  void it('is batched by a digest of its decoded images, not by where the folder is', () => {
    const here = loadImages(spec(), folder(files), [classification('folder')]);
    const moved = folder(Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name.replace(/^imgs\//, 'photos/'), bytes])));
    assert.equal(loadImages(spec({ path: 'photos' }), moved, [classification('folder')]).identity, here.identity);
    assert.notEqual(loadImages(spec({ seed: 4 }), folder(files), [classification('folder')]).identity, here.identity);
    assert.notEqual(loadImages(spec({ size: [3, 3] }), folder(files), [classification('folder')]).identity, here.identity);
  });

  void it('takes classes from folder names (sorted) and splits by a seeded permutation of the sorted images', () => {
    const dir = folder(files);
    const ds = loadImages(spec({ testFraction: 0.5 }), dir, [classification('folder')]);
    assert.deepEqual(ds.inputShape, [2, 2, 1]);
    assert.deepEqual(ds.targets.folder, { kind: 'classification', classes: ['cat', 'dog'] });
    const train = readAll(ds.train, 4, 'folder');
    const test = readAll(ds.test, 4, 'folder');
    const classOf = new Map([[10, 1], [20, 1], [30, 0]]);
    const levels = [...train.levels, ...test.levels];
    const labels = [...train.y, ...test.y];
    assert.equal(levels.length, 4);
    levels.forEach((level, i) => {
      if (classOf.has(level)) assert.equal(labels[i], classOf.get(level), `level ${level}`);
      else assert.equal(labels[i], 0, 'the JPEG is in cat/deeper');
    });
    // The split is keyed by seed and image count: a copy elsewhere splits the same way.
    const moved = folder(files);
    assert.deepEqual(readAll(loadImages(spec({ testFraction: 0.5 }), moved, [classification('folder')]).test, 4, 'folder'), test);
  });

  void it('reads targets from a table (paths relative to it; rows for images outside `path` allowed), plus the folder target', () => {
    const dir = folder(files);
    const ds = loadImages(spec({ labels: 'labels.csv', target: 'colour' }), dir, [classification('colour'), regression('weight'), classification('folder')]);
    assert.deepEqual(ds.targets.colour, { kind: 'classification', classes: ['black', 'brown', 'white'] });
    const all = [...readAll(ds.train, 4, 'weight').levels, ...readAll(ds.test, 4, 'weight').levels];
    const weights = [...readAll(ds.train, 4, 'weight').y, ...readAll(ds.test, 4, 'weight').y];
    const byLevel = new Map(all.map((l, i) => [l, weights[i]] as const));
    assert.equal(byLevel.get(10), 1.5);
    assert.equal(byLevel.get(20), 2);
    assert.equal(byLevel.get(30), 3.25);
  });

  void it('names a table row whose image is missing, an image the table lacks, duplicates and bad cells', () => {
    const table = (text: string): string => folder({ ...files, 'labels.csv': text });
    const header = 'file,colour\nimgs/dog/a.png,brown\nimgs/dog/b.png,black\nimgs/cat/x.PNG,black\nimgs/cat/deeper/y.jpg,white\n';
    let dir = table(header + 'imgs/dog/gone.png,grey\n');
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), dir, [classification('colour')]), path.join(dir, 'labels.csv'), 'line 6', path.join(dir, 'imgs/dog/gone.png'));
    dir = table('file,colour\nimgs/dog/a.png,brown\nimgs/cat/x.PNG,black\nimgs/cat/deeper/y.jpg,white\n');
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), dir, [classification('colour')]), path.join(dir, 'imgs/dog/b.png'), 'not in the labels table');
    dir = table(header + 'imgs/dog/a.png,white\n');
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), dir, [classification('colour')]), 'lines 2 and 6', 'a.png');
    dir = table(files['labels.csv'].replace('black,2', 'black,heavy'));
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), dir, [regression('weight')]), 'line 3', 'column "weight"', '"heavy"');
    dir = table(header.replace('file,', 'path,'));
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), dir, [classification('colour')]), 'needs a "file" column');
    assertDatasetError(() => loadImages(spec({ labels: 'labels.csv' }), folder(files), [classification('size')]), 'no target "size"', 'folder, colour, weight');
  });

  void it('requires sub-folders for from-folders and reports empty folders, missing folders and corrupt images', () => {
    assertDatasetError(() => loadImages(spec(), folder({ 'imgs/a.png': flat(1), 'imgs/c/b.png': flat(2) }), [classification('folder')]), 'a.png', 'sub-folder');
    assertDatasetError(() => loadImages(spec(), folder({ 'imgs/notes.txt': 'x' }), []), 'no PNG or JPEG files');
    const dir = folder({});
    assertDatasetError(() => loadImages(spec(), dir, []), path.join(dir, 'imgs'), 'no such folder');
    const broken = flat(5).subarray(0, 40);
    const bad = folder({ 'imgs/a/1.png': flat(1), 'imgs/a/2.png': broken, 'imgs/b/3.png': flat(3) });
    assertDatasetError(() => loadImages(spec(), bad, [classification('folder')]), path.join(bad, 'imgs/a/2.png'), 'corrupt or truncated PNG');
  });

  void it('serves the same inputs from a cache of one image as from a full one, and a file broken after loading fails its batch', () => {
    const many: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) many[`imgs/${i % 3}/${String(i).padStart(2, '0')}.png`] = pngFile({ width: 3, height: 3, colorType: 0, samples: Array.from({ length: 9 }, (_, k) => (i * 20 + k) % 256) });
    const dir = folder(many);
    const options = spec({ size: [2, 2], resize: 'area' });
    const full = loadImages(options, dir, [classification('folder')]);
    const tiny = loadImages(options, dir, [classification('folder')], { cacheBytes: 16 });
    for (const split of ['train', 'test'] as const) {
      const indices = Uint32Array.from({ length: full[split].size }, (_, i) => full[split].size - 1 - i);
      const a = new Float32Array(indices.length * 4);
      const b = new Float32Array(indices.length * 4);
      full[split].inputs(indices, a);
      tiny[split].inputs(indices, b);
      tiny[split].inputs(indices, b);
      assert.deepEqual(b, a, split);
    }
    fs.writeFileSync(path.join(dir, 'imgs/0/00.png'), 'garbage');
    const all = Uint32Array.from({ length: tiny.train.size }, (_, i) => i);
    const allTest = Uint32Array.from({ length: tiny.test.size }, (_, i) => i);
    assertDatasetError(() => {
      tiny.train.inputs(all, new Float32Array(all.length * 4));
      tiny.test.inputs(allTest, new Float32Array(allTest.length * 4));
    }, path.join(dir, 'imgs/0/00.png'), 'not a PNG or JPEG');
  });
});
