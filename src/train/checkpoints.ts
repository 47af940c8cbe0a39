// Training checkpoints: one safetensors file per checkpoint (tensors + JSON metadata), written
// atomically (util/fs.ts atomicWrite), the last K kept. Reading one checks it completely (header,
// data, metadata) so that a damaged file is recognised before anything is restored from it.
import { readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { dispose, tidy } from '../tensor/scope.js';
import { foreach } from '../tensor/foreach.js';
import { isFloating } from '../tensor/dtype.js';
import { ensureDir, removeStrayTemporaries } from '../util/fs.js';
import { RunError } from './errors.js';

export interface CheckpointData<M> {
  tensors: Map<string, Tensor>;
  meta: M;
  path: string;
  step: number;
}

/** The file name of a checkpoint: `<prefix>-<step, 8 digits>.safetensors` (what list() finds again). */
export function checkpointFileName(prefix: string, step: number): string {
  return `${prefix}-${String(step).padStart(8, '0')}.safetensors`;
}

export class CheckpointStore {
  readonly dir: string;
  /** temporaries of interrupted saves removed when the store was opened */
  readonly removed: string[];

  /** `owner`: the process that writes (rank 0 of a multi-process run) also tidies up leftovers. */
  constructor(dir: string, readonly keep = 3, readonly prefix = 'checkpoint', owner = true) {
    this.dir = ensureDir(dir, 'checkpoint directory');
    this.removed = owner ? removeStrayTemporaries(this.dir) : [];
  }

  /** Checkpoint files, oldest first. */
  list(): { step: number; file: string }[] {
    const re = new RegExp(`^${this.prefix}-(\\d+)\\.safetensors$`);
    return readdirSync(this.dir)
      .map((f) => ({ m: re.exec(f), f }))
      .filter((x) => x.m)
      .map((x) => ({ step: Number(x.m![1]), file: path.join(this.dir, x.f) }))
      .sort((a, b) => a.step - b.step);
  }

  save<M>(step: number, tensors: Map<string, Tensor>, meta: M): string {
    const file = path.join(this.dir, checkpointFileName(this.prefix, step));
    writeSafetensors(file, tensors, { meta: JSON.stringify(meta) }, 'checkpoint');
    const all = this.list();
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
    const all = this.list();
    return all.length ? all[all.length - 1]!.file : null;
  }

  /** Reads a checkpoint completely; any damage is a RunError naming the file. */
  static load<M>(file: string): CheckpointData<M> {
    let r;
    try {
      r = readSafetensors(file);
    } catch (e) {
      throw new RunError(`${file}: unreadable checkpoint (${e instanceof Error ? e.message : String(e)})`);
    }
    const raw = r.metadata.meta;
    let meta: M & { step?: unknown };
    try {
      if (raw === undefined) throw new Error('no metadata');
      meta = JSON.parse(raw) as M & { step?: unknown };
      if (typeof meta !== 'object' || meta === null || typeof meta.step !== 'number') throw new Error('metadata without a step');
    } catch (e) {
      dispose(r.tensors);
      throw new RunError(`${file}: not a complete dmd-torch training checkpoint (${e instanceof Error ? e.message : String(e)})`);
    }
    return { tensors: r.tensors, meta, path: file, step: meta.step as number };
  }
}

/** The names of floating-point tensors of a checkpoint that hold NaN or Inf (empty when all are finite). */
export function nonFiniteEntries(ck: CheckpointData<unknown>): string[] {
  const floats = [...ck.tensors].filter(([, t]) => isFloating(t.dtype));
  if (foreach.allFinite(floats.map(([, t]) => t))) return [];
  return floats.filter(([, t]) => tidy(() => !t.isfinite().all().item())).map(([k]) => k);
}
