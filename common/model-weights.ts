// The weights of a TF.js Layers model file: the manifest's entries, the shards they are cut
// into, and their values, dequantized (uint8 / uint16 with scale and min, float16) to float32.
//
// Weights are decoded here rather than with tf.io.decodeWeights: that one is synchronous and
// dequantizes the same way (value · scale + min, in double precision, stored as float32; int32
// rounded; float16 as IEEE half), but it makes a tensor of every weight, which needs an
// initialized backend and, on wasm, grows the module's heap (it never shrinks) by the whole
// model just to read the values back. The tests check both decodings agree.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ModelFileError, errorMessage } from './errors.js';
import { decodeHalf } from './half-precision.js';
import { isJsonObject } from './keras-topology.js';

export type WeightValues = Map<string, { shape: number[]; dtype: 'float32' | 'int32'; values: Float32Array | Int32Array }>;


interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: 'uint8' | 'uint16'; scale: number; min: number } | { dtype: 'float16' };
  at: string;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

function specByteLength(spec: WeightSpec): number {
  return spec.shape.reduce((a, b) => a * b, 1) * BYTES[spec.quantization?.dtype ?? spec.dtype]!;
}

function parseSpec(file: string, value: unknown, at: string): WeightSpec {
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem, { jsonPath: at });
  };
  if (!isJsonObject(value)) return bad('a weight entry is not an object');
  const { name, shape, dtype, quantization } = value;
  if (typeof name !== 'string' || name === '') return bad('a weight entry has no name');
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) return bad(`weight "${name}": shape ${JSON.stringify(shape)} is not a list of sizes`);
  if (dtype !== 'float32' && dtype !== 'int32') return bad(`weight "${name}": dtype ${JSON.stringify(dtype)} is not supported (float32 and int32 are)`);
  const spec: WeightSpec = { name, shape: shape as number[], dtype, at };
  if (quantization !== undefined && quantization !== null) {
    if (!isJsonObject(quantization)) return bad(`weight "${name}": quantization is not an object`);
    const q = quantization.dtype;
    if (q === 'uint8' || q === 'uint16') {
      const { scale, min } = quantization;
      if (typeof scale !== 'number' || typeof min !== 'number' || !Number.isFinite(scale) || !Number.isFinite(min)) return bad(`weight "${name}": ${q} quantization needs finite scale and min`);
      spec.quantization = { dtype: q, scale, min };
    } else if (q === 'float16') {
      if (dtype !== 'float32') return bad(`weight "${name}": float16 quantization is for float32 weights, not ${dtype}`);
      spec.quantization = { dtype: q };
    } else {
      return bad(`weight "${name}": unknown quantization dtype ${JSON.stringify(q)} (uint8, uint16 and float16 are known)`);
    }
  }
  return spec;
}

/** A shard path inside the model's directory; an absolute path, a URL or a `..` path is refused. */
function shardPath(file: string, dir: string, p: unknown, at: string): string {
  if (typeof p !== 'string' || p === '') throw new ModelFileError(file, 'a weight shard path is not a string', { jsonPath: at });
  const resolved = path.resolve(dir, p);
  const rel = path.relative(dir, resolved);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p) || path.isAbsolute(p) || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new ModelFileError(file, `weight shard ${JSON.stringify(p)} is not a file beside the model (only paths relative to its directory are read)`, { jsonPath: at });
  }
  return resolved;
}

/**
 * The weights a model.json's manifest describes, read from its shards next to `file` and
 * decoded; none (only the shard lists) when any shard is absent.
 */
