// The real samples of DMD2's GAN, as global batches every process reads in the same order (each keeps
// its slice): images read and brought to the model's sample space per batch (EDM: the images; SD: the
// VAE's latents and the captions' embeddings), or, for an SD teacher, latents encoded once by
// `dmd latents` (only the captions are encoded per batch).
import type { Tensor } from '../tensor/tensor.js';
import type { Device } from '../tensor/device.js';
import { deriveSeed } from '../tensor/random.js';
import { openDataset } from '../data/sources.js';
import { ImageLoader, type LoaderState } from '../data/loader.js';
import { LatentLoader, isLatentsDir } from '../sd/latents.js';
import type { Conditioning, ScoreModel } from './score-model.js';
import { DMDSetupError } from './setup.js';

export interface RealData {
  /** the next global batch: samples in the model's space and their conditioning */
  next(): { x: Tensor; cond: Conditioning };
  state(): LoaderState;
  loadState(s: LoaderState): void;
  dispose(): void;
}

export function openRealData(spec: string, o: { real: ScoreModel; teacher: { path: string; sha256: string }; globalBatch: number; seed: number; device: Device; notice?: ((s: string) => void) | undefined }): RealData {
  const { real } = o;
  const seed = deriveSeed(o.seed, 3);
  if (isLatentsDir(spec)) {
    if (real.family !== 'sd') throw new DMDSetupError(`--data ${spec} holds latents of a Stable Diffusion VAE (dmd latents); an EDM teacher's GAN reads images`);
    const l = new LatentLoader(spec, { batchSize: o.globalBatch, seed, device: o.device, expect: { teacherSha256: o.teacher.sha256, teacherFile: o.teacher.path, latentShape: real.sampleShape } });
    return {
      next: () => {
        const b = l.next();
        return { x: b.latents, cond: real.dataConditions({ labels: null, captions: b.captions }) };
      },
      state: () => l.state(),
      loadState: (s) => l.loadState(s),
      dispose: () => l.dispose(),
    };
  }
  const img = real.imageSpec;
  const loader = new ImageLoader(openDataset(spec, { resolution: img.img_resolution }), { batchSize: o.globalBatch, resolution: img.img_resolution, channels: img.img_channels, numClasses: img.label_dim, device: o.device, seed, notice: o.notice });
  return {
    next: () => {
      const b = loader.next();
      return { x: real.dataSamples(b.images), cond: real.dataConditions(b) };
    },
    state: () => loader.state(),
    loadState: (s) => loader.loadState(s),
    dispose: () => {},
  };
}
