// The bundled default teacher: a class-conditional Fashion-MNIST 32x32 DDPM++ trained with
// `dmd teacher` (see assets/README.md for the exact command, machine, time and loss curve).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DEFAULT_TEACHER_URL = new URL('../../assets/fmnist-teacher.safetensors', import.meta.url);

export function defaultTeacherPath(): string {
  const p = fileURLToPath(DEFAULT_TEACHER_URL);
  if (!existsSync(p)) throw new Error(`the bundled teacher ${p} is missing from this installation; pass --teacher <file>`);
  return p;
}
