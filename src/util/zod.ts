// One formatting of zod errors for every config surface: "field.path: message; ...".
import type { z } from 'zod';

export function formatZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      if (i.code === 'unrecognized_keys') return `unknown field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}${i.path.length ? ` in ${path}` : ''}`;
      return `${path}: ${i.message}`;
    })
    .join('; ');
}
