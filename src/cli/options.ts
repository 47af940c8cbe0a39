// Config schemas (zod) are the single source of truth: this turns a schema into yargs flags (names,
// types, choices, help with defaults) and merges defaults < config file < flags, validating the
// result with messages that name the bad field.
import { readFileSync, existsSync } from 'node:fs';
import { z } from 'zod';
import type { Options } from 'yargs';
import { parseYAML, YAMLError } from '../util/yaml.js';
import { formatZodError } from '../util/zod.js';

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
}

type AnyObject = z.ZodObject<z.ZodRawShape>;
interface Def {
  type: string;
  defaultValue?: unknown;
  innerType?: z.ZodType;
  entries?: Record<string, string>;
  element?: z.ZodType;
  values?: unknown[];
}
const defOf = (t: z.ZodType): Def => (t as unknown as { _zod: { def: Def } })._zod.def;

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const camel = (s: string) => s.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function unwrap(t: z.ZodType): { base: Def; dflt: unknown; hasDefault: boolean } {
  let d = defOf(t);
  let dflt: unknown;
  let hasDefault = false;
  for (;;) {
    if (d.type === 'default') {
      dflt = d.defaultValue;
      hasDefault = true;
      d = defOf(d.innerType!);
    } else if (d.type === 'optional' || d.type === 'nullable') d = defOf(d.innerType!);
    else break;
  }
  return { base: d, dflt, hasDefault };
}

/** yargs options for every field of the schema (flag = kebab-case of the field). */
export function yargsOptions(schema: AnyObject): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [key, t] of Object.entries(schema.shape)) {
    const field = t as z.ZodType;
    const { base, dflt, hasDefault } = unwrap(field);
    const desc = (field.description ?? '') + (hasDefault ? ` [default: ${JSON.stringify(dflt)}]` : '');
    const o: Options = { describe: desc.trim() };
    if (base.type === 'number') o.type = 'number';
    else if (base.type === 'boolean') o.type = 'boolean';
    else if (base.type === 'enum') {
      o.type = 'string';
      o.choices = Object.values(base.entries ?? {});
    } else if (base.type === 'literal') o.type = 'string';
    else if (base.type === 'array') {
      o.type = 'array';
      if (base.element && unwrap(base.element).base.type === 'number') o.number = true;
      else o.string = true;
    } else if (base.type === 'string') o.type = 'string';
    else continue; // nested objects: config file only
    out[kebab(key)] = o;
  }
  return out;
}

/** Reads a config file: YAML (subset) or JSON; keys may be camelCase, kebab-case or snake_case. */
export function readConfigFile(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConfigError(`config file ${path} not found`);
  const text = readFileSync(path, 'utf8');
  let v: unknown;
  try {
    v = path.endsWith('.json') ? JSON.parse(text) : parseYAML(text);
  } catch (e) {
    if (e instanceof YAMLError || e instanceof SyntaxError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${path}: must hold a mapping of settings`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[camel(k)] = x;
  return out;
}

/**
 * Resolves a command's settings: schema defaults, then the config file (if any), then the flags the
 * user actually passed. Unknown keys and invalid values are errors naming the field (as its flag).
 */
export function resolveConfig<S extends AnyObject>(schema: S, argv: Record<string, unknown>, configFile?: string | null): z.infer<S> {
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = argv[kebab(key)] ?? argv[key];
    if (v !== undefined) fromFlags[key] = v;
  }
  const merged = { ...fromFile, ...fromFlags };
  const r = schema.strict().safeParse(merged);
  if (!r.success) {
    const msg = formatZodError(r.error).replace(/(^|; )([a-zA-Z0-9.]+):/g, (_m, p: string, f: string) => `${p}--${kebab(f.split('.')[0]!)}${f.includes('.') ? f.slice(f.indexOf('.')) : ''}:`);
    throw new ConfigError(`invalid settings${configFile ? ` (from ${configFile} and flags)` : ''}: ${msg}`);
  }
  return r.data as z.infer<S>;
}
