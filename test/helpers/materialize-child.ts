// A separate process that materializes one nats:// reference into a cache directory and prints
// the SHA-256 of what it reads (test/integration/data-store.test.ts runs several at once).
// Usage: node materialize-child.js NATS_URL CACHE_DIR REF
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { materializeData, resolveDataPath } from '../../common/data-store/materialize.js';

const [url, cacheDir, ref] = process.argv.slice(2) as [string, string, string];
await materializeData({ tasks: { t: { data: { path: ref } } } }, { cacheDir, nats: { url }, retry: { budgetMs: 20_000, initialMs: 50, maxMs: 500, idleMs: 5_000 } });
const sha256 = createHash('sha256').update(readFileSync(resolveDataPath(ref, '/'))).digest('hex');
process.stdout.write(`${JSON.stringify({ sha256 })}\n`);
process.exit(0);
