// The layout of datasets in the JetStream object store `mtl-data`: a dataset NAME is one object
// per file, `NAME/relative/path`, plus a manifest object `NAME.manifest.json` listing every file
// with its size and SHA-256. The manifest is written last (it is what makes a dataset exist),
// and readers trust the digests it lists, never the bytes alone.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { DatasetError } from '../errors.js';

export const DATA_BUCKET = 'mtl-data';
export const MANIFEST_SUFFIX = '.manifest.json';

export const manifestObject = (dataset: string): string => `${dataset}${MANIFEST_SUFFIX}`;
export const fileObject = (dataset: string, inside: string): string => `${dataset}/${inside}`;

const manifestSchema = z.strictObject({
  kind: z.literal('mtl-dataset'),
  version: z.literal(1),
  name: z.string(),
  files: z.array(
    z.strictObject({
      path: z.string().min(1),
      size: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    }),
  ),
  createdAt: z.string(),
});

export type DatasetManifest = z.output<typeof manifestSchema>;
export type ManifestFile = DatasetManifest['files'][number];

/**
 * The dataset's digest: SHA-256 of its file list (paths, sizes and file digests, in path order).
 * Equal for equal content however and whenever it was stored.
 */
export function datasetDigest(files: readonly ManifestFile[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) hash.update(`${f.path}\u0000${f.size}\u0000${f.sha256}\n`);
  return hash.digest('hex');
}

export function encodeManifest(manifest: DatasetManifest): Uint8Array {
  return Buffer.from(JSON.stringify(manifest, null, 1));
}

/** Parses and checks a manifest read from the store; `where` names it in errors. */
export function decodeManifest(bytes: Uint8Array, dataset: string, where: string): DatasetManifest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new DatasetError(`${where}: the manifest of dataset ${dataset} is not JSON: ${(err as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DatasetError(`${where}: the manifest of dataset ${dataset} is malformed at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  if (parsed.data.name !== dataset) throw new DatasetError(`${where}: the manifest names dataset ${parsed.data.name}, not ${dataset}`);
  return parsed.data;
}
