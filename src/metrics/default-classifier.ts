// The bundled Fashion-MNIST evaluation classifier (assets/fmnist-classifier.safetensors), trained with
// `dmd classifier` (assets/README.md): its features give FD-fmnist.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function defaultClassifierPath(): string {
  const p = fileURLToPath(new URL('../../assets/fmnist-classifier.safetensors', import.meta.url));
  if (!existsSync(p)) throw new Error(`the bundled classifier ${p} is missing; pass --classifier <file from dmd classifier>`);
  return p;
}
