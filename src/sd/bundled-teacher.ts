// The bundled text-to-image teacher: a small latent model of the SD family trained here on Fashion-MNIST
// with captions made from the class names (assets/README.md gives the commands, machine and time).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BUNDLED_T2I_TEACHER_URL = new URL('../../assets/fmnist-t2i-teacher.safetensors', import.meta.url);

/** Whether `file` is the bundled text-to-image teacher of this installation (the same file, through any path or link). */
export function isBundledTextToImageTeacher(file: string): boolean {
  try {
    return realpathSync(file) === realpathSync(fileURLToPath(BUNDLED_T2I_TEACHER_URL));
  } catch {
    return false;
  }
}
