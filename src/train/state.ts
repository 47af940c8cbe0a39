// The checkpointable state of a training run, declared part by part: modules (state dicts), AdamW
// optimizers (moments + step count), seeded generators, and JSON values (step, data position, ...).
// The global generators (CPU, and the run's CUDA device) are always part of it. One snapshot/restore
// serves every kind of run, and restoring names the part that does not fit.
import type { Tensor } from '../tensor/tensor.js';
import { Generator } from '../tensor/random.js';
import { type Device, isCuda } from '../tensor/device.js';
import { noGrad } from '../tensor/autograd.js';
import type { Stateful } from '../nn/module.js';
import type { AdamW } from '../nn/optim.js';
import type { CheckpointData } from './checkpoints.js';
import type { Distributed } from '../distributed/context.js';
import { RunError } from './errors.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

type Part =
  | { kind: 'module'; name: string; module: Stateful }
  | { kind: 'optimizer'; name: string; opt: AdamW }
  | { kind: 'generator'; name: string; gen: Generator }
  | { kind: 'value'; name: string; get: () => unknown; set: (v: never) => void };

export interface StateSnapshot {
  /** tensors by checkpoint key; they alias the live state, so write them out before the next step */
  tensors: Map<string, Tensor>;
  values: Record<string, unknown>;
}

function byPrefix(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of tensors) if (k.startsWith(`${prefix}/`)) out.set(k.slice(prefix.length + 1), v);
  return out;
}

export class TrainState {
  private readonly parts: Part[] = [];

  constructor(readonly device: Device) {}

  private add(p: Part): this {
    if (p.name.includes('/') || this.parts.some((q) => q.name === p.name)) throw new RangeError(`TrainState: part name '${p.name}' is taken or contains '/'`);
    this.parts.push(p);
    return this;
  }

  module(name: string, module: Stateful): this { return this.add({ kind: 'module', name, module }); }
  optimizer(name: string, opt: AdamW): this { return this.add({ kind: 'optimizer', name, opt }); }
  generator(name: string, gen: Generator): this { return this.add({ kind: 'generator', name, gen }); }
  /** A JSON-serialisable value (kept in the checkpoint's metadata). */
  value<T>(name: string, get: () => T, set: (v: T) => void): this {
    return this.add({ kind: 'value', name, get, set: set as (v: never) => void });
  }

  /** The modules of the state (e.g. to check their weights). */
  modules(): Stateful[] {
    return this.parts.flatMap((p) => (p.kind === 'module' ? [p.module] : []));
  }

  /**
   * Call inside tidy(); the tensors are handles onto the live state (no copies of the weights). In a
   * multi-process run every rank calls it: the random generators of all ranks are gathered (rank r's
   * under "rng/<name>@r", rank 0's under "rng/<name>"), everything else is rank 0's.
   */
  snapshot(dist?: Distributed): StateSnapshot {
    const tensors = new Map<string, Tensor>();
    const values: Record<string, unknown> = {};
    for (const p of this.parts) {
      switch (p.kind) {
        case 'module':
          for (const [k, v] of p.module.stateDict()) tensors.set(`${p.name}/${k}`, v);
          break;
        case 'optimizer': {
          const s = p.opt.state();
          s.expAvg.forEach((t, i) => tensors.set(`${p.name}/m/${i}`, t));
          s.expAvgSq.forEach((t, i) => tensors.set(`${p.name}/v/${i}`, t));
          values[`${p.name}.step`] = s.step;
          break;
        }
        case 'generator':
          this.putRng(tensors, p.name, p.gen.getState(), dist);
          break;
        case 'value':
          values[p.name] = p.get() as Json;
          break;
      }
    }
    this.putRng(tensors, 'global-cpu', Generator.default('cpu').getState(), dist);
    if (isCuda(this.device)) this.putRng(tensors, 'global-cuda', Generator.default(this.device).getState(), dist);
    values.worldSize = dist?.size ?? 1;
    return { tensors, values };
  }

  private putRng(into: Map<string, Tensor>, name: string, state: Tensor, dist?: Distributed): void {
    if (!dist?.enabled) {
      into.set(`rng/${name}`, state);
      return;
    }
    dist.allgather(state).forEach((s, r) => into.set(r === 0 ? `rng/${name}` : `rng/${name}@${r}`, s));
    state.dispose();
  }

  /** This rank's saved state of a generator (null when the checkpoint was made by fewer ranks). */
  private rng(ck: CheckpointData<unknown>, name: string, rank: number): Tensor | null {
    return ck.tensors.get(rank === 0 ? `rng/${name}` : `rng/${name}@${rank}`) ?? null;
  }

  /**
   * Restores every part from a checkpoint written from a state declared the same way. A rank the
   * checkpoint has no generator states for (it was made by fewer processes) keeps its fresh seeds.
   */
  restore(ck: CheckpointData<{ values?: Record<string, unknown> }>, rank = 0): void {
    const values = ck.meta.values ?? {};
    const fail = (what: string): never => {
      throw new RunError(`${ck.path}: ${what}; the checkpoint was written by a run with other settings (use another --out, or the settings of that run)`);
    };
    noGrad(() => {
      for (const p of this.parts) {
        switch (p.kind) {
          case 'module': {
            const sd = byPrefix(ck.tensors, p.name);
            if (!sd.size) fail(`it holds no '${p.name}' network`);
            try {
              p.module.loadStateDict(sd);
            } catch (e) {
              fail(`its '${p.name}' network does not fit (${e instanceof Error ? e.message : String(e)})`);
            }
            break;
          }
          case 'optimizer': {
            const n = p.opt.params.length;
            const moments = (k: 'm' | 'v') => {
              const m = byPrefix(ck.tensors, `${p.name}/${k}`);
              if (m.size !== n || !p.opt.params.every((_, i) => m.has(String(i)))) fail(`optimizer state '${p.name}' holds ${m.size} tensors, the run has ${n} parameters`);
              return p.opt.params.map((_, i) => m.get(String(i))!);
            };
            const [m, v] = [moments('m'), moments('v')];
            const step = values[`${p.name}.step`];
            if (typeof step !== 'number') fail(`optimizer '${p.name}' has no step count`);
            p.opt.loadState({ step: step as number, expAvg: m, expAvgSq: v });
            break;
          }
          case 'generator': {
            const s = this.rng(ck, p.name, rank);
            if (s) p.gen.setState(s);
            else if (rank === 0) fail(`it holds no state of the '${p.name}' random generator`);
            break;
          }
          case 'value':
            if (!(p.name in values)) fail(`it holds no '${p.name}'`);
            p.set(values[p.name] as never);
            break;
        }
      }
      const cpu = this.rng(ck, 'global-cpu', rank);
      if (!cpu && rank === 0) fail('it holds no global random state');
      if (cpu) Generator.default('cpu').setState(cpu);
      const dev = this.rng(ck, 'global-cuda', rank);
      if (dev && isCuda(this.device)) Generator.default(this.device).setState(dev);
    });
  }
}