export function readWeights(file: string, manifest: unknown): { weights?: WeightValues; shards: string[]; missingShards: string[] } {
  if (manifest === undefined || manifest === null) return { weights: new Map(), shards: [], missingShards: [] };
  if (!Array.isArray(manifest)) throw new ModelFileError(file, 'weightsManifest is not a list', { jsonPath: 'weightsManifest' });
  const dir = path.dirname(file);
  const groups = manifest.map((group: unknown, g) => {
    const at = `weightsManifest[${g}]`;
    if (!isJsonObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelFileError(file, 'a weights group needs a list of paths and a list of weights', { jsonPath: at });
    }
    const specs = group.weights.map((w, i) => parseSpec(file, w, `${at}.weights[${i}]`));
    const shards = group.paths.map((p, i) => ({ written: p as string, file: shardPath(file, dir, p, `${at}.paths[${i}]`) }));
    return { at, specs, shards };
  });
  const seen = new Set<string>();
  for (const spec of groups.flatMap((g) => g.specs)) {
    if (seen.has(spec.name)) throw new ModelFileError(file, `two weights are named "${spec.name}"`, { jsonPath: spec.at });
    seen.add(spec.name);
  }
  const sizes = new Map<string, number>();
  const missingShards: string[] = [];
  for (const shard of groups.flatMap((g) => g.shards)) {
    try {
      const st = statSync(shard.file);
      if (!st.isFile()) throw new Error('not a file');
      sizes.set(shard.file, st.size);
    } catch {
      missingShards.push(shard.written);
    }
  }
  const shards = groups.flatMap((g) => g.shards.map((sh) => sh.written));
  if (missingShards.length > 0) return { shards, missingShards };
  const weights: WeightValues = new Map();
  for (const group of groups) {
    const need = group.specs.reduce((n, s) => n + specByteLength(s), 0);
    checkShardSizes(file, group.at, group.shards.map((s) => ({ ...s, size: sizes.get(s.file)! })), need);
    const bytes = Buffer.concat(
      group.shards.map((s) => {
        try {
          return readFileSync(s.file);
        } catch (err) {
          throw new ModelFileError(file, `cannot read weight shard ${s.written}: ${errorMessage(err)}`, { jsonPath: group.at }, { cause: err });
        }
      }),
    );
    let offset = 0;
    for (const spec of group.specs) {
      const n = specByteLength(spec);
      weights.set(spec.name, decodeWeight(spec, bytes.subarray(offset, offset + n)));
      offset += n;
    }
  }
  return { weights, shards, missingShards };
}

/**
 * The shards of a group must hold exactly the bytes its weights need. The converter writes
 * shards of one size except the last, so a short shard among them is the truncated one;
 * otherwise it is the last.
 */
function checkShardSizes(file: string, at: string, shards: Array<{ written: string; size: number }>, need: number): void {
  const have = shards.reduce((n, s) => n + s.size, 0);
  if (have === need) return;
  const full = shards.length > 1 ? Math.max(...shards.slice(0, -1).map((s) => s.size)) : 0;
  const short = shards.findIndex((s, i) => i < shards.length - 1 && s.size < full);
  const culprit = short >= 0 ? short : shards.length - 1;
  const expected = short >= 0 ? full : need - full * (shards.length - 1);
  const shard = shards[culprit];
  if (shard === undefined) throw new ModelFileError(file, `the group's weights need ${need} bytes, but it lists no shard`, { jsonPath: at });
  const what = have < need ? 'truncated' : 'longer than its weights';
  throw new ModelFileError(
    file,
    `weight shard ${shard.written} is ${what}: it has ${shard.size} bytes, ${Math.max(expected, 0)} expected (the group's weights need ${need} bytes, its shards hold ${have})`,
    { jsonPath: at },
  );
}

function decodeWeight(spec: WeightSpec, bytes: Buffer): { shape: number[]; dtype: 'float32' | 'int32'; values: Float32Array | Int32Array } {
  // Copy the bytes out (aligned, and owned by this weight rather than by the whole shard).
  const own = new Uint8Array(bytes);
  const q = spec.quantization;
  let values: Float32Array | Int32Array;
  if (q === undefined) {
    values = spec.dtype === 'float32' ? new Float32Array(own.buffer) : new Int32Array(own.buffer);
  } else if (q.dtype === 'float16') {
    values = decodeHalf(new Uint16Array(own.buffer), 'fp16');
  } else {
    const codes = q.dtype === 'uint8' ? own : new Uint16Array(own.buffer);
    values = spec.dtype === 'float32' ? new Float32Array(codes.length) : new Int32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const v = codes[i]! * q.scale + q.min;
      values[i] = spec.dtype === 'float32' ? v : Math.round(v);
    }
  }
  return { shape: [...spec.shape], dtype: spec.dtype, values };
}

