// `dmd latents`: the real images of DMD2's GAN encoded once by a Stable Diffusion teacher's VAE (the
// posterior mean, scaled, as dmd-train encodes them per batch), stored as sharded safetensors with their
// captions and classes beside a manifest, so that `dmd-train --gan --data LATENTS_DIR` skips the VAE
// encoder. Resumable like `dmd pairs`: a killed run continues at the first incomplete shard. dmd-train
// refuses latents made by another teacher file or at another latent size.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Tensor } from '../tensor/tensor.js';
import { tidy, dispose, keep } from '../tensor/scope.js';
import { tensor, cat } from '../tensor/create.js';
import type { Device } from '../tensor/device.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { readShardedManifest, shardComplete } from '../io/sharded.js';
import { Progress } from '../train/progress.js';
import { pathSha256, ensureDir, atomicWrite } from '../util/fs.js';
import { fields } from '../util/fields.js';
import { resolveDevice } from '../tensor/device.js';
import { foreach } from '../tensor/foreach.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader, EpochOrder, type LoaderState } from '../data/loader.js';
import { StableDiffusion } from './pipeline.js';

export const LatentsConfigSchema = z.object({
  teacher: z.string().min(1).describe('the Stable Diffusion teacher whose VAE encodes the images (dmd-train checks that its --teacher is this file)'),
  data: z.string().min(1).describe('captioned real images: a folder or EDM .zip of PNG/JPEG images with a .txt beside each, or WebDataset .tar shards'),
  out: z.string().min(1, 'must not be empty').describe('output directory (latents.json + shards)'),
  resolution: z.number().int().positive().optional().describe("image size in pixels the images are fitted to, a multiple of the VAE's downsampling (default: the model's)"),
  teacherConfig: z.string().min(1).optional().describe('an LDM config (v1-inference.yaml) giving the architecture of an SD --teacher checkpoint'),
  storage: z.enum(['float32', 'float16']).default('float32').describe('dtype the latents are stored in (float16 halves the files; dmd-train reads them as float32)'),
  shardSize: z.number().int().positive().default(10000).describe('images per shard file'),
  batchSize: fields.batchSize(32, 'images per VAE batch'),
  device: fields.device(),
});
export type LatentsConfig = z.infer<typeof LatentsConfigSchema>;

