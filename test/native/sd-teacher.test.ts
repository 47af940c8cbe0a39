// dmd teacher --mode sd: a latent text-to-image teacher of the SD family trained on class-labelled images
// captioned by class phrasings, in the latent space of a `dmd autoencoder` file, with a frozen seeded text
// encoder or one trained with the UNet (resume bit-exact); written as an SD v1 single file that the SD tools
// (sample, dmd-train) load; bad captions named.
import test from 'ava';
import path from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { TeacherConfigSchema, trainTeacher } from '../../src/teacher/train.js';
import { AutoencoderConfigSchema, trainAutoencoder } from '../../src/sd/autoencoder.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { readSafetensorsHeader } from '../../src/index.js';
import { CLIPTextEncoder } from '../../src/sd/clip.js';
import { deriveSeed } from '../../src/tensor/random.js';
import { tempDir } from '../helpers/tmp.js';
import { pngClassFolder } from '../helpers/data.js';

const dir = tempDir();
const data = pngClassFolder(dir);
const quiet = () => {};
const names = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot'];
const captions = path.join(dir, 'captions.jsonl');
writeFileSync(captions, names.flatMap((n, c) => [`a photo of a ${n}`, `a ${n}, studio shot`].map((text) => JSON.stringify({ text, class: c }))).join('\n'));
const aeReady = trainAutoencoder(AutoencoderConfigSchema.parse({ data, out: path.join(dir, 'ae'), resolution: 32, ch: 32, chMult: [1, 2], kimg: 0.02, batchSize: 4, device: 'cpu', sampleEvery: 1000 }), quiet, { progress: false });
const tiny = { unet: { model_channels: 32, channel_mult: [1, 2], attention_resolutions: [2], num_heads: 2 }, text: { width: 32, heads: 2, layers: 1 } };

test.serial('trains on captioned latents and writes an SD v1 single file that the SD pipeline samples', async (t) => {
  const ae = await aeReady;
  const out = path.join(dir, 't2i');
  const r = await trainTeacher(TeacherConfigSchema.parse({ mode: 'sd', vae: ae.file, captions, data, out, kimg: 0.024, batchSize: 4, lr: 1e-3, sdConfig: tiny, sampleEvery: 1000, metricsEvery: 1, device: 'cpu' }), quiet, { progress: false });
  t.is(r.status, 'done');
  const m = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'loss' in l);
  t.is(m.length, 6);
  t.true(m.every((l) => Number.isFinite(l.loss!) && l.loss! > 0));
  const h = readSafetensorsHeader(r.teacherPath);
  t.is(h.metadata.role, 'teacher');
  const sd = StableDiffusion.load(r.teacherPath);
  t.is(sd.config.vae.ddconfig.in_channels, 1);
  t.is(sd.config.vae.scale_factor, ae.scaleFactor);
  t.is(h.metadata.text_encoder, 'frozen');
  const init = CLIPTextEncoder.create(sd.config.text, { seed: deriveSeed(TeacherConfigSchema.parse({ out: dir }).seed, 7) }).stateDict();
  for (const [k, v] of sd.text.stateDict()) t.is(v.sub(init.get(k)!).abs().max().item(), 0, k);
  const x = sd.sample(['a photo of a bag', 'a coat'], { steps: 3, guidance: 2 });
  t.deepEqual(x.shape, [2, 1, 32, 32]);
  x.dispose();
  sd.dispose();
});

test.serial('--train-text-encoder trains the text encoder with the UNet, writes its EMA and resumes bit-exactly', async (t) => {
  const ae = await aeReady;
  const base = { mode: 'sd', vae: ae.file, captions, data, batchSize: 4, lr: 1e-2, sdConfig: tiny, sampleEvery: 1000, metricsEvery: 1, device: 'cpu', emaHalflifeKimg: 0.002, emaRampupRatio: null };
  const straight = await trainTeacher(TeacherConfigSchema.parse({ ...base, trainTextEncoder: true, out: path.join(dir, 'tt'), kimg: 0.024 }), quiet, { progress: false });
  await trainTeacher(TeacherConfigSchema.parse({ ...base, trainTextEncoder: true, out: path.join(dir, 'tt-split'), kimg: 0.012, checkpointEvery: 3 }), quiet, { progress: false });
  const split = await trainTeacher(TeacherConfigSchema.parse({ ...base, trainTextEncoder: true, out: path.join(dir, 'tt-split'), kimg: 0.024, resume: true, checkpointEvery: 3 }), quiet, { progress: false });
  t.deepEqual(readFileSync(straight.teacherPath), readFileSync(split.teacherPath));
  t.is(readSafetensorsHeader(straight.teacherPath).metadata.text_encoder, 'trained');
  // against the seeded initialisation (what a frozen run writes, see the first test): every tensor moved
  const b = StableDiffusion.load(straight.teacherPath);
  const a = CLIPTextEncoder.create(b.config.text, { seed: deriveSeed(TeacherConfigSchema.parse({ ...base, out: dir }).seed, 7) });
  const sa = a.stateDict();
  const sb = b.text.stateDict();
  const moved = [...sb.keys()].filter((k) => sb.get(k)!.sub(sa.get(k)!).abs().max().item() > 1e-6);
  t.true(moved.length >= sb.size - 2, `moved ${moved.length} of ${sb.size}: ${[...sb.keys()].filter((k) => !moved.includes(k)).join(', ')}`);
  t.true(moved.includes('token_embedding.weight') || moved.some((k) => k.includes('token_embedding')));
  for (const m of [sa, sb]) for (const v of m.values()) v.dispose();
  a.dispose();
  b.dispose();
});

test.serial('captions without a class, for a class the data lacks, or missing a class are refused naming the file', async (t) => {
  const ae = await aeReady;
  const cfg = { mode: 'sd', vae: ae.file, data, out: path.join(dir, 'x'), kimg: 0.004, batchSize: 4, sdConfig: tiny, device: 'cpu' };
  const bad = (lines: unknown[]) => {
    const f = path.join(dir, `bad-${Math.random().toString(36).slice(2)}.jsonl`);
    writeFileSync(f, lines.map((l) => JSON.stringify(l)).join('\n'));
    return f;
  };
  await t.throwsAsync(trainTeacher(TeacherConfigSchema.parse({ ...cfg, captions: bad([{ text: 'a bag' }]) }), quiet), { message: /every line needs a "class"/ });
  await t.throwsAsync(trainTeacher(TeacherConfigSchema.parse({ ...cfg, captions: bad([{ text: 'a bag', class: 12 }]) }), quiet), { message: /class 12 is not a class of the data \(0\.\.9\)/ });
  await t.throwsAsync(trainTeacher(TeacherConfigSchema.parse({ ...cfg, captions: bad([{ text: 'a bag', class: 8 }]) }), quiet), { message: /no phrasing for class 0/ });
  await t.throwsAsync(trainTeacher(TeacherConfigSchema.parse({ ...cfg, vae: undefined, captions })), { message: /--mode sd needs the latent space: --vae/ });
  await t.throwsAsync(trainTeacher(TeacherConfigSchema.parse({ data, out: path.join(dir, 'y'), captions, device: 'cpu' })), { message: /are for --mode sd/ });
});
