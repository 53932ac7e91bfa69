// The exit codes of every mtl command: 0 success, 1 the work failed, 2 bad usage or input.
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
