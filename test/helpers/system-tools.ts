// The system tools' lookup of npm test's preflight (scripts/system-tools.mjs), so that a test
// runs the very binary the preflight checked. It stays a plain .mjs because the preflight runs
// before the build; compiled tests load it from the repository root.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as SystemTools from '../../scripts/system-tools.mjs';
import { REPO_ROOT } from './paths.js';

export const systemTools = (await import(pathToFileURL(path.join(REPO_ROOT, 'scripts', 'system-tools.mjs')).href)) as typeof SystemTools;

/** The tool's path (its environment variable, else the usual places); throws naming the Debian package when missing. */
export const requireTool: (typeof SystemTools)['requireTool'] = systemTools.requireTool;
