// The regression dataset of DMD: for seeded noises z and conditions (class labels, or prompts of a
// Stable Diffusion teacher), the teacher's deterministic ODE output y (EDM: Heun in pixel space; SD:
// DDIM with classifier-free guidance in latent space). Stored as sharded safetensors (z, label, y) with
// a manifest; `label` holds class or prompt indices. Resumable: a killed run continues at the first
// incomplete shard and never rewrites a complete one. The teachers' sampling is in pair-teachers.ts, the
// settings and the manifest in pairs-format.ts.
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import { Tensor } from '../../tensor/tensor.js';
import { tidy, dispose, keep } from '../../tensor/scope.js';
import { noGrad } from '../../tensor/autograd.js';
import { randn, randint, Generator, deriveSeed } from '../../tensor/random.js';
import { arange, cat } from '../../tensor/create.js';
import { cuda } from '../../tensor/cuda.js';
import type { Device } from '../../tensor/device.js';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.js';
import { shardComplete } from '../../io/sharded.js';
import { Progress } from '../../train/progress.js';
import { pathSha256, ensureDir, atomicWrite, temporaryPath } from '../../util/fs.js';
import { withoutLaunch } from '../../util/fields.js';
import { Distributed } from '../../distributed/context.js';
import { foreach } from '../../tensor/foreach.js';
import { defaultTeacherPath } from '../../edm/default-teacher.js';
import { openPairsTeacher, type PairsTeacher } from './pair-teachers.js';
import { PairsError, readPairsManifest, conditionCount, type PairsConfig, type PairsManifest } from './pairs-format.js';

export { PairsConfigSchema, PairsError, readPairsManifest, conditionCount, type PairsConfig, type PairsManifest } from './pairs-format.js';

const shardDone = (dir: string, s: PairsManifest['shards'][number]) => shardComplete(dir, s, 'y');

/** The manifest for these settings: a fresh one, or the one in cfg.out when it was made with the same settings (refused otherwise). */
function openManifest(cfg: PairsConfig, teacher: { file: string; sha256: string }, t: PairsTeacher): PairsManifest {
  const fresh: PairsManifest = {
    format: 'dmd-torch/pairs', version: 1,
    teacher,
    sampler: t.sampler,
    ...(t.prompts ? { prompts: t.prompts } : {}),
    seed: cfg.seed, count: cfg.count, shardSize: cfg.shardSize, labels: cfg.labels,
    imageShape: t.sampleShape, labelDim: t.labelDim,
    shards: Array.from({ length: Math.ceil(cfg.count / cfg.shardSize) }, (_, i) => ({
      file: `pairs-${String(i).padStart(5, '0')}.safetensors`, start: i * cfg.shardSize, count: Math.min(cfg.shardSize, cfg.count - i * cfg.shardSize), complete: false,
    })),
  };
  if (!existsSync(path.join(cfg.out, 'pairs.json'))) return fresh;
  const old = readPairsManifest(cfg.out);
  const diff = settingsDiff(old, fresh);
  if (diff.length) throw new PairsError(`${cfg.out} holds pairs made with other settings (${diff.join(', ')} differ); use another --out or the same settings to resume`);
  return old;
}

/** The settings two pairs manifests differ in (their count aside when `anyCount`). */
function settingsDiff(a: PairsManifest, b: PairsManifest, anyCount = false): string[] {
  const same = (k: keyof PairsManifest) => JSON.stringify(a[k]) === JSON.stringify(b[k]);
  const diff: string[] = (['sampler', 'seed', 'count', 'shardSize', 'labels', 'imageShape', 'labelDim'] as const).filter((k) => !same(k) && !(anyCount && k === 'count'));
  if (a.teacher.sha256 !== b.teacher.sha256) diff.unshift('teacher');
  if (a.prompts?.sha256 !== b.prompts?.sha256) diff.push('prompts');
  return diff;
}

/**
 * A shard of `m` taken from another pairs directory made with the same settings but another count: a
 * shard's noises and conditions depend only on the seed and its place, so a complete shard at the same
 * place holds the same pairs (the same bytes where it was made at the same batch size on the same kind of
 * device; otherwise the teacher's outputs differ by the kernels' rounding, as a remade shard's would).
 * Copied (atomically); returns the directory it came from, or null.
 */
