// Watches the pairwise cosines of task gradients and reports a pair that has stayed in
// conflict (negative cosine) for `window` consecutive steps: the sign of negative transfer
// that conflict-aware aggregators exist for. Pure: the step loop feeds it, it returns events.

export interface ConflictWarning {
  tasks: [string, string];
  /** Consecutive steps with a negative cosine so far. */
  steps: number;
  /** Mean cosine over those steps. */
  meanCosine: number;
}

export class ConflictMonitor {
  private readonly streaks = new Map<string, { steps: number; sum: number; reported: boolean }>();

  constructor(
    private readonly tasks: readonly string[],
    private readonly window: number,
  ) {}

  /** Feeds one step's cosine matrix; returns the pairs whose conflict just reached the window. */
  observe(cosine: readonly (readonly number[])[]): ConflictWarning[] {
    if (this.window <= 0) return [];
    const out: ConflictWarning[] = [];
    for (let i = 0; i < this.tasks.length; i++) {
      for (let j = i + 1; j < this.tasks.length; j++) {
        const key = `${i}/${j}`;
        const c = cosine[i]?.[j] ?? 0;
        if (!(c < 0)) {
          this.streaks.delete(key);
          continue;
        }
        const s = this.streaks.get(key) ?? { steps: 0, sum: 0, reported: false };
        s.steps++;
        s.sum += c;
        this.streaks.set(key, s);
        if (s.steps >= this.window && !s.reported) {
          s.reported = true;
          out.push({ tasks: [this.tasks[i]!, this.tasks[j]!], steps: s.steps, meanCosine: s.sum / s.steps });
        }
      }
    }
    return out;
  }
}
