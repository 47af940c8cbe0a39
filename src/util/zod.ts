// One formatting of zod errors for every config surface: "field.path: message; ...", or with
// { flags: true } "--field-name.path: message" as the command line spells the setting; a field's
// schema under its wrappers, and a schema's defaults.
import { z } from 'zod';

export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function formatZodError(err: z.ZodError, o: { flags?: boolean } = {}): string {
  const name = (p: PropertyKey[]) => {
    if (!p.length) return '(root)';
    const [head, ...rest] = p.map(String);
    return [o.flags ? `--${kebab(head!)}` : head, ...rest].join('.');
  };
  return err.issues
    .map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}${i.path.length ? ` in ${name(i.path)}` : ''}`;
      return `${name(i.path)}: ${i.message}`;
    })
    .join('; ');
}

/** A field's schema without its default/optional/nullable wrappers, with the default and the first description found (zod's public API only). */
export function unwrapField(t: z.ZodType): { base: z.ZodType; dflt: unknown; hasDefault: boolean; description: string } {
  let cur: z.ZodType = t;
  let dflt: unknown;
  let hasDefault = false;
  let description = t.description ?? '';
  for (;;) {
    if (cur instanceof z.ZodDefault) {
      dflt = cur.def.defaultValue;
      hasDefault = true;
    } else if (!(cur instanceof z.ZodOptional || cur instanceof z.ZodNullable)) break;
    cur = (cur as z.ZodDefault | z.ZodOptional | z.ZodNullable).unwrap() as z.ZodType;
    description ||= cur.description ?? '';
  }
  return { base: cur, dflt, hasDefault, description };
}

/** The default of every field of an object schema that has one. */
export function schemaDefaults(schema: z.ZodObject<z.ZodRawShape>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, t] of Object.entries(schema.shape)) {
    const f = unwrapField(t as z.ZodType);
    if (f.hasDefault) out[k] = f.dflt;
  }
  return out;
}
