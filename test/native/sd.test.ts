// Stable Diffusion v1 teachers end to end on the CPU with a small random model: the files users have
// (single-file .safetensors and .ckpt with EMA weights, an LDM config, a diffusers folder) load to the
// same networks; sampling is seeded and batch-independent; activation checkpointing gives the same
// gradients; other families and bad inputs are refused with one line; `dmd sample` makes images.
import test from 'ava';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { noGrad, tidy, randn, dispose, writeSafetensors, Generator, tensor, full, type Tensor } from '../../src/index.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { loadStableDiffusion, SDCheckpointError, inferSDConfig } from '../../src/sd/checkpoint.js';
import { CLIPTokenizer } from '../../src/sd/tokenizer.js';
import { readPrompts, PromptsError } from '../../src/sd/prompts.js';
import { SDUNet } from '../../src/sd/unet.js';
import { tinySD, singleFileState, writeCkpt, writeDiffusers, TINY_SD } from '../helpers/sd.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { tinyTeacher } from '../helpers/teacher.js';

const dir = tempDir();
const quietSample = { steps: 3, guidance: 4, size: 16, seed: 1 } as const;

function sameWeights(a: StableDiffusion, b: StableDiffusion): boolean {
  return tidy(() => [[a.unet, b.unet], [a.text, b.text], [a.vae, b.vae]].every(([x, y]) => {
    const sy = y!.stateDict();
    return [...x!.stateDict()].every(([k, t]) => sy.has(k) && t.equal(sy.get(k)!));
  }));
}

test('a single-file checkpoint (.safetensors) round-trips with the architecture inferred from its keys', (t) => {
  const sd = tinySD(0);
  const file = path.join(dir, 'tiny.safetensors');
  sd.saveSingleFile(file);
  const back = StableDiffusion.load(file);
  t.deepEqual(back.config.unet.channel_mult, [1, 2]);
  t.deepEqual(back.config.unet.attention_resolutions, [1]);
  t.is(back.config.unet.context_dim, 32);
  t.is(back.config.text.layers, 2);
  t.is(back.config.vae.ddconfig.ch, 32);
  t.true(sameWeights(sd, back));
  const a = sd.sample(['a red cube', 'a blue sphere'], quietSample);
  const b = back.sample(['a red cube', 'a blue sphere'], quietSample);
  t.deepEqual(a.shape, [2, 3, 16, 16]);
  t.true(a.equal(b));
  dispose([a, b]);
  sd.dispose();
  back.dispose();
});

test('a .ckpt (torch.save with state_dict and LitEma weights): EMA weights are used when present, the raw ones on request', (t) => {
  const sd = tinySD(0);
  const ema = tinySD(5);
  const file = path.join(dir, 'tiny.ckpt');
  writeCkpt(sd, file, ema);
  const withEma = StableDiffusion.load(file);
  t.true(withEma.source!.ema);
  t.true(tidy(() => withEma.unet.parameters()[3]!.equal(ema.unet.parameters()[3]!)));
  t.true(tidy(() => withEma.text.parameters()[3]!.equal(sd.text.parameters()[3]!)), 'the text encoder and VAE are not EMA-averaged');
  const raw = StableDiffusion.load(file, { ema: false });
  t.true(sameWeights(sd, raw));
  writeCkpt(sd, path.join(dir, 'noema.ckpt'));
  t.throws(() => StableDiffusion.load(path.join(dir, 'noema.ckpt'), { ema: true }), { instanceOf: SDCheckpointError, message: /has no EMA weights/ });
  for (const m of [sd, ema, withEma, raw]) m.dispose();
});

