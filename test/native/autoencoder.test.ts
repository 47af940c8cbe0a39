// dmd autoencoder: a small KL autoencoder of the SD family trained on images, as a resumable run; its
// reconstruction error falls, resume is bit-exact, and the written file (SD first-stage keys, config
// and the measured latent scale in its metadata) loads back to the same reconstructions.
import test from 'ava';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { tidy, readSafetensorsHeader } from '../../src/index.js';
import { AutoencoderConfigSchema, trainAutoencoder, loadAutoencoder } from '../../src/sd/autoencoder.js';
import { openDataset } from '../../src/data/sources.js';
import { ImageLoader } from '../../src/data/loader.js';
import { tempDir } from '../helpers/tmp.js';
import { pngClassFolder } from '../helpers/data.js';

const dir = tempDir();
const data = pngClassFolder(dir);
const quiet = () => {};
const base = { data, resolution: 32, ch: 32, chMult: [1, 2], embedDim: 4, batchSize: 4, lr: 3e-3, device: 'cpu', sampleEvery: 1000, checkpointEvery: 1000, metricsEvery: 1 };

test.serial('reconstruction improves; the file holds SD first-stage keys, the config and the latent scale, and loads back', async (t) => {
  const out = path.join(dir, 'ae');
  const r = await trainAutoencoder(AutoencoderConfigSchema.parse({ ...base, out, kimg: 0.12 }), quiet, { progress: false });
  t.is(r.status, 'done');
  const m = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'loss_rec' in l);
  t.is(m.length, 30);
  const first = m.slice(0, 5).reduce((a, l) => a + l.loss_rec!, 0) / 5;
  const last = m.slice(-5).reduce((a, l) => a + l.loss_rec!, 0) / 5;
  t.log(`L1 reconstruction ${first.toFixed(4)} -> ${last.toFixed(4)} over 30 steps; latent scale ${r.scaleFactor.toFixed(4)}`);
  t.true(last < 0.7 * first);
  t.true(Number.isFinite(r.scaleFactor) && r.scaleFactor > 0);
  const h = readSafetensorsHeader(r.file);
  t.true(h.entries.every((e) => e.name.startsWith('first_stage_model.')));
  const vc = JSON.parse(h.metadata.vae_config!) as { scale_factor: number; ddconfig: { in_channels: number; ch_mult: number[] } };
  t.is(vc.scale_factor, r.scaleFactor);
  t.deepEqual(vc.ddconfig.ch_mult, [1, 2]);
  t.is(vc.ddconfig.in_channels, 1);
  const vae = loadAutoencoder(r.file);
  const err = tidy(() => {
    const x = new ImageLoader(openDataset(data), { batchSize: 4, resolution: 32, shuffle: false, numClasses: 0 }).batch([0, 5, 10, 15]).images;
    const p = vae.encode(x);
    t.deepEqual(p.mean.shape, [4, 4, 16, 16]);
    return vae.decode(p.mean).sub(x).abs().mean().item();
  });
  t.true(err < first, `reconstruction error of the loaded file ${err}`);
  vae.dispose();
});

test.serial('resume is bit-exact: 20 steps = 10 + resume + 10', async (t) => {
  const a = await trainAutoencoder(AutoencoderConfigSchema.parse({ ...base, out: path.join(dir, 'straight'), kimg: 0.08 }), quiet, { progress: false });
  await trainAutoencoder(AutoencoderConfigSchema.parse({ ...base, out: path.join(dir, 'split'), kimg: 0.04, checkpointEvery: 10 }), quiet, { progress: false });
  const b = await trainAutoencoder(AutoencoderConfigSchema.parse({ ...base, out: path.join(dir, 'split'), kimg: 0.08, resume: true, checkpointEvery: 10 }), quiet, { progress: false });
  t.deepEqual(readFileSync(a.file), readFileSync(b.file));
});
