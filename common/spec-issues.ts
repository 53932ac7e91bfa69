// Turns zod issues into one readable line per problem, each naming its path in the document
// (`training.optimizer.learningRate: expected a number > 0, got -1`). An unknown key is
// checked against the keys the schema allows at its place, so that a typo gets a suggestion.
import type { z } from 'zod';
import type { SpecIssue } from './errors.js';
import { LAYER_TYPES } from './job-schema.js';
import { nearestName } from './nearest-name.js';

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

/** The schema and document a ZodError came from, so that unknown keys can be compared with the known ones. */
export interface IssueContext {
  schema: z.core.$ZodType;
  input: unknown;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Object-like schemas that `schema` stands for at `value` (wrappers removed, union options picked by the value). */
function unwrap(schema: z.core.$ZodType, value: unknown, depth = 0): z.core.$ZodType[] {
  if (depth > 32) return [];
  const def = (schema as z.core.$ZodTypes)._zod.def;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return unwrap(def.innerType, value, depth + 1);
    case 'pipe':
      return unwrap(def.in, value, depth + 1);
    case 'lazy':
      return unwrap(def.getter(), value, depth + 1);
    case 'union': {
      const disc = (def as { discriminator?: unknown }).discriminator;
      const options = def.options.flatMap((o) => unwrap(o, value, depth + 1));
      if (typeof disc !== 'string' || !isRecord(value)) return options;
      // Only the option the document's discriminator names: its keys are the ones that count.
      const chosen = options.filter((o) => {
        const d = (o as z.core.$ZodTypes)._zod.def;
        if (d.type !== 'object') return false;
        const field = d.shape[disc];
        if (!field) return false;
        const fd = (field as z.core.$ZodTypes)._zod.def;
        return fd.type === 'literal' && fd.values.includes(value[disc] as never);
      });
      return chosen.length > 0 ? chosen : options;
    }
    default:
      return [schema];
  }
}

/** One step down from `schema` (holding `value`) along `key`. */
function child(schema: z.core.$ZodType, value: unknown, key: PropertyKey): Array<{ schema: z.core.$ZodType; value: unknown }> {
  return unwrap(schema, value).flatMap((s) => {
    const def = (s as z.core.$ZodTypes)._zod.def;
    const next = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[key] : undefined;
    switch (def.type) {
      case 'object': {
        const field = def.shape[String(key)];
        return field ? [{ schema: field, value: next }] : [];
      }
      case 'record':
        return [{ schema: def.valueType, value: next }];
      case 'array':
        return [{ schema: def.element, value: next }];
      case 'tuple': {
        const item = typeof key === 'number' ? def.items[key] : undefined;
        return item ? [{ schema: item, value: next }] : [];
      }
      case 'intersection':
        return [...child(def.left, value, key), ...child(def.right, value, key)];
      default:
        return [];
    }
  });
}

/** The keys the schema allows for the object at `path`, in schema order (empty when unknown). */
export function knownKeysAt(context: IssueContext, path: ReadonlyArray<PropertyKey>): string[] {
  let here = [{ schema: context.schema, value: context.input }];
  for (const key of path) here = here.flatMap((h) => child(h.schema, h.value, key));
  const keys = new Set<string>();
  for (const h of here) {
    for (const s of unwrap(h.schema, h.value)) {
      const def = (s as z.core.$ZodTypes)._zod.def;
      if (def.type === 'object') for (const k of Object.keys(def.shape)) keys.add(k);
    }
  }
  return [...keys];
}

const LAYER_KEYS = new Set<string>(LAYER_TYPES);

/** What to say about an unknown key, given the keys allowed where it is. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = nearestName(key, known);
  const isLayer = known.length === LAYER_KEYS.size && known.every((k) => LAYER_KEYS.has(k));
  if (isLayer) {
    return near !== undefined ? `\`${key}\` is not a layer; did you mean \`${near}\`?` : `layer \`${key}\` is not supported (supported: ${known.join(', ')})`;
  }
  if (near !== undefined) return `unknown key; did you mean \`${near}\`?`;
  return known.length > 0 ? `unknown key (expected one of: ${known.join(', ')})` : 'unknown key';
}

/**
 * One SpecIssue per problem; unknown keys give one issue per key, at the key's own path, with
 * the nearest known key when `context` (the schema and the document parsed) is given.
 */
export function specIssues(error: z.ZodError, prefix: ReadonlyArray<PropertyKey> = [], context?: IssueContext): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const known = context ? knownKeysAt(context, issue.path) : [];
      for (const key of issue.keys) out.push({ path: formatPath([...base, key]), message: unknownKeyMessage(key, known) });
    } else {
      out.push({ path: formatPath(base), message: describeIssue(issue) });
    }
  }
  return out;
}
