// `mtl validate JOB`: the job and its data checked as for a run, nothing trained.
// 0 valid · 2 invalid, or (with --strict) valid with warnings.
import { EXIT } from './exit-codes.js';
import { prepare } from './run-setup.js';

export interface ValidateCommandOptions {
  json: boolean;
  /** Warnings (a batch larger than a task's data) fail the check too. */
  strict: boolean;
}

export function validateCommand(jobFile: string, opts: ValidateCommandOptions): number {
  const prepared = prepare(jobFile);
  if (!prepared) return EXIT.usage;
  const { layout, loaded, testSizes, bindings, warnings } = prepared;
  const info = {
    job: loaded.spec.name,
    tasks: Object.fromEntries([...bindings].map(([t, b]) => [t, { dataset: b.dataset.description, target: b.target, train: b.dataset.train.size, test: testSizes.get(t) }])),
    inputShape: layout.inputShape,
    taskInputShapes: Object.fromEntries(layout.taskInputShapes),
    parameters: { total: layout.totalSize, shared: layout.shared.size, heads: Object.fromEntries([...layout.headGroups].map(([t, g]) => [t, g.size])) },
    warnings,
  };
  if (opts.strict && warnings.length > 0) {
    process.stderr.write(`${jobFile}: ${warnings.length} warning(s), which --strict makes errors\n`);
    return EXIT.usage;
  }
  if (opts.json) process.stdout.write(JSON.stringify(info) + '\n');
  else {
    process.stdout.write(`${jobFile}: valid${warnings.length > 0 ? ` (${warnings.length} warning(s) above)` : ''}\n`);
    const adapted = [...layout.adapters.keys()].map((t) => `, ${t} [${layout.taskInputShapes.get(t)!.join(', ')}] through its adapter`).join('');
    const experts = layout.experts ? `, ${layout.experts.type} with ${layout.experts.levels.length} level(s)` : '';
    process.stdout.write(`  input [${layout.inputShape.join(', ')}]${adapted}${experts}, ${layout.totalSize} parameters (${layout.shared.size} shared)\n`);
    for (const [t, v] of Object.entries(info.tasks)) process.stdout.write(`  task ${t} (target ${v.target}): ${v.dataset}\n`);
  }
  return EXIT.ok;
}
