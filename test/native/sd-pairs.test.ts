// DMD's regression for Stable Diffusion teachers: `dmd pairs` makes (latent noise, prompt, the teacher's
// DDIM-with-guidance latents) pairs, sharded and resumable as for EDM; dmd-train regresses its SD
// generator onto them (latent l2, or LPIPS on the VAE's decoding with gradients through the decoder);
// pairs of another prompt file are refused, and so is the sd15-dmd recipe without pairs.
import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors, writeSafetensors, noGrad, tidy } from '../../src/index.js';
import { makePairs, PairsConfigSchema, PairsDataset, readPairsManifest } from '../../src/dmd/regression/pairs.js';
import { DMDTrainer } from '../../src/dmd/trainer.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { ddimSample } from '../../src/sd/sampler.js';
import { fileSha256 } from '../../src/util/fs.js';
import { DEFAULT_FIXTURES, readManifest } from '../parity/fixtures.js';
import { formulaWeights } from '../parity/kinds.js';
import { tempDir } from '../helpers/tmp.js';
import { tinySD } from '../helpers/sd.js';

const dir = tempDir();
const teacher = path.join(dir, 'sd-teacher.safetensors');
{
  const sd = tinySD(1);
  sd.saveSingleFile(teacher);
  sd.dispose();
}
const promptList = ['a photo of a sneaker', 'an ankle boot, studio shot', 'a red dress', 'a bag on a table', 'a shirt'];
const prompts = path.join(dir, 'prompts.txt');
writeFileSync(prompts, promptList.join('\n'));
const otherPrompts = path.join(dir, 'other.txt');
writeFileSync(otherPrompts, ['a coat', 'a sandal'].join('\n'));
const quiet = () => {};
const pairsDir = path.join(dir, 'pairs');
const pairsCfg = PairsConfigSchema.parse({ teacher, prompts, out: pairsDir, count: 6, steps: 3, guidance: 2, shardSize: 4, batchSize: 3, device: 'cpu', seed: 4 });
const pairsReady = makePairs(pairsCfg, quiet);

test.serial('dmd pairs with an SD teacher: latent noises, cycled prompt indices and the teacher\'s DDIM latents with guidance; resumable, other prompts refused', async (t) => {
  const m = await pairsReady;
  t.like(m.sampler, { solver: 'ddim', numSteps: 3, guidance: 2, nfe: 6 });
  t.deepEqual(m.imageShape, [4, 8, 8]);
  t.is(m.labelDim, 0);
  t.like(m.prompts, { sha256: fileSha256(prompts), count: 5 });
  const shard2 = path.join(pairsDir, m.shards[1]!.file);
  const r = readSafetensors(shard2).tensors;
  t.deepEqual(r.get('label')!.toArray(), [4, 0]);
  // pair 0 of shard 2 (prompt 4) is the teacher's DDIM on its noise, recomputed here
  const sd = StableDiffusion.load(teacher);
  const y = noGrad(() => tidy(() => {
    const z = r.get('z')!.narrow(0, 0, 1);
    return ddimSample(sd.epsModel(), z, { context: sd.encodePrompts([promptList[4]!]), uncond: sd.uncond() }, { steps: 3, guidance: 2, alphasCumprod: sd.alphasCumprod.toFloat64Array() }).x0.clone();
  }));
  t.true(y.allclose(r.get('y')!.narrow(0, 0, 1), 1e-5, 1e-5));
  sd.dispose();
  // a lost shard is made again byte for byte; a complete one is left alone
  const bytes = readFileSync(shard2);
  const first = readFileSync(path.join(pairsDir, m.shards[0]!.file));
  rmSync(shard2);
  await makePairs(pairsCfg, quiet);
  t.deepEqual(readFileSync(shard2), bytes);
  t.deepEqual(readFileSync(path.join(pairsDir, m.shards[0]!.file)), first);
  await t.throwsAsync(makePairs({ ...pairsCfg, prompts: otherPrompts }, quiet), { message: /other settings \(prompts differ\)/ });
  await t.throwsAsync(makePairs({ ...pairsCfg, prompts: undefined, out: path.join(dir, 'np') }, quiet), { message: /is a Stable Diffusion model: give its prompts with --prompts FILE/ });
  const ds = new PairsDataset(pairsDir);
  t.is(readPairsManifest(pairsDir).count, 6);
  ds.dispose();
});