test('an LDM config (v1-inference.yaml format) gives the architecture; one that disagrees names the first key and both shapes', (t) => {
  const sd = tinySD(0);
  const file = path.join(dir, 'cfg.safetensors');
  sd.saveSingleFile(file);
  const yaml = (mc: number) => `model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    timesteps: 1000
    scale_factor: 0.18215
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        image_size: 8
        in_channels: 4
        out_channels: 4
        model_channels: ${mc}
        attention_resolutions: [ 1 ]
        num_res_blocks: 1
        channel_mult: [ 1, 2 ]
        num_heads: 2
        use_spatial_transformer: True
        transformer_depth: 1
        context_dim: 32
        use_checkpoint: True
        legacy: False
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: 16
          in_channels: 3
          out_ch: 3
          ch: 32
          ch_mult: [ 1, 2 ]
          num_res_blocks: 1
          attn_resolutions: []
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenCLIPEmbedder
`;
  writeFileSync(path.join(dir, 'good.yaml'), yaml(32));
  writeFileSync(path.join(dir, 'bad.yaml'), yaml(64));
  // the text encoder's size is not in an LDM config (FrozenCLIPEmbedder is ViT-L/14's): the tiny one differs, so load with the inferred text config
  const e = t.throws(() => StableDiffusion.load(file, { config: path.join(dir, 'bad.yaml') }), { instanceOf: SDCheckpointError });
  t.regex(e.message, /model\.diffusion_model\.(time_embed\.0\.weight|input_blocks\.0\.0\.weight) has shape \[\d+,\d+(,\d+,\d+)?\] but the UNet needs \[\d+,\d+(,\d+,\d+)?\] \(the config .*bad\.yaml disagrees with the weights\)|context_dim 32 differs from the text encoder's width 768/);
  sd.dispose();
});

test('a diffusers folder loads through the published key mapping to the same networks as the single file', (t) => {
  const sd = tinySD(0);
  const folder = path.join(dir, 'diffusers');
  writeDiffusers(sd, folder);
  const back = StableDiffusion.load(folder);
  t.is(back.source!.kind, 'diffusers');
  t.true(sameWeights(sd, back));
  sd.dispose();
  back.dispose();
});

test('other families and broken files are refused with one line naming what was found', (t) => {
  const sd = tinySD(0);
  const state = singleFileState(sd);
  const write = (name: string, m: Map<string, Tensor>) => { const f = path.join(dir, name); writeSafetensors(f, m); return f; };
  const openclip = new Map([...state].map(([k, v]) => [k.replace('cond_stage_model.transformer.text_model.', 'cond_stage_model.model.'), v]));
  t.throws(() => loadStableDiffusion(write('sd2.safetensors', openclip)), { message: /sd2\.safetensors: a Stable Diffusion 2\.x checkpoint .*only SD v1\.x teachers are supported yet/ });
  const xl = new Map([...state, ['conditioner.embedders.0.transformer.text_model.final_layer_norm.weight', state.get('cond_stage_model.transformer.text_model.final_layer_norm.weight')!]]);
  t.throws(() => loadStableDiffusion(write('sdxl.safetensors', xl)), { message: /an SDXL checkpoint/ });
  t.throws(() => loadStableDiffusion(tinyTeacher(dir, 'edm.safetensors')), { message: /edm\.safetensors: an EDM teacher, not a Stable Diffusion checkpoint/ });
  const trunc = path.join(dir, 'trunc.safetensors');
  sd.saveSingleFile(trunc);
  writeFileSync(trunc, readFileSync(trunc).subarray(0, 5000));
  t.throws(() => loadStableDiffusion(trunc), { instanceOf: SDCheckpointError });
  const noText = new Map([...state].filter(([k]) => !k.includes('encoder.layers.1.')));
  t.notThrows(() => inferSDConfig(new Map([...noText].map(([k, v]) => [k, v.shape]))));
  t.throws(() => loadStableDiffusion(write('missing.safetensors', new Map([...state].filter(([k]) => !k.endsWith('out.2.bias'))))), { message: /UNet weight model\.diffusion_model\.out\.2\.bias is missing/ });
  dispose(state);
  sd.dispose();
});

test('sampling is seeded, independent of the batching, and guidance changes it', (t) => {
  const sd = tinySD(0);
  const prompts = ['a', 'b c', 'a photo of a dog'];
  const all = sd.sample(prompts, { ...quietSample, batchSize: 3 });
  const parts = sd.sample(prompts, { ...quietSample, batchSize: 1 });
  t.true(all.allclose(parts, 1e-5, 1e-5));
  const g1 = sd.sample(prompts, { ...quietSample, guidance: 1 });
  t.false(all.allclose(g1, 1e-3, 1e-3));
  const heun = sd.sample(prompts, { ...quietSample, sampler: 'heun' });
  t.deepEqual(heun.shape, [3, 3, 16, 16]);
  t.true(tidy(() => heun.isfinite().all().item() === 1));
  t.throws(() => sd.sample(prompts, { ...quietSample, size: 15 }), { message: /multiple of 2/ });
  t.throws(() => sd.sample(prompts, { ...quietSample, guidance: 0.5 }), { message: /must be >= 1/ });
  dispose([all, parts, g1, heun]);
  sd.dispose();
});

test('activation checkpointing gives the same loss and gradients and keeps the inputs\' gradients', (t) => {
  const unet = SDUNet.create(TINY_SD.unet!, { seed: 3 });
  // random weights everywhere (a fresh UNet's zero-initialised output would leave no gradient to compare)
  const g = Generator.create('cpu', 9);
  noGrad(() => { for (const p of unet.parameters()) p.copy_(randn(p.shape, { generator: g }).mul(0.2)); });
  const x = randn([2, 4, 8, 8], { generator: Generator.create('cpu', 1) });
  const ctx = randn([2, 77, 32], { generator: Generator.create('cpu', 2) });
  const ts = tensor([10, 900], { dtype: 'int64' });
  const grads = (ck: boolean) => {
    unet.setCheckpointing(ck);
    for (const p of unet.parameters()) p.requiresGrad_(true);
    const xi = x.clone().requiresGrad_();
    const loss = unet.forward(xi, ts, ctx).square().mean();
    loss.backward();
    const g = unet.parameters().map((p) => p.grad!.clone());
    const gx = xi.grad!.clone();
    for (const p of unet.parameters()) p.grad?.zero_();
    return { loss: loss.item(), g, gx };
  };
  // in training mode and in eval mode (DMD trains its UNets with dropout off)
  for (const mode of ['train', 'eval'] as const) {
    unet.train(mode === 'train');
    const a = grads(false);
    const b = grads(true);
    t.true(a.loss > 0);
    t.is(a.loss, b.loss, mode);
    t.true(a.g.every((g, i) => g.allclose(b.g[i]!, 1e-5, 1e-7)), `parameter gradients (${mode})`);
    t.true(a.gx.allclose(b.gx, 1e-5, 1e-7), `input gradient (${mode})`);
  }
  unet.dispose();
});

test('prompt files: lines or JSON Lines; empty, non-UTF-8 and text-less lines refused; long prompts truncated with the dropped words named', (t) => {
  writeFileSync(path.join(dir, 'p.txt'), 'a cat\n\n  a dog  \n');
  t.deepEqual(readPrompts(path.join(dir, 'p.txt')), ['a cat', 'a dog']);
  writeFileSync(path.join(dir, 'p.jsonl'), '{"text": "one"}\n{"text": "two", "id": 2}\n');
  t.deepEqual(readPrompts(path.join(dir, 'p.jsonl')), ['one', 'two']);
  writeFileSync(path.join(dir, 'empty.txt'), '\n \n');
  t.throws(() => readPrompts(path.join(dir, 'empty.txt')), { instanceOf: PromptsError, message: /holds no prompt/ });
  writeFileSync(path.join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  t.throws(() => readPrompts(path.join(dir, 'latin1.txt')), { message: /is not UTF-8 text/ });
  writeFileSync(path.join(dir, 'bad.jsonl'), '{"text": "ok"}\n{"prompt": "no"}\n');
  t.throws(() => readPrompts(path.join(dir, 'bad.jsonl')), { message: /line 2 has no "text" string/ });
  const tok = CLIPTokenizer.load();
  const warnings: string[] = [];
  const long = `${Array.from({ length: 74 }, () => 'cat').join(' ')} zebra giraffe`;
  const ids = tok.batch([long], { warn: (m) => warnings.push(m) });
  t.deepEqual(ids.shape, [1, 77]);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /dropped: "giraffe"/);
});

test('dmd sample makes images from an SD teacher with prompts; bad sizes, guidance and prompt files are one line', async (t) => {
  const sd = tinySD(0);
  const file = path.join(dir, 'cli.safetensors');
  sd.saveSingleFile(file);
  sd.dispose();
  const out = path.join(dir, 'grid.png');
  const r = await runCli('dmd', ['sample', '--teacher', file, '--prompt', 'a cat', '--prompt', 'a dog', '--steps', '2', '--size', '16', '--device', 'cpu', '--out', out]);
  t.is(r.code, 0, r.out);
  t.true(existsSync(out));
  t.regex(r.out, /2 image\(s\) of 16x16 .*ddim 2 steps, guidance 7\.5/);
  const bad = async (args: string[], re: RegExp) => {
    const b = await runCli('dmd', ['sample', '--teacher', file, '--device', 'cpu', '--out', out, ...args]);
    t.is(b.code, 1, b.out);
    t.regex(b.out, re);
    t.is(b.out.trim().split('\n').length, 1, b.out);
  };
  await bad(['--prompt', 'x', '--size', '15'], /--size 15: the image size must be a positive multiple of 2/);
  await bad(['--prompt', 'x', '--guidance', '0.5'], /--guidance 0\.5: classifier-free guidance must be >= 1/);
  writeFileSync(path.join(dir, 'none.txt'), '');
  await bad(['--prompts', path.join(dir, 'none.txt')], /none\.txt: holds no prompt/);
  await bad([], /needs prompts/);
});

test('a one-step SD generator file samples in one UNet call per batch', (t) => {
  const sd = tinySD(0);
  const file = path.join(dir, 'gen.safetensors');
  sd.saveSingleFile(file, { metadata: { role: 'generator', conditioning_timestep: '999' } });
  const x = noGrad(() => tidy(() => {
    const z = randn([1, 4, 2, 2], { generator: Generator.create('cpu', 0) });
    return sd.unet.forward(z, full([1], 999, { dtype: 'int64' }), sd.encodePrompts(['x']));
  }));
  t.deepEqual(x.shape, [1, 4, 2, 2]);
  x.dispose();
  sd.dispose();
});
