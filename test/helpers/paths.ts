// Locations the tests need. Compiled tests live in dist/test/<kind>/, so the repository root
// is three levels up from them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');
export const EXAMPLES = path.join(REPO_ROOT, 'examples');