const base = { teacher, prompts, batchSize: 2, warmupSteps: 0, finalEval: 0, sampleEvery: 100, checkpointEvery: 100, metricsEvery: 1, device: 'cpu', genLr: 1e-3, fakeLr: 1e-3 };

test.serial('dmd-train regresses an SD generator onto the pairs: latent l2 alone lowers the loss; LPIPS on decoded images runs with DM', async (t) => {
  await pairsReady;
  const out = path.join(dir, 'reg-l2');
  const tr = await DMDTrainer.create({ ...base, out, steps: 12, pairs: pairsDir, regression: 'l2', lambdaDm: 0, lambdaReg: 1, fakeUpdatesPerGen: 1, genLr: 3e-3 }, quiet);
  const res = await tr.train(quiet, { progress: false });
  t.is(res.status, 'done');
  const reg = readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>).filter((l) => 'loss_reg' in l).map((l) => l.loss_reg!);
  t.is(reg.length, 12);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  t.log(`latent l2 regression: first 4 iterations ${mean(reg.slice(0, 4)).toFixed(4)}, last 4 ${mean(reg.slice(-4)).toFixed(4)}`);
  t.true(mean(reg.slice(-4)) < 0.8 * mean(reg.slice(0, 4)), reg.map((v) => v.toFixed(4)).join(' '));
  tr.dispose();
  // LPIPS (random-formula weights of the parity fixtures' shape) on the VAE's 16x16 decodings, beside DM
  const lp = path.join(dir, 'lpips.safetensors');
  const c = readManifest(DEFAULT_FIXTURES).cases.find((x) => x.kind === 'lpips-vgg')!;
  writeSafetensors(lp, formulaWeights(c.weights as never));
  const out2 = path.join(dir, 'reg-lpips');
  const tr2 = await DMDTrainer.create({ ...base, out: out2, steps: 4, pairs: pairsDir, regression: 'lpips', lpips: lp, lpipsResize: 0, fakeUpdatesPerGen: 2 }, quiet);
  await tr2.train(quiet, { progress: false });
  const m2 = readFileSync(path.join(out2, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  const lpipsReg = m2.filter((l) => 'loss_reg' in l).map((l) => l.loss_reg!);
  t.is(lpipsReg.length, 2);
  t.true(lpipsReg.every((v) => Number.isFinite(v) && v > 0));
  t.true(m2.some((l) => l.loss_dm !== undefined && Number.isFinite(l.loss_dm)));
  tr2.dispose();
});

test.serial('pairs of another prompt file, or without prompts, are refused; sd15-dmd needs pairs', async (t) => {
  await pairsReady;
  await t.throwsAsync(DMDTrainer.create({ ...base, prompts: otherPrompts, out: path.join(dir, 'x1'), steps: 2, pairs: pairsDir, regression: 'l2' }, quiet), {
    message: /the pairs were made with another prompt file \(prompts\.txt, 5 prompts, .*\) than --prompts other\.txt \(2 prompts/,
  });
  await t.throwsAsync(DMDTrainer.create({ ...base, out: path.join(dir, 'x2'), steps: 2, recipe: 'sd15-dmd', dtype: 'float32', activationCheckpointing: false }, quiet), { message: /--recipe sd15-dmd regresses onto teacher pairs: give --pairs DIR/ });
});

test.serial('--pairs auto with an SD teacher makes DDIM pairs of the run\'s prompts and guidance once, in the cache', async (t) => {
  process.env.XDG_CACHE_HOME = path.join(dir, 'cache');
  const logs: string[] = [];
  const tr = await DMDTrainer.create({ ...base, out: path.join(dir, 'auto'), steps: 2, pairs: 'auto', autoPairs: 3, regression: 'l2', realGuidance: 2 }, (s) => logs.push(s));
  t.true(logs.some((l) => /--pairs auto: 3 teacher pairs \(DDIM, 50 steps, guidance 2\)/.test(l)), logs.join('\n'));
  const m = tr.regression!.pairs.manifest;
  t.like(m.sampler, { solver: 'ddim', numSteps: 50, guidance: 2 });
  t.is(m.prompts!.sha256, fileSha256(prompts));
  await tr.train(quiet, { progress: false });
  tr.dispose();
});