const ShardSchema = z.object({ file: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a plain file name'), start: z.number().int().min(0), count: z.number().int().positive(), complete: z.boolean() });
const LatentsManifestSchema = z.object({
  format: z.literal('dmd-torch/latents'),
  version: z.literal(1),
  teacher: z.object({ file: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/) }),
  data: z.string(),
  count: z.number().int().positive(),
  resolution: z.number().int().positive(),
  latentShape: z.array(z.number().int().positive()).length(3),
  scaleFactor: z.number().positive(),
  storage: z.enum(['float32', 'float16']),
  captions: z.boolean(),
  numClasses: z.number().int().min(0),
  shardSize: z.number().int().positive(),
  shards: z.array(ShardSchema).min(1),
});
export type LatentsManifest = z.infer<typeof LatentsManifestSchema>;

export class LatentsError extends Error {
  readonly code = 'ERR_LATENTS';
}

const MANIFEST = 'latents.json';

/** Whether `spec` names a directory made by `dmd latents`. */
export function isLatentsDir(spec: string | undefined): boolean {
  return spec !== undefined && existsSync(path.join(spec, MANIFEST));
}

const KIND = { name: MANIFEST, what: 'latents', items: 'images', command: 'dmd latents --teacher T --data IMAGES', error: LatentsError };

export function readLatentsManifest(dir: string): LatentsManifest {
  return readShardedManifest(dir, LatentsManifestSchema, KIND);
}

const captionsFile = (shard: string) => shard.replace(/\.safetensors$/, '.captions.json');

const complete = (dir: string, s: LatentsManifest['shards'][number]) => shardComplete(dir, s, 'latents');

/** Encodes (or completes) a latents directory. */
export async function makeLatents(cfg: LatentsConfig, log: (s: string) => void = console.log): Promise<LatentsManifest> {
  const device = resolveDevice(cfg.device);
  const teacherFile = path.resolve(cfg.teacher);
  const sd = StableDiffusion.load(teacherFile, { device, config: cfg.teacherConfig });
  try {
    const f = sd.factor;
    const resolution = cfg.resolution ?? sd.config.unet.image_size * f;
    const [h, w] = sd.latentSize(resolution);
    const source = openDataset(cfg.data, { resolution });
    if (!source.captions) throw new LatentsError(`${cfg.data}: the images have no captions (a .txt beside each image, or captions in the WebDataset shards); DMD2's GAN for a text-to-image teacher needs them`);
    const channels = sd.config.vae.ddconfig.in_channels;
    const loader = new ImageLoader(source, { batchSize: Math.min(cfg.batchSize, source.size), resolution, channels, numClasses: source.numClasses, device, shuffle: false });
    ensureDir(cfg.out, '--out');
    const sha = pathSha256(teacherFile);
    const fresh: LatentsManifest = {
      format: 'dmd-torch/latents', version: 1, teacher: { file: teacherFile, sha256: sha }, data: source.name, count: source.size, resolution,
      latentShape: [sd.config.vae.embed_dim, h, w], scaleFactor: sd.config.vae.scale_factor, storage: cfg.storage, captions: true, numClasses: source.labels ? source.numClasses : 0,
      shardSize: cfg.shardSize,
      shards: Array.from({ length: Math.ceil(source.size / cfg.shardSize) }, (_, i) => ({
        file: `latents-${String(i).padStart(5, '0')}.safetensors`, start: i * cfg.shardSize, count: Math.min(cfg.shardSize, source.size - i * cfg.shardSize), complete: false,
      })),
    };
    let m = fresh;
    if (existsSync(path.join(cfg.out, MANIFEST))) {
      const old = readLatentsManifest(cfg.out);
      const diff: string[] = (['data', 'count', 'resolution', 'latentShape', 'scaleFactor', 'storage', 'numClasses', 'shardSize'] as const).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(fresh[k]));
      if (old.teacher.sha256 !== sha) diff.unshift('teacher');
      if (diff.length) throw new LatentsError(`${cfg.out} holds latents made with other settings (${diff.join(', ')} differ); use another --out or the same settings to resume`);
      m = old;
    }
    for (const sh of m.shards) sh.complete = complete(cfg.out, sh);
    const save = () => atomicWrite(path.join(cfg.out, MANIFEST), `${JSON.stringify(m, null, 1)}\n`, 'latents manifest');
    const left = m.shards.filter((s) => !s.complete);
    if (left.length < m.shards.length) log(`resuming: ${m.shards.length - left.length} of ${m.shards.length} shards already complete`);
    save();
    const progress = new Progress({ total: left.reduce((a, s) => a + s.count, 0), label: 'latents', stream: process.stderr });
    let done = 0;
    for (const shard of left) {
      const parts: Tensor[] = [];
      const caps: string[] = [];
      const labels: number[] = [];
      try {
        for (let b = 0; b < shard.count; b += loader.batchSize) {
          const idx = Array.from({ length: Math.min(loader.batchSize, shard.count - b) }, (_, i) => shard.start + b + i);
          const batch = loader.batch(idx);
          parts.push(keep(tidy(() => sd.encode(batch.images).to({ device: 'cpu', dtype: cfg.storage }))));
          dispose([batch.images, batch.labels]);
          caps.push(...batch.captions!);
          if (source.labels) labels.push(...idx.map((i) => source.labels![i]!));
          progress.update((done += idx.length), {}, 'img');
          await new Promise<void>((r) => setImmediate(r));
        }
        atomicWrite(path.join(cfg.out, captionsFile(shard.file)), `${JSON.stringify(caps)}\n`, 'latents captions');
        tidy(() => {
          const t: Record<string, Tensor> = { latents: cat(parts, 0) };
          if (source.labels) t.label = tensor(labels, { dtype: 'int64' });
          writeSafetensors(path.join(cfg.out, shard.file), t, { start: String(shard.start), teacher_sha256: sha }, 'latents shard');
        });
      } finally {
        dispose(parts);
      }
      shard.complete = true;
      save();
    }
    log(`latents: ${m.count} images of ${source.name} as [${m.latentShape}] ${m.storage} latents in ${m.shards.length} shard(s) at ${cfg.out} (VAE of ${path.basename(teacherFile)}, ${resolution}x${resolution} px)`);
    return m;
  } finally {
    sd.dispose();
  }
}

