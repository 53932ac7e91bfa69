// The run's aggregator when some shared parameters are reached by only some of the tasks (a
// model of the user's with, e.g., a tower two of three tasks share): the shared range is cut by
// task set (ParameterLayout.sharedGroups) and each group is aggregated by its own instance of
// the job's method, over the gradients of the active tasks that reach it. A task that does not
// reach a parameter has a zero gradient there; leaving it out of that group's aggregation is
// what keeps it from diluting the others' (a zero row pulls MGDA's min-norm point to zero, and
// a mean over T rows shrinks by the missing ones).
//
// The every-task group's instance gives the step's task weights and loss weights (it sees every
// active task); a group with no active task gets a zero direction. State (checkpoints) is the
// instances' states by group, so a resumed run continues each one.
import type { ParameterLayout, SharedGroup } from '../../common/parameter-layout.js';
import { gramian } from './gramian.js';
import { createAggregator } from './registry.js';
import type { AggregationInput, AggregationResult, Aggregator, AggregatorContext } from './types.js';

interface GroupedState {
  readonly groups: Readonly<Record<string, unknown>>;
}

const groupKey = (group: SharedGroup): string => group.tasks.join('+');

export class GroupedAggregator implements Aggregator {
  readonly name: string;
  private readonly instances: Aggregator[];

  /** `groups` as in the layout: offsets absolute, the every-task group first. */
  constructor(
    private readonly groups: readonly SharedGroup[],
    private readonly sharedOffset: number,
    create: () => Aggregator,
  ) {
    this.instances = groups.map(() => create());
    this.name = this.instances[0]!.name;
  }

  aggregate(input: AggregationInput): AggregationResult {
    const tasks = input.tasks;
    if (!tasks || tasks.length !== input.grads.length) throw new RangeError('a grouped aggregation needs the task of every gradient row (input.tasks)');
    const p = input.grads[0]?.length ?? 0;
    const out = input.out ?? new Float32Array(p);
    let main: AggregationResult | undefined;
    const notes: string[] = [];
    this.groups.forEach((group, g) => {
      const from = group.offset - this.sharedOffset;
      const part = out.subarray(from, from + group.size);
      const members = tasks.flatMap((t, i) => (group.tasks.includes(t) ? [i] : []));
      if (members.length === 0) {
        part.fill(0);
        return;
      }
      const grads = members.map((i) => input.grads[i]!.subarray(from, from + group.size));
      const result = this.instances[g]!.aggregate({
        grads,
        losses: members.map((i) => input.losses[i]!),
        step: input.step,
        tasks: members.map((i) => tasks[i]!),
        gramian: gramian(grads),
        out: part,
      });
      if (result.direction !== part) part.set(result.direction);
      if (g === 0) main = result;
      for (const note of result.notes ?? []) notes.push(g === 0 ? note : `${groupKey(group)}: ${note}`);
    });
    return {
      direction: out,
      // The every-task group, when a task is active (else no weights: sequential stages of tasks that share nothing with the rest).
      weights: main?.weights ?? [],
      ...(main?.lossWeights ? { lossWeights: main.lossWeights } : {}),
      ...(notes.length > 0 ? { notes } : {}),
    };
  }

  state(): GroupedState {
    return { groups: Object.fromEntries(this.groups.map((group, g) => [groupKey(group), this.instances[g]!.state()])) };
  }

  restore(state: unknown): void {
    const groups = (state as Partial<GroupedState> | null)?.groups;
    if (typeof groups !== 'object' || groups === null) throw new TypeError('the checkpoint holds the state of one aggregator, but this model aggregates its shared parameters by task set');
    this.groups.forEach((group, g) => {
      const key = groupKey(group);
      if (!(key in groups)) throw new TypeError(`the checkpoint's aggregator state has no group ${key}`);
      this.instances[g]!.restore(groups[key]);
    });
  }
}

/** The job's aggregator for `layout`: one instance, or one per shared task set (GroupedAggregator). */
export function createRunAggregator(layout: ParameterLayout, name: string, options: Record<string, unknown>, context: Partial<AggregatorContext>): Aggregator {
  const groups = layout.sharedGroups;
  if (!groups || groups.length < 2) return createAggregator(name, options, context);
  return new GroupedAggregator(groups, layout.shared.offset, () => createAggregator(name, options, context));
}
