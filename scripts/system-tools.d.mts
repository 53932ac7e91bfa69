// Types of system-tools.mjs, for the tests that import it.
export interface SystemTool {
  readonly name: string;
  /** The environment variable that names the binary instead of the usual places. */
  readonly envVar: string | undefined;
  readonly debianPackage: string;
  readonly usedBy: string;
  readonly searched: string;
  readonly hint?: string;
  candidates(env: NodeJS.ProcessEnv): string[];
}
export interface LocateOptions {
  env?: NodeJS.ProcessEnv;
  isExecutable?: (file: string) => boolean;
}
export const SYSTEM_TOOLS: readonly SystemTool[];
export function isExecutableFile(file: string): boolean;
export function findOnPath(command: string, env?: NodeJS.ProcessEnv): string | undefined;
export function systemTool(name: string): SystemTool;
export function toolCandidates(tool: SystemTool, env?: NodeJS.ProcessEnv): string[];
export function locateTool(tool: SystemTool, options?: LocateOptions): string | undefined;
export function describeLookup(tool: SystemTool, env?: NodeJS.ProcessEnv): string;
export function requireTool(name: string, env?: NodeJS.ProcessEnv): string;
