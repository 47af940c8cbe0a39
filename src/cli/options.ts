// Config schemas (zod) are the single source of truth: this turns a schema into yargs flags (names,
// types, choices, help with defaults) and merges defaults < config file < flags, validating the
// result with messages that name the bad field.
import { z } from 'zod';
import type { Options } from 'yargs';
import { parse as parseYAML, YAMLError } from 'yaml';
import { readRegularFile, FileError } from '../util/fs.js';
import { formatZodError, kebab, unwrapField as unwrap } from '../util/zod.js';

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
}

type AnyObject = z.ZodObject<z.ZodRawShape>;

export { kebab };
const camel = (s: string) => s.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** yargs options for every field of the schema (flag = kebab-case of the field). */
export function yargsOptions(schema: AnyObject): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const [key, t] of Object.entries(schema.shape)) {
    const field = t as z.ZodType;
    const { base, dflt, hasDefault, description } = unwrap(field);
    const desc = description + (hasDefault ? ` [default: ${JSON.stringify(dflt)}]` : '');
    // a value flag given without its value is an error, never silently empty
    const o: Options = { describe: desc.trim(), requiresArg: !(base instanceof z.ZodBoolean) };
    if (base instanceof z.ZodNumber) o.type = 'number';
    else if (base instanceof z.ZodBoolean) o.type = 'boolean';
    else if (base instanceof z.ZodEnum) {
      o.type = 'string';
      o.choices = base.options;
    } else if (base instanceof z.ZodLiteral) o.type = 'string';
    else if (base instanceof z.ZodArray) {
      o.type = 'array';
      if (unwrap(base.element as z.ZodType).base instanceof z.ZodNumber) o.number = true;
      else o.string = true;
    } else if (base instanceof z.ZodString) o.type = 'string';
    else continue; // nested objects: config file only
    out[kebab(key)] = o;
  }
  return out;
}

/** Reads a config file: YAML or JSON (a regular file of at most 1 MiB); keys may be camelCase, kebab-case or snake_case. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(path, 'config file', 2 ** 20).toString('utf8');
  } catch (e) {
    if (e instanceof FileError) throw new ConfigError(`--config: ${e.message}`);
    throw e;
  }
  let v: unknown;
  try {
    v = path.endsWith('.json') ? JSON.parse(text) : parseYAML(text, { uniqueKeys: true, prettyErrors: true });
  } catch (e) {
    if (e instanceof YAMLError || e instanceof SyntaxError) throw new ConfigError(`${path}: ${e.message.split('\n')[0]}`);
    throw e;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${path}: must hold a mapping of settings`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[camel(k)] = x;
  return out;
}

/**
 * Resolves a command's settings: schema defaults, then `prepare`'s (e.g. a recipe's), then the config
 * file (if any), then the flags the user actually passed. Unknown keys and invalid values are errors naming the field (as its flag).
 */
export function resolveConfig<S extends AnyObject>(schema: S, argv: Record<string, unknown>, configFile?: string | null, prepare: (input: Record<string, unknown>) => Record<string, unknown> = (x) => x): z.infer<S> {
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const [key, t] of Object.entries(schema.shape)) {
    const v = argv[kebab(key)] ?? argv[key];
    if (v === undefined) continue;
    // yargs collects a flag given more than once into an array: for a single-valued field say so, not "received array"
    if (Array.isArray(v) && !(unwrap(t as z.ZodType).base instanceof z.ZodArray)) {
      throw new ConfigError(`--${kebab(key)} was given ${v.length} times (${v.map((x) => JSON.stringify(x)).join(', ')}); give it once`);
    }
    fromFlags[key] = v;
  }
  const merged = prepare({ ...fromFile, ...fromFlags });
  const r = schema.strict().safeParse(merged);
  if (!r.success) {
    throw new ConfigError(`invalid settings${configFile ? ` (from ${configFile} and flags)` : ''}: ${formatZodError(r.error, { flags: true })}`);
  }
  return r.data as z.infer<S>;
}
