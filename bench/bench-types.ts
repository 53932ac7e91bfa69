export interface BenchResult {
  /** Human-readable report (tables, goals). */
  text: string;
  /** Machine-readable results (`--json`). */
  json: Record<string, unknown>;
}

export interface Bench {
  name: string;
  description: string;
  /**
   * Options used when the bench runs as part of the whole suite (`npm run bench` without names)
   * and the command line does not set them, e.g. a smaller grid, to keep the suite short.
   */
  suiteDefaults?: Readonly<Record<string, string>>;
  /** `args` are the command line (the bench picks its own options); `progress` reports on stderr. */
  run(args: readonly string[], progress: (line: string) => void): Promise<BenchResult>;
}

/** Median wall time in ms of `reps` runs of `fn` after one warm-up run. */
export function medianMs(fn: () => void, reps: number): number {
  fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** Value of `--name value` or `--name=value` in args. */
export function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}
