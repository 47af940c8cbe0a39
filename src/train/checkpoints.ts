// Training checkpoints: one safetensors file per checkpoint (tensors + JSON metadata), written
// atomically (temporary file + rename), the last K kept.
import { readdirSync, unlinkSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Generator } from '../tensor/random.js';
import type { Device } from '../tensor/device.js';
import type { AdamW } from '../nn/optim.js';
import { CheckpointError } from '../edm/checkpoint.js';

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

/** Adds an optimizer's moments under "prefix/m/i" and "prefix/v/i" (its step count goes in the metadata). */
export function putOptimizer(into: Map<string, Tensor>, prefix: string, opt: AdamW): void {
  const s = opt.state();
  withPrefix(into, `${prefix}/m`, s.expAvg);
  withPrefix(into, `${prefix}/v`, s.expAvgSq);
}

/** Restores what putOptimizer wrote, checking that the checkpoint's moments match the optimizer's parameters. */
export function restoreOptimizer(ck: CheckpointData<unknown>, prefix: string, opt: AdamW, step: number): void {
  const n = opt.params.length;
  const moments = (kind: 'm' | 'v'): Tensor[] => {
    const m = groupByPrefix(ck.tensors, `${prefix}/${kind}`);
    if (m.size !== n || !opt.params.every((_, i) => m.has(String(i))))
      throw new CheckpointError(`${ck.path}: optimizer state '${prefix}' holds ${m.size} tensors, the run has ${n} parameters (a checkpoint of different settings?)`);
    return opt.params.map((_, i) => m.get(String(i))!);
  };
  opt.loadState({ step, expAvg: moments('m'), expAvgSq: moments('v') });
}

/** Adds the global generators' states (CPU, and the device's when it is not the CPU) under "rng/". */
export function putGlobalRng(into: Map<string, Tensor>, device: Device): void {
  into.set('rng/cpu', Generator.default('cpu').getState());
  if (device !== 'cpu') into.set('rng/cuda', Generator.default(device).getState());
}

/** Restores what putGlobalRng wrote. */
export function restoreGlobalRng(ck: CheckpointData<unknown>, device: Device): void {
  const cpu = ck.tensors.get('rng/cpu');
  if (!cpu) throw new CheckpointError(`${ck.path}: no 'rng/cpu' state (not a complete dmd-torch checkpoint)`);
  Generator.default('cpu').setState(cpu);
  const dev = ck.tensors.get('rng/cuda');
  if (device !== 'cpu' && dev) Generator.default(device).setState(dev);
}

/**
 * The checkpoint to continue from: the newest in the store with resume, none on a fresh directory;
 * an existing run without resume is refused so that its checkpoints are never overwritten.
 */
export function resumePoint(store: CheckpointStore, resume: boolean, out: string): string | null {
  const latest = store.latest();
  if (latest && !resume) throw new CheckpointError(`${out} already holds checkpoints; pass --resume to continue, or choose another --out`);
  return latest;
}
