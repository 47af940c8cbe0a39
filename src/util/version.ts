// This package's version, read from its package.json (one source).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function read(): string {
  try {
    // src/util and dist/util both sit two levels below the package root
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');
    return String((JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

export const PACKAGE_VERSION = read();