export interface LatentBatch {
  /** scaled latents, float32, on the loader's device */
  latents: Tensor;
  captions: string[];
  indices: number[];
}

/**
 * Batches of a latents directory for dmd-train's GAN: all shards in memory (as float32), shuffled per
 * epoch with the seed exactly as the image loader shuffles images; the position is checkpointable.
 * `expect` is what the run needs: the teacher file's hash and the latent shape.
 */
export class LatentLoader {
  readonly manifest: LatentsManifest;
  private readonly latents: Tensor;
  private readonly captions: string[] = [];
  private readonly order: EpochOrder;

  constructor(readonly dir: string, private readonly o: { batchSize: number; seed: number; device: Device; expect: { teacherSha256: string; teacherFile: string; latentShape: number[] } }) {
    const m = (this.manifest = readLatentsManifest(dir));
    if (m.teacher.sha256 !== o.expect.teacherSha256)
      throw new LatentsError(`${dir}: latents encoded with the VAE of ${m.teacher.file}, not of this run's teacher ${o.expect.teacherFile}; encode the images with 'dmd latents --teacher ${o.expect.teacherFile}'`);
    if (m.latentShape.join() !== o.expect.latentShape.join())
      throw new LatentsError(`${dir}: latents of shape [${m.latentShape}] (${m.resolution} px), the run generates [${o.expect.latentShape}]; encode at the run's resolution with 'dmd latents --resolution'`);
    const bad = m.shards.filter((s) => !complete(dir, s));
    if (bad.length) throw new LatentsError(`${dir}: ${bad.length} shard(s) incomplete (first ${bad[0]!.file}); finish them with 'dmd latents' and the same settings`);
    if (m.count < o.batchSize) throw new LatentsError(`${dir}: ${m.count} images, fewer than one batch of ${o.batchSize}`);
    const parts: Tensor[] = [];
    try {
      for (const s of m.shards) {
        const file = path.join(dir, s.file);
        let lat: Tensor;
        try {
          const r = readSafetensors(file);
          for (const [k, v] of r.tensors) if (k !== 'latents') v.dispose();
          lat = r.tensors.get('latents')!;
        } catch (e) {
          throw new LatentsError(`${file}: unreadable shard (${e instanceof Error ? e.message : String(e)}); delete it and re-run 'dmd latents' with the same settings`);
        }
        parts.push(lat);
        if (lat.shape.join() !== [s.count, ...m.latentShape].join()) throw new LatentsError(`${file}: latents [${lat.shape}] do not match latents.json (${s.count} of [${m.latentShape}])`);
        if (!foreach.allFinite([lat])) throw new LatentsError(`${file}: holds NaN or Inf values; delete it and re-run 'dmd latents' with the same settings`);
        let caps: unknown;
        try {
          caps = JSON.parse(readFileSync(path.join(dir, captionsFile(s.file)), 'utf8'));
        } catch (e) {
          throw new LatentsError(`${path.join(dir, captionsFile(s.file))}: unreadable captions (${e instanceof Error ? e.message : String(e)}); delete ${s.file} and re-run 'dmd latents'`);
        }
        if (!Array.isArray(caps) || caps.length !== s.count || !caps.every((c) => typeof c === 'string'))
          throw new LatentsError(`${path.join(dir, captionsFile(s.file))}: expected ${s.count} caption strings`);
        this.captions.push(...(caps as string[]));
      }
      this.latents = keep(tidy(() => cat(parts, 0).to({ device: o.device, dtype: 'float32' })));
    } finally {
      dispose(parts);
    }
    this.order = new EpochOrder(m.count, o.batchSize, o.seed);
  }

  get size(): number { return this.manifest.count; }

  state(): LoaderState { return this.order.state(); }
  loadState(s: LoaderState): void { this.order.loadState(s); }

  next(): LatentBatch {
    const indices = this.order.next();
    return { latents: tidy(() => this.latents.indexSelect(0, tensor(indices, { dtype: 'int64' }).to(this.o.device))), captions: indices.map((i) => this.captions[i]!), indices };
  }

  dispose(): void {
    this.latents.dispose();
  }
}
