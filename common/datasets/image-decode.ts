// Image files to model inputs: decode a PNG or JPEG, convert its channels, resize, scale to
// [0, 1]. Everything here is a pure function of the file's bytes, in plain JavaScript (pngjs,
// jpeg-js and the loops below; no tfjs backend, no native code), so every machine and backend
// gets bitwise the same inputs: the determinism rule of docs/design.md.
//
// Rules (docs: "images" dataset):
// - the format comes from the file's signature, not its name;
// - PNG: any bit depth and colour type, palette and transparency expanded; 16-bit samples are
//   reduced to 8 bits (pngjs: round(v · 255 / 65535)); JPEG: baseline and progressive, grey,
//   YCbCr and CMYK (jpeg-js, strict mode: a malformed stream is an error; subsampled chroma is
//   upsampled by replication, like libjpeg's djpeg -nosmooth); EXIF orientation is not applied;
// - alpha is dropped (the colour values are used as stored, as PIL's convert('RGB') does);
// - channels 3: R, G, B; channels 1: the ITU-R BT.601 luma (299 R + 587 G + 114 B) / 1000, as
//   PIL's convert('L') without its rounding to an integer; a grey image gives its grey value;
// - values are divided by 255;
// - resize (only when the size differs): `bilinear` samples at pixel centres (half-pixel
//   offsets, edges clamped: TensorFlow's resize_bilinear with half_pixel_centers, OpenCV's
//   INTER_LINEAR); `area` averages the input area each output pixel covers (a box filter, for
//   shrinking without aliasing). Separable, rows first, in double precision; rounded to float32 once.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DatasetError } from '../errors.js';

export type ResizeMethod = 'bilinear' | 'area';

export interface DecodedImage {
  readonly width: number;
  readonly height: number;
  /** 8-bit samples, `stride` per pixel (R, G, B first), row-major. */
  readonly data: Uint8Array;
  readonly stride: 3 | 4;
}

export interface PixelOptions {
  /** [height, width] of the result. */
  size: readonly [number, number];
  channels: 1 | 3;
  resize: ResizeMethod;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function imageFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Decodes a PNG or JPEG file's bytes; any problem is a DatasetError naming `file`. */
export function decodeImage(bytes: Buffer, file: string): DecodedImage {
  const format = imageFormat(bytes);
  if (format === undefined) {
    const head = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DatasetError(`${file}: not a PNG or JPEG file (it starts with ${head || 'nothing: the file is empty'})`);
  }
  let image: DecodedImage;
  try {
    if (format === 'png') {
      const png = PNG.sync.read(bytes);
      image = { width: png.width, height: png.height, data: png.data, stride: 4 };
    } else {
      const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP: 200, maxMemoryUsageInMB: 2048 });
      image = { width: decoded.width, height: decoded.height, data: decoded.data, stride: 3 };
    }
  } catch (err) {
    throw new DatasetError(`${file}: corrupt or truncated ${format === 'png' ? 'PNG' : 'JPEG'} file (${(err as Error).message})`, { cause: err });
  }
  if (!(image.width > 0 && image.height > 0) || image.data.length < image.width * image.height * image.stride) {
    throw new DatasetError(`${file}: corrupt ${format === 'png' ? 'PNG' : 'JPEG'} file: it decodes to ${image.width}×${image.height} pixels with ${image.data.length} bytes`);
  }
  return image;
}

/** One output coordinate's input taps: first index and weights (summing to 1). */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  /** `count[o]` weights per output o, concatenated. */
  weights: Float64Array;
  offsets: Int32Array;
}

function buildTaps(size: number, out: number, method: ResizeMethod): Taps {
  const first = new Int32Array(out);
  const count = new Int32Array(out);
  const offsets = new Int32Array(out);
  const weights: number[] = [];
  const scale = size / out;
  for (let o = 0; o < out; o++) {
    offsets[o] = weights.length;
    if (method === 'bilinear') {
      const s = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), size - 1);
      const i0 = Math.floor(s);
      const f = s - i0;
      first[o] = i0;
      if (f > 0 && i0 + 1 < size) {
        count[o] = 2;
        weights.push(1 - f, f);
      } else {
        count[o] = 1;
        weights.push(1);
      }
    } else {
      // (o · size) / out rather than o · scale: exact whenever out divides o · size.
      const a = (o * size) / out;
      const b = ((o + 1) * size) / out;
      const i0 = Math.floor(a);
      const i1 = Math.min(Math.ceil(b), size);
      first[o] = i0;
      count[o] = i1 - i0;
      for (let i = i0; i < i1; i++) weights.push((Math.min(b, i + 1) - Math.max(a, i)) / scale);
    }
  }
  return { first, count, weights: Float64Array.from(weights), offsets };
}

/** The image's source row `y` in the output channels, scaled to [0, 1], into `row` (width × channels). */
function convertRow(image: DecodedImage, y: number, channels: 1 | 3, row: Float64Array): void {
  const { data, stride, width } = image;
  let p = y * width * stride;
  if (channels === 3) {
    for (let x = 0; x < width; x++, p += stride) {
      row[3 * x] = data[p]! / 255;
      row[3 * x + 1] = data[p + 1]! / 255;
      row[3 * x + 2] = data[p + 2]! / 255;
    }
  } else {
    for (let x = 0; x < width; x++, p += stride) row[x] = (299 * data[p]! + 587 * data[p + 1]! + 114 * data[p + 2]!) / 255000;
  }
}

/** The model input of a decoded image: [height, width, channels] row-major float32 in [0, 1]. */
export function imageToInput(image: DecodedImage, options: PixelOptions): Float32Array {
  const [outH, outW] = options.size;
  const c = options.channels;
  const out = new Float32Array(outH * outW * c);
  const row = new Float64Array(image.width * c);
  if (image.width === outW && image.height === outH) {
    for (let y = 0; y < outH; y++) {
      convertRow(image, y, c, row);
      for (let i = 0; i < row.length; i++) out[y * row.length + i] = row[i]!;
    }
    return out;
  }
  // Rows first: every source row resized to outW (into `wide`), then the columns to outH.
  const h = buildTaps(image.width, outW, options.resize);
  const v = buildTaps(image.height, outH, options.resize);
  const wide = new Float64Array(image.height * outW * c);
  for (let y = 0; y < image.height; y++) {
    convertRow(image, y, c, row);
    const base = y * outW * c;
    for (let x = 0; x < outW; x++) {
      const first = h.first[x]!;
      const n = h.count[x]!;
      const w0 = h.offsets[x]!;
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let t = 0; t < n; t++) sum += h.weights[w0 + t]! * row[(first + t) * c + k]!;
        wide[base + x * c + k] = sum;
      }
    }
  }
  const line = outW * c;
  for (let y = 0; y < outH; y++) {
    const first = v.first[y]!;
    const n = v.count[y]!;
    const w0 = v.offsets[y]!;
    for (let i = 0; i < line; i++) {
      let sum = 0;
      for (let t = 0; t < n; t++) sum += v.weights[w0 + t]! * wide[(first + t) * line + i]!;
      out[y * line + i] = sum;
    }
  }
  return out;
}

/** decodeImage, then imageToInput. */
export function imageFileToInput(bytes: Buffer, file: string, options: PixelOptions): Float32Array {
  return imageToInput(decodeImage(bytes, file), options);
}
