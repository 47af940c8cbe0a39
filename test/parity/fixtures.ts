// Reference fixtures: the manifest and its safetensors files. The directories come from
// DMD_REFERENCE_FIXTURES (one, or several joined by ':'), defaulting to the copies in
// test/fixtures/reference (EDM, the samplers, DMD2's losses, LPIPS, the Fréchet distance) and
// test/fixtures/sd (Stable Diffusion v1, CLIP, DMD2's text-to-image losses).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { Tensor } from '../../src/tensor/index.js';

export const DEFAULT_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/reference');

export const DEFAULT_SD_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/sd');

/** The fixture directories to check. */
export function fixtureDirs(): string[] {
  const env = process.env.DMD_REFERENCE_FIXTURES;
  return env && env.length ? env.split(path.delimiter).filter(Boolean).map((d) => path.resolve(d)) : [DEFAULT_FIXTURES, DEFAULT_SD_FIXTURES];
}

/** The first fixture directory (the EDM one by default). */
export function fixturesDir(): string {
  return fixtureDirs()[0]!;
}

export interface FixtureCase {
  name: string;
  kind: string;
  file: string;
  rtol: number;
  [field: string]: unknown;
}

export interface Manifest {
  format: number;
  cases: FixtureCase[];
}

export function readManifest(dir = fixturesDir()): Manifest {
  const m = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  if (m.format !== 1) throw new Error(`${dir}/manifest.json: unsupported format ${m.format} (expected 1)`);
  return m;
}

/** The case's tensors grouped by prefix: weights/, real/, fake/, input/, expected/. */
export interface CaseTensors {
  group(prefix: string): Map<string, Tensor>;
  get(name: string): Tensor;
  has(name: string): boolean;
  all: Map<string, Tensor>;
}

export function readCase(c: FixtureCase, dir = fixturesDir()): CaseTensors {
  const { tensors } = readSafetensors(path.join(dir, c.file));
  return {
    all: tensors,
    has: (name) => tensors.has(name),
    get(name) {
      const t = tensors.get(name);
      if (!t) throw new Error(`fixture ${c.name}: missing tensor '${name}'`);
      return t;
    },
    group(prefix) {
      const m = new Map<string, Tensor>();
      for (const [k, v] of tensors) if (k.startsWith(prefix)) m.set(k.slice(prefix.length), v);
      return m;
    },
  };
}
