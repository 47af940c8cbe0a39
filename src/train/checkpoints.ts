// Training checkpoints: one safetensors file per checkpoint (tensors + JSON metadata), written
// atomically (temporary file + rename), the last K kept.
import { readdirSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';

export interface CheckpointData<M> {
  tensors: Map<string, Tensor>;
  meta: M;
  path: string;
}

export class CheckpointStore {
  constructor(readonly dir: string, readonly keep = 3, readonly prefix = 'checkpoint') {
    mkdirSync(dir, { recursive: true });
  }

  private files(): { step: number; file: string }[] {
    if (!existsSync(this.dir)) return [];
    const re = new RegExp(`^${this.prefix}-(\\d+)\\.safetensors$`);
    return readdirSync(this.dir)
      .map((f) => ({ m: re.exec(f), f }))
      .filter((x) => x.m)
      .map((x) => ({ step: Number(x.m![1]), file: path.join(this.dir, x.f) }))
      .sort((a, b) => a.step - b.step);
  }

  save<M>(step: number, tensors: Map<string, Tensor>, meta: M): string {
    const file = path.join(this.dir, `${this.prefix}-${String(step).padStart(8, '0')}.safetensors`);
    writeSafetensors(file, tensors, { meta: JSON.stringify(meta) });
    const all = this.files();
    for (const old of all.slice(0, Math.max(0, all.length - this.keep))) {
      try {
        unlinkSync(old.file);
      } catch {
        /* already gone */
      }
    }
    return file;
  }

  latest(): string | null {
    const all = this.files();
    return all.length ? all[all.length - 1]!.file : null;
  }

  static load<M>(file: string): CheckpointData<M> {
    const r = readSafetensors(file);
    const raw = r.metadata.meta;
    if (raw === undefined) throw new Error(`${file}: not a dmd-torch training checkpoint (no metadata)`);
    return { tensors: r.tensors, meta: JSON.parse(raw) as M, path: file };
  }
}

/** Splits "prefix/name" keys of a checkpoint into one map per prefix. */
export function groupByPrefix(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of tensors) if (k.startsWith(`${prefix}/`)) out.set(k.slice(prefix.length + 1), v);
  return out;
}

/** Adds entries under "prefix/". */
export function withPrefix(into: Map<string, Tensor>, prefix: string, tensors: Map<string, Tensor> | Tensor[]): void {
  if (Array.isArray(tensors)) tensors.forEach((t, i) => into.set(`${prefix}/${i}`, t));
  else for (const [k, v] of tensors) into.set(`${prefix}/${k}`, v);
}
