// DMD2's GAN for Stable Diffusion teachers: real images with captions (PNGs with a .txt beside each, in
// a folder or an EDM .zip) become latents by the teacher's VAE and text embeddings of their captions;
// the classifier on the fake UNet's middle block learns to tell them from generator latents, and the
// generator gets its GAN term. Datasets without captions (or with some missing) are refused in one line.
import test from 'ava';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePNG } from '../../src/data/png.js';
import { openDataset } from '../../src/data/sources.js';
import { ImageLoader } from '../../src/data/loader.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { tempDir } from '../helpers/tmp.js';
import { tinySD } from '../helpers/sd.js';
import { pngClassFolder } from '../helpers/data.js';

const dir = tempDir();
const teacher = path.join(dir, 'sd-teacher.safetensors');
{
  const sd = tinySD(2);
  sd.saveSingleFile(teacher);
  sd.dispose();
}
const prompts = path.join(dir, 'prompts.txt');
writeFileSync(prompts, ['a red square', 'a blue circle', 'a green bar'].join('\n'));
const names = ['red square', 'blue circle', 'green bar'];
const real = path.join(dir, 'captioned');
mkdirSync(real);
for (let i = 0; i < 8; i++) {
  const px = new Uint8Array(16 * 16 * 3);
  for (let k = 0; k < px.length; k++) px[k] = (i * 37 + k * (1 + (i % 3))) % 256;
  writeFileSync(path.join(real, `${i}.png`), encodePNG({ width: 16, height: 16, channels: 3, data: px }));
  writeFileSync(path.join(real, `${i}.txt`), `a ${names[i % 3]}\n`);
}
const quiet = () => {};
const base = { teacher, prompts, batchSize: 2, warmupSteps: 0, finalEval: 0, sampleEvery: 100, checkpointEvery: 100, metricsEvery: 1, device: 'cpu', genLr: 1e-3, fakeLr: 1e-3 };

test.serial('captions come from .txt files beside the PNGs, in batches beside the images', (t) => {
  const src = openDataset(real);
  t.is(src.captions!.length, 8);
  t.is(src.captions![4], 'a blue circle');
  const b = new ImageLoader(src, { batchSize: 3, shuffle: false }).batch([0, 5, 7]);
  t.deepEqual(b.captions, ['a red square', 'a green bar', 'a blue circle']);
  b.images.dispose();
  t.is(openDataset(pngClassFolder(dir)).captions, null);
});

test.serial('an SD teacher with --gan trains the middle-block classifier on captioned real latents and gives the generator its GAN term', async (t) => {
  const out = path.join(dir, 'gan');
  const tr = await DMDTrainer.create({ ...base, out, steps: 4, fakeUpdatesPerGen: 2, gan: true, diffusionGan: true, data: real }, quiet);
  await tr.train(quiet, { progress: false });
  tr.dispose();
  const m = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const head = m.filter((l) => 'loss_gan_head' in l);
  t.is(head.length, 4);
  for (const l of head) for (const k of ['loss_gan_head', 'd_real', 'd_fake']) t.true(Number.isFinite(l[k]), `${k} ${l[k]}`);
  t.true(m.some((l) => Number.isFinite(l.loss_gan_gen)), JSON.stringify(m));
});

test.serial('--gan without captions, or with a caption missing, is refused naming the data', async (t) => {
  await t.throwsAsync(DMDTrainer.create({ ...base, out: path.join(dir, 'x'), steps: 1, gan: true, data: pngClassFolder(dir) }, quiet), {
    message: /--gan with a Stable Diffusion teacher needs captioned real images: --data .* has no captions/,
  });
  rmSync(path.join(real, '3.txt'));
  t.throws(() => openDataset(real), { message: /7 of 8 images have a caption .*3\.txt is missing/ });
});
