// DMD2's GAN for Stable Diffusion teachers: real images with captions (PNGs with a .txt beside each, in
// a folder or an EDM .zip) become latents by the teacher's VAE and text embeddings of their captions;
// the classifier on the fake UNet's middle block learns to tell them from generator latents, and the
// generator gets its GAN term. Datasets without captions (or with some missing) are refused in one line.
// `dmd latents` encodes them once instead; the GAN on those latents matches the one encoding per batch.
import test from 'ava';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePNG } from '../../src/data/png.js';
import { openDataset } from '../../src/data/sources.js';
import { ImageLoader } from '../../src/data/loader.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { makeLatents, LatentsConfigSchema } from '../../src/sd/latents.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { cat } from '../../src/tensor/create.js';
import { dispose } from '../../src/tensor/scope.js';
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
  writeFileSync(path.join(real, '3.txt'), `a ${names[0]}\n`);
});

test.serial('dmd latents: the VAE latents of captioned images, once, resumable; a GAN run on them matches the run that encodes per batch', async (t) => {
  const out = path.join(dir, 'latents');
  const m = await makeLatents(LatentsConfigSchema.parse({ teacher, data: real, out, shardSize: 3, batchSize: 2, device: 'cpu' }), quiet);
  t.is(m.count, 8);
  t.deepEqual(m.shards.map((s) => s.count), [3, 3, 2]);
  // equal to the teacher's own encoding of the same images (posterior mean, scaled)
  const sd = StableDiffusion.load(teacher);
  const loader = new ImageLoader(openDataset(real), { batchSize: 8, shuffle: false, resolution: 16, channels: 3 });
  const b = loader.batch([0, 1, 2, 3, 4, 5, 6, 7]);
  const want = sd.encode(b.images);
  const got = cat([0, 1, 2].map((i) => readSafetensors(path.join(out, `latents-0000${i}.safetensors`)).tensors.get('latents')!));
  t.deepEqual(got.shape, [8, ...m.latentShape]);
  t.true(got.sub(want).abs().max().item() <= 1e-5 * want.abs().max().item(), 'latents differ from the VAE encoding');
  dispose([b.images, want, got]);
  sd.dispose();
  t.deepEqual(JSON.parse(readFileSync(path.join(out, 'latents-00001.captions.json'), 'utf8')), ['a red square', 'a blue circle', 'a green bar']);
  // resumable: a lost shard is made again, byte-identical
  const before = readFileSync(path.join(out, 'latents-00001.safetensors'));
  rmSync(path.join(out, 'latents-00001.safetensors'));
  await makeLatents(LatentsConfigSchema.parse({ teacher, data: real, out, shardSize: 3, batchSize: 2, device: 'cpu' }), quiet);
  t.deepEqual(readFileSync(path.join(out, 'latents-00001.safetensors')), before);
  // the GAN on latents = the GAN encoding the same images per batch (same order, same seed)
  const run = async (data: string, name: string) => {
    const tr = await DMDTrainer.create({ ...base, out: path.join(dir, name), steps: 3, fakeUpdatesPerGen: 1, gan: true, data }, quiet);
    await tr.train(quiet, { progress: false });
    tr.dispose();
    return readFileSync(path.join(dir, name, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  };
  const [a, c] = [await run(real, 'gan-images'), await run(out, 'gan-latents')];
  for (let i = 0; i < 3; i++) for (const k of ['loss_gan_head', 'd_real', 'loss_fake']) t.true(Math.abs(a[i]![k]! - c[i]![k]!) <= 1e-4 * Math.max(1, Math.abs(a[i]![k]!)), `step ${i + 1} ${k}: ${a[i]![k]} vs ${c[i]![k]}`);
  // other settings in the same directory, or latents of another teacher, are refused naming the difference
  await t.throwsAsync(makeLatents(LatentsConfigSchema.parse({ teacher, data: real, out, shardSize: 4, device: 'cpu' }), quiet), { message: /holds latents made with other settings \(shardSize differ\)/ });
  const other = path.join(dir, 'other-teacher.safetensors');
  const sd2 = tinySD(5);
  sd2.saveSingleFile(other);
  sd2.dispose();
  await t.throwsAsync(DMDTrainer.create({ ...base, teacher: other, out: path.join(dir, 'y'), steps: 1, gan: true, data: out }, quiet), { message: /latents encoded with the VAE of .*sd-teacher\.safetensors, not of this run's teacher .*other-teacher\.safetensors/ });
  await t.throwsAsync(makeLatents(LatentsConfigSchema.parse({ teacher, data: pngClassFolder(dir), out: path.join(dir, 'nocap'), device: 'cpu' }), quiet), { message: /have no captions/ });
});
