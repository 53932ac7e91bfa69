// `mtl validate JOB`: the job and its data checked as for a run, nothing trained.
// 0 valid · 2 invalid, or (with --strict) valid with warnings · 1 remote data unreachable.
import { ControlPlaneError, DataFetchError, errorMessage } from '../common/errors.js';
import { showShape } from '../common/input-shapes.js';
import { createLogger } from '../common/logging.js';
import type { GraphInput, GraphLayout } from '../common/model-graph.js';
import type { PreparedRun } from '../coordinator/prepare-run.js';
import { materializeOptions, type DataFlags } from './data-options.js';
import { EXIT } from './exit-codes.js';
import { prepare } from './run-setup.js';
import { reportLines, taskDataReport } from './task-report.js';
import { loadNatsFlags, type NatsSecurityFlags } from './security-options.js';

export interface ValidateCommandOptions extends DataFlags, NatsSecurityFlags {
  json: boolean;
  /** Warnings (a batch larger than a task's data) fail the check too. */
  strict: boolean;
}

export async function validateCommand(jobFile: string, opts: ValidateCommandOptions): Promise<number> {
  const security = opts.dataNats === undefined ? {} : loadNatsFlags(opts);
  if (security === null) return EXIT.usage;
  let prepared: PreparedRun | undefined;
  try {
    prepared = await prepare(jobFile, { data: materializeOptions(opts, createLogger({ component: 'data', defaultLevel: 'warn' }), { security }) });
  } catch (err) {
    if (!(err instanceof DataFetchError || err instanceof ControlPlaneError)) throw err;
    process.stderr.write(`${jobFile}: ${errorMessage(err)}\n`);
    return EXIT.failed;
  }
  if (!prepared) return EXIT.usage;
  const { layout, loaded, testSizes, bindings, warnings } = prepared;
  const info = {
    job: loaded.spec.name,
    tasks: Object.fromEntries(
      [...bindings].map(([t, b]) => [t, { dataset: b.dataset.description, target: b.target, train: b.dataset.train.size, test: testSizes.get(t), ...taskDataReport(loaded.spec.tasks[t]!.data, b) }]),
    ),
    inputShape: layout.inputShape,
    taskInputShapes: Object.fromEntries(layout.taskInputShapes),
    parameters: {
      total: layout.totalSize,
      shared: layout.shared.size,
      heads: Object.fromEntries([...layout.headGroups].map(([t, g]) => [t, g.size])),
      frozen: layout.frozen.size,
      state: layout.state.size,
    },
    ...(layout.graph
      ? {
          model: {
            inputs: layout.graph.inputs,
            outputs: Object.fromEntries(layout.graph.outputs),
            layers: layout.graph.rows,
            partiallyShared: layout.graph.partiallyShared,
          },
        }
      : {}),
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
    for (const [t, v] of Object.entries(info.tasks)) {
      process.stdout.write(`  task ${t} (target ${v.target}): ${v.dataset}\n`);
      for (const line of reportLines(v)) process.stdout.write(`    ${line}\n`);
    }
    if (layout.graph) process.stdout.write(graphTable(layout.graph, layout.frozen.size, layout.state.size));
  }
  return EXIT.ok;
}

/** For an input whose sizes the model leaves unknown: where the sizes came from, and what the export declares. */
function declaredNote(input: GraphInput, exported: boolean): string {
  if (!input.declared) return '';
  const own = showShape(input.declared);
  return ` (the model's ${own}, sizes from the data; the exported model ${exported ? `keeps ${own}` : `is fixed to [${input.shape.join(', ')}]: a layer's weights depend on the sizes`})`;
}

/** The model's layers: weights, parameter count and which tasks share them (what is aggregated where). */
function graphTable(graph: GraphLayout, frozen: number, state: number): string {
  const rows = [['layer', 'class', 'weights', 'parameters', 'group', 'tasks'], ...graph.rows.map((r) => [r.layer, r.className, String(r.weights.length), String(r.parameters), r.group, r.tasks.join(', ') || '-'])];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => '    ' + r.map((cell, c) => (c === 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd());
  const inputs = graph.inputs.map((i) => `${i.name} [${i.shape.join(', ')}] ${i.dtype}${declaredNote(i, graph.spec.exportDeclared === true)}`).join(', ');
  const outputs = [...graph.outputs].map(([t, o]) => `${t} ← ${o.layer} [${o.shape.join(', ')}]`).join(', ');
  const notes = [
    `  model inputs: ${inputs}; task outputs: ${outputs}`,
    `  ${frozen} frozen parameters (never sent as gradients), ${state} state values (BatchNormalization statistics)`,
    ...(graph.partiallyShared.length > 0
      ? [`  note: ${graph.partiallyShared.join(', ')} ${graph.partiallyShared.length === 1 ? 'feeds' : 'feed'} some but not all tasks; only those tasks take part in aggregating them (one aggregation per task set)`]
      : []),
  ];
  return [...notes, '  layers:', ...lines].join('\n') + '\n';
}
