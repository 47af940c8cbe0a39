// One formatting of zod errors for every config surface: "field.path: message; ...", or with
// { flags: true } "--field-name.path: message" as the command line spells the setting.
import type { z } from 'zod';

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
