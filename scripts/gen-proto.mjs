#!/usr/bin/env node
// Generates the TypeScript types of proto/ into proto/generated (or the directory given as
// the first argument, which the staleness test uses). The same loader options are used at
// run time in common/protocol.ts (PROTO_LOADER_OPTIONS); keep the two in step.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'proto', 'generated'));
const require = createRequire(import.meta.url);
const generator = path.join(path.dirname(require.resolve('@grpc/proto-loader/package.json')), 'build', 'bin', 'proto-loader-gen-types.js');

rmSync(outDir, { recursive: true, force: true });
const args = [
  generator,
  'mtl/v1/coordinator.proto',
  '--grpcLib', '@grpc/grpc-js',
  '--outDir', outDir,
  '--longs', 'Number', '--enums', 'String', '--defaults', '--oneofs',
  '--importFileExtension', '.js',
  '--includeComments',
  `--includeDirs=${path.join(root, 'proto')}`,
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

// The generator writes the absolute path of the .proto into each file; make it relative so
// the output is the same on every machine (the staleness test compares it byte for byte).
for (const entry of readdirSync(outDir, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile()) continue;
  const file = path.join(entry.parentPath, entry.name);
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replaceAll(`Original file: ${path.join(root, 'proto')}${path.sep}`, 'Original file: proto/'));
}