function reuseShard(m: PairsManifest, out: string, shard: PairsManifest['shards'][number], from: readonly string[]): string | null {
  for (const dir of from) {
    let other: PairsManifest;
    try {
      other = readPairsManifest(dir);
    } catch {
      continue;
    }
    const same = other.shards.find((s) => s.file === shard.file && s.start === shard.start && s.count === shard.count);
    if (settingsDiff(other, m, true).length || !same || !shardDone(dir, same)) continue;
    const tmp = temporaryPath(path.join(out, shard.file));
    copyFileSync(path.join(dir, same.file), tmp);
    renameSync(tmp, path.join(out, shard.file));
    return dir;
  }
  return null;
}

/** One shard: its seeded noises and conditions, the teacher's ODE outputs in batches, written atomically. */
async function makeShard(cfg: PairsConfig, m: PairsManifest, shard: PairsManifest['shards'][number], t: PairsTeacher, device: Device, onImages: (n: number) => void): Promise<void> {
  const g = Generator.create('cpu', deriveSeed(cfg.seed, 1000 + m.shards.indexOf(shard)));
  const zAll = keep(randn([shard.count, ...m.imageShape], { generator: g }));
  const k = conditionCount(m);
  const cls = keep(tidy(() => (k ? (cfg.labels === 'balanced' ? arange(shard.start, shard.start + shard.count).remainder(k) : randint(0, k, [shard.count], { generator: g })) : arange(0, 0))));
  const ys: Tensor[] = [];
  try {
    const batch = cfg.batchSize || t.defaultBatch;
    for (let b = 0; b < shard.count; b += batch) {
      const n = Math.min(batch, shard.count - b);
      ys.push(keep(noGrad(() => tidy(() => {
        return t.sample(zAll.narrow(0, b, n).to(device), k ? cls.narrow(0, b, n) : null).to({ device: 'cpu', dtype: 'float32' });
      }))));
      onImages(n);
      await new Promise<void>((r) => setImmediate(r));
    }
    tidy(() => {
      const y = cat(ys, 0);
      writeSafetensors(path.join(cfg.out, shard.file), { z: zAll, label: cls, y }, { start: String(shard.start), teacher_sha256: m.teacher.sha256 }, 'pairs shard');
    });
  } finally {
    dispose([zAll, cls, ys]);
  }
}

/**
 * Makes (or completes) a pairs dataset. `o.reuse`: other pairs directories whose complete shards this one
 * may copy where they were made with the same settings (another count): --pairs auto's other caches.
 */
export async function makePairs(cfg: PairsConfig, runLog: (s: string) => void = console.log, o: { reuse?: readonly string[] } = {}): Promise<PairsManifest> {
  // in a multi-process job the ranks split the shards (shard i goes to rank i mod size); each shard is
  // seeded by its index, so the dataset is byte-identical whatever the number of processes
  const { dist, device } = Distributed.forCommand(cfg);
  const main = dist.isMain;
  const log = main ? runLog : () => {};
  if (cfg.sigmaMin >= cfg.sigmaMax) throw new PairsError(`--sigma-min (${cfg.sigmaMin}) must be below --sigma-max (${cfg.sigmaMax})`);
  const teacherFile = path.resolve(cfg.teacher ?? defaultTeacherPath());
  const t = openPairsTeacher(teacherFile, cfg, device);
  try {
    ensureDir(cfg.out, '--out');
    const sha = pathSha256(teacherFile);
    dist.agree('dmd pairs settings', { ...withoutLaunch(cfg, ['out', 'device', 'batchSize', 'teacher', 'prompts']), teacher_sha256: sha, prompts_sha256: t.prompts?.sha256 ?? null, out: path.resolve(cfg.out) });
    const m = openManifest(cfg, { file: teacherFile, sha256: sha }, t);
    const saveManifest = () => { if (main) atomicWrite(path.join(cfg.out, 'pairs.json'), `${JSON.stringify(m, null, 1)}\n`, 'pairs manifest'); };
    for (const sh of m.shards) sh.complete = shardDone(cfg.out, sh);
    const left = m.shards.filter((sh) => !sh.complete);
    if (left.length < m.shards.length) log(`resuming: ${m.shards.length - left.length} of ${m.shards.length} shards already complete`);
    saveManifest();
    const todo = left.filter((sh) => m.shards.indexOf(sh) % dist.size === dist.rank);
    const progress = new Progress({ total: todo.reduce((a, s) => a + s.count, 0), label: 'pairs', stream: main ? process.stderr : undefined, quiet: !main });
    let done = 0;
    for (const shard of todo) {
      await new Promise<void>((r) => setImmediate(r));
      const donor = reuseShard(m, cfg.out, shard, o.reuse ?? []);
      if (donor) log(`pairs: ${shard.file} (pairs ${shard.start}-${shard.start + shard.count - 1}) taken from ${donor}, made with the same settings`);
      else await makeShard(cfg, m, shard, t, device, (n) => progress.update((done += n), {}, 'img'));
      shard.complete = true;
      saveManifest();
      dist.heartbeat();
    }
    if (dist.enabled) {
      dist.barrier();
      for (const sh of m.shards) sh.complete = shardDone(cfg.out, sh);
      saveManifest();
      dist.destroy();
    }
    if (device !== 'cpu') cuda.synchronize();
    log(`pairs: ${m.count} in ${m.shards.length} shards at ${cfg.out} (teacher ${path.basename(teacherFile)}, ${t.describe()})`);
    return m;
  } finally {
    t.dispose();
  }
}

