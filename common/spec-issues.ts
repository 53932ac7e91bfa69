// Turns zod issues into one readable line per problem, each naming its path in the document
// (`training.optimizer.learningRate: expected a number > 0, got -1`).
import type { z } from 'zod';
import type { SpecIssue } from './errors.js';

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value;
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  tuple: 'a list',
};

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `required ${ARTICLE[issue.expected] ?? issue.expected} is missing`;
      return `expected ${ARTICLE[issue.expected] ?? issue.expected}, got ${show(issue.input)}`;
    case 'too_small': {
      const min = String(issue.minimum);
      if (issue.origin === 'array') return `expected at least ${min} item${min === '1' ? '' : 's'}`;
      if (issue.origin === 'string') return `expected a non-empty string`;
      if (issue.minimum === 0 && issue.inclusive === false) return `expected a positive number, got ${show(issue.input)}`;
      return `expected a number ${issue.inclusive ? '>=' : '>'} ${min}, got ${show(issue.input)}`;
    }
    case 'too_big': {
      const max = String(issue.maximum);
      if (issue.origin === 'array') return `expected at most ${max} items`;
      return `expected a number ${issue.inclusive ? '<=' : '<'} ${max}, got ${show(issue.input)}`;
    }
    case 'invalid_value':
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${show(issue.input)}`;
    case 'invalid_union': {
      if (issue.discriminator !== undefined) {
        const got = (issue.input as Record<string, unknown> | undefined)?.[issue.discriminator];
        const options = 'options' in issue && issue.options ? ` (expected one of ${issue.options.map(String).join(', ')})` : '';
        return `unknown ${issue.discriminator} ${show(got)}${options}`;
      }
      return `expected ${issue.errors.map((e) => e.map((i) => i.message).join('; ')).join(' or ')}`;
    }
    case 'invalid_format':
      return issue.message.startsWith('expected') ? issue.message : `invalid format (${issue.format}), got ${show(issue.input)}`;
    default:
      return issue.message;
  }
}

/** One SpecIssue per problem; unknown keys give one issue per key, at the key's own path. */
export function specIssues(error: z.ZodError, prefix: ReadonlyArray<PropertyKey> = []): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...base, key]), message: 'unknown key' });
    } else {
      out.push({ path: formatPath(base), message: describeIssue(issue) });
    }
  }
  return out;
}
