// Types of preflight.mjs, for its unit test.
import type { SystemTool } from './system-tools.mjs';

export type PreflightPlan =
  | { kind: 'ready' }
  | { kind: 'install'; packages: string[]; commands: string[][] }
  | { kind: 'stop'; message: string };
export function missingTools(tools: readonly SystemTool[], lookup: (tool: SystemTool) => string | undefined): SystemTool[];
export function installCommand(packages: readonly string[], options: { isRoot: boolean }): string;
export function planPreflight(missing: readonly SystemTool[], options: { isRoot: boolean; hasAptGet: boolean; env?: NodeJS.ProcessEnv }): PreflightPlan;
export function afterInstallMessage(stillMissing: readonly SystemTool[], options: { env?: NodeJS.ProcessEnv; failedPackages?: readonly string[] }): string;
export function main(options?: { env?: NodeJS.ProcessEnv; tools?: readonly SystemTool[] }): number;