/** Random batches of a complete pairs dataset (all shards in memory), seeded and checkpointable. */
export class PairsDataset {
  readonly manifest: PairsManifest;
  private z: Tensor;
  private y: Tensor;
  private label: Tensor;

  constructor(readonly dir: string) {
    this.manifest = readPairsManifest(dir);
    const m = this.manifest;
    const k = conditionCount(m);
    const bad = m.shards.filter((s) => !shardDone(dir, s));
    if (bad.length) throw new PairsError(`${dir}: ${bad.length} shard(s) incomplete (first ${bad[0]!.file}); finish them with 'dmd pairs' and the same settings`);
    const zs: Tensor[] = [], ys: Tensor[] = [], ls: Tensor[] = [];
    try {
      for (const s of m.shards) {
        const file = path.join(dir, s.file);
        let r;
        try {
          r = readSafetensors(file);
        } catch (e) {
          throw new PairsError(`${file}: unreadable shard (${e instanceof Error ? e.message : String(e)}); delete it and re-run 'dmd pairs' with the same settings`);
        }
        const get = (k: string) => {
          const t = r.tensors.get(k);
          if (!t) throw new PairsError(`${file}: has no '${k}' tensor (not a dmd pairs shard)`);
          return t;
        };
        const [z, y, label] = [get('z'), get('y'), get('label')];
        zs.push(z);
        ys.push(y);
        ls.push(label);
        const want = [s.count, ...m.imageShape].join();
        if (z.shape.join() !== want || y.shape.join() !== want)
          throw new PairsError(`${file}: z [${z.shape}] and y [${y.shape}] do not match pairs.json (${s.count} pairs of [${m.imageShape}])`);
        const what = m.prompts ? 'prompt' : 'class';
        if (k && (label.shape.join() !== String(s.count) || label.dtype !== 'int64'))
          throw new PairsError(`${file}: 'label' must be ${s.count} int64 ${what} indices, got ${label.dtype} [${label.shape}]`);
        if (k && label.numel && tidy(() => label.min().item() < 0 || label.max().item() >= k))
          throw new PairsError(`${file}: ${m.prompts ? 'prompt indices' : 'class labels'} outside 0..${k - 1}`);
        if (!foreach.allFinite([z, y])) throw new PairsError(`${file}: holds NaN or Inf values; delete it and re-run 'dmd pairs' with the same settings`);
      }
      this.z = keep(cat(zs));
      this.y = keep(cat(ys));
      this.label = keep(cat(ls));
    } finally {
      dispose([zs, ys, ls]);
    }
  }

  get size(): number { return this.manifest.count; }

  /** A batch of (z, condition indices (classes or prompts; null when unconditional), y) drawn uniformly with the generator, on a device. */
  batch(n: number, generator: Generator, device: Device): { z: Tensor; index: Tensor | null; y: Tensor } {
    return tidy(() => {
      const idx = randint(0, this.size, [n], { generator });
      const mv = (t: Tensor) => (device === 'cpu' ? t : t.to(device));
      const index = conditionCount(this.manifest) ? mv(this.label.indexSelect(0, idx)) : null;
      return { z: mv(this.z.indexSelect(0, idx)), index, y: mv(this.y.indexSelect(0, idx)) };
    });
  }

  dispose(): void {
    dispose([this.z, this.y, this.label]);
  }
}
