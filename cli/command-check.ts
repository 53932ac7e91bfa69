// Unknown command names, found before commander parses: commander answers `mtl predict --help`
// with the root help and exit 0 (it handles --help before it looks at the command), which a
// script cannot tell from success.
import type { Command } from 'commander';
import { nearestName } from '../common/nearest-name.js';

function names(cmd: Command): string[] {
  return cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]);
}

/** The first operand of `args` (the command groups here take no option with a value). */
function firstOperand(args: readonly string[]): { name: string; rest: readonly string[] } | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return i + 1 < args.length ? { name: args[i + 1]!, rest: args.slice(i + 2) } : undefined;
    if (!a.startsWith('-')) return { name: a, rest: args.slice(i + 1) };
  }
  return undefined;
}

/**
 * The error for the first command name in `args` (process.argv without node and the script)
 * that `program` or one of its command groups (k8s, certs) does not have, also after `help`;
 * undefined when every name is known.
 */
export function unknownCommandError(program: Command, args: readonly string[]): string | undefined {
  let cmd = program;
  let rest = args;
  let prefix = program.name();
  while (cmd.commands.length > 0) {
    const operand = firstOperand(rest);
    if (!operand) return undefined;
    let { name } = operand;
    rest = operand.rest;
    if (name === 'help') {
      // `mtl help X` asks for X's help: X must exist too.
      const target = firstOperand(rest);
      if (!target) return undefined;
      ({ name } = target);
      rest = target.rest;
    }
    const known = names(cmd);
    const sub = cmd.commands.find((c) => c.name() === name || c.aliases().includes(name));
    if (!sub) {
      const near = nearestName(name, known);
      const hint = near !== undefined ? ` (did you mean ${near}?)` : '';
      return `error: unknown command '${name}'${hint}\n${prefix} commands: ${known.join(', ')} (${prefix} --help describes them)`;
    }
    cmd = sub;
    prefix = `${prefix} ${sub.name()}`;
  }
  return undefined;
}
