// Looks methods up by name and validates their options (defaults applied by each method's
// schema). Problems are reported as JobSpecError issues under `training.aggregator`.
import { JobSpecError } from '../../common/errors.js';
import { nearestName } from '../../common/nearest-name.js';
import { specIssues } from '../../common/spec-issues.js';
import * as methods from './methods/index.js';
import type { Aggregator, AggregatorContext, AggregatorDefinition } from './types.js';

const definitions = new Map<string, AggregatorDefinition>(
  Object.values(methods as Record<string, AggregatorDefinition>).map((d) => [d.name, d]),
);

/** Names of every available method, sorted. */
export const aggregatorNames: readonly string[] = Object.freeze([...definitions.keys()].sort());

/** The definition of a method (summary, reference, options schema), or undefined. */
export function aggregatorDefinition(name: string): AggregatorDefinition | undefined {
  return definitions.get(name);
}

/** Creates a method by name. Unknown names and bad options throw JobSpecError. */
export function createAggregator(name: string, options: Record<string, unknown> = {}, context: Partial<AggregatorContext> = {}): Aggregator {
  const definition = definitions.get(name);
  if (!definition) {
    const near = nearestName(name, aggregatorNames);
    throw new JobSpecError('aggregator', [
      { path: 'training.aggregator.name', message: `unknown aggregator ${JSON.stringify(name)}${near !== undefined ? `; did you mean \`${near}\`?` : ''} (available: ${aggregatorNames.join(', ')})` },
    ]);
  }
  const parsed = definition.options.safeParse(options, { reportInput: true });
  if (!parsed.success) throw new JobSpecError('aggregator', specIssues(parsed.error, ['training', 'aggregator'], { schema: definition.options, input: options }));
  return definition.create(parsed.data, { seed: context.seed ?? 0 });
}
