// A small Stable Diffusion v1-layout model for tests (random weights), and its files in the layouts
// users have: an SD v1 single-file checkpoint (.safetensors, .ckpt) and a diffusers folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { writeSafetensors, writeTorchSave, tidy, noGrad, randn, Generator, type Tensor, type PickleValue } from '../../src/index.js';
import type { StableDiffusionConfigInput } from '../../src/sd/config.js';

export const TINY_SD: StableDiffusionConfigInput = {
  unet: { model_channels: 32, channel_mult: [1, 2], num_res_blocks: 1, attention_resolutions: [1], num_heads: 2, context_dim: 32, image_size: 8 },
  vae: { ddconfig: { ch: 32, ch_mult: [1, 2], num_res_blocks: 1, resolution: 16 }, embed_dim: 4 },
  text: { width: 32, heads: 2, layers: 2 },
};

/** A tiny SD with random weights everywhere (a fresh UNet's zero-initialised output convolutions would make eps 0). */
export function tinySD(seed = 0): StableDiffusion {
  const sd = StableDiffusion.create(TINY_SD, { seed });
  const g = Generator.create('cpu', seed + 100);
  noGrad(() => {
    for (const p of sd.unet.parameters()) if (p.ndim > 1) p.copy_(randn(p.shape, { generator: g }).mul(1 / Math.sqrt(p.numel / p.shape[0]!)));
  });
  return sd;
}

/** The model's weights under SD v1 single-file keys. */
export function singleFileState(sd: StableDiffusion): Map<string, Tensor> {
  const all = new Map<string, Tensor>();
  for (const [prefix, m] of [['model.diffusion_model.', sd.unet], ['first_stage_model.', sd.vae], ['cond_stage_model.transformer.text_model.', sd.text]] as const)
    for (const [k, t] of m.stateDict()) all.set(prefix + k, t);
  return all;
}

/** Writes the model as a .ckpt (torch.save {state_dict, global_step}), optionally with LitEma-style EMA weights. */
export function writeCkpt(sd: StableDiffusion, file: string, ema?: StableDiffusion): void {
  tidy(() => {
    const state: { [k: string]: PickleValue } = {};
    for (const [k, t] of singleFileState(sd)) state[k] = t;
    if (ema) for (const [k, t] of ema.unet.stateDict()) state[`model_ema.${`diffusion_model.${k}`.replace(/\./g, '')}`] = t;
    writeTorchSave(file, { state_dict: state, global_step: 123 });
  });
}

/** diffusers' names of an ldm UNet key (the inverse of src/sd/diffusers.ts for the tiny layout: 1 res block per level, 2 levels). */
function diffusersUnetKey(k: string): string {
  const inner = (s: string) => s.replace(/^in_layers\.0/, 'norm1').replace(/^in_layers\.2/, 'conv1').replace(/^emb_layers\.1/, 'time_emb_proj').replace(/^out_layers\.0/, 'norm2').replace(/^out_layers\.3/, 'conv2').replace(/^skip_connection/, 'conv_shortcut');
  const simple: [RegExp, string][] = [[/^input_blocks\.0\.0\./, 'conv_in.'], [/^time_embed\.0\./, 'time_embedding.linear_1.'], [/^time_embed\.2\./, 'time_embedding.linear_2.'], [/^out\.0\./, 'conv_norm_out.'], [/^out\.2\./, 'conv_out.']];
  for (const [re, to] of simple) if (re.test(k)) return k.replace(re, to);
  let m = /^input_blocks\.(\d+)\.(\d+)\.(.*)$/.exec(k)!;
  if (m) {
    const b = Number(m[1]);
    if (b === 2) return `down_blocks.0.downsamplers.0.conv.${m[3]!.replace(/^op\./, '')}`;
    const level = b === 1 ? 0 : 1;
    return m[2] === '0' ? `down_blocks.${level}.resnets.0.${inner(m[3]!)}` : `down_blocks.${level}.attentions.0.${m[3]}`;
  }
  m = /^middle_block\.(\d+)\.(.*)$/.exec(k)!;
  if (m) return m[1] === '1' ? `mid_block.attentions.0.${m[2]}` : `mid_block.resnets.${Number(m[1]) / 2}.${inner(m[2]!)}`;
  m = /^output_blocks\.(\d+)\.(\d+)\.(.*)$/.exec(k)!;
  const b = Number(m[1]);
  const i = Math.floor(b / 2);
  const j = b % 2;
  if (m[3]!.startsWith('conv.')) return `up_blocks.${i}.upsamplers.0.conv.${m[3]!.slice(5)}`;
  return m[2] === '0' ? `up_blocks.${i}.resnets.${j}.${inner(m[3]!)}` : `up_blocks.${i}.attentions.${j}.${m[3]}`;
}

function diffusersVaeKey(k: string): string {
  const inner = (s: string) => s.replace(/^nin_shortcut/, 'conv_shortcut');
  let m = /^(encoder|decoder)\.(conv_in|conv_out)\.(.*)$/.exec(k);
  if (m) return k;
  if ((m = /^(encoder|decoder)\.norm_out\.(.*)$/.exec(k))) return `${m[1]}.conv_norm_out.${m[2]}`;
  if ((m = /^encoder\.down\.(\d+)\.block\.(\d+)\.(.*)$/.exec(k))) return `encoder.down_blocks.${m[1]}.resnets.${m[2]}.${inner(m[3]!)}`;
  if ((m = /^encoder\.down\.(\d+)\.downsample\.conv\.(.*)$/.exec(k))) return `encoder.down_blocks.${m[1]}.downsamplers.0.conv.${m[2]}`;
  if ((m = /^decoder\.up\.(\d+)\.block\.(\d+)\.(.*)$/.exec(k))) return `decoder.up_blocks.${1 - Number(m[1])}.resnets.${m[2]}.${inner(m[3]!)}`;
  if ((m = /^decoder\.up\.(\d+)\.upsample\.conv\.(.*)$/.exec(k))) return `decoder.up_blocks.${1 - Number(m[1])}.upsamplers.0.conv.${m[2]}`;
  if ((m = /^(encoder|decoder)\.mid\.block_(\d)\.(.*)$/.exec(k))) return `${m[1]}.mid_block.resnets.${Number(m[2]) - 1}.${inner(m[3]!)}`;
  if ((m = /^(encoder|decoder)\.mid\.attn_1\.(norm|q|k|v|proj_out)\.(.*)$/.exec(k)))
    return `${m[1]}.mid_block.attentions.0.${({ norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' } as Record<string, string>)[m[2]!]}.${m[3]}`;
  return k;
}

/** Writes the tiny model as a diffusers folder (configs as diffusers writes them for SD v1). */
export function writeDiffusers(sd: StableDiffusion, dir: string): void {
  for (const sub of ['unet', 'vae', 'text_encoder', 'scheduler']) mkdirSync(path.join(dir, sub), { recursive: true });
  const c = sd.config;
  writeFileSync(path.join(dir, 'unet', 'config.json'), JSON.stringify({
    _class_name: 'UNet2DConditionModel', in_channels: 4, out_channels: 4, block_out_channels: c.unet.channel_mult.map((m) => m * c.unet.model_channels), layers_per_block: c.unet.num_res_blocks,
    down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'], attention_head_dim: c.unet.num_heads, cross_attention_dim: c.unet.context_dim, sample_size: 8,
  }));
  writeFileSync(path.join(dir, 'vae', 'config.json'), JSON.stringify({ _class_name: 'AutoencoderKL', in_channels: 3, out_channels: 3, block_out_channels: c.vae.ddconfig.ch_mult.map((m) => m * c.vae.ddconfig.ch), layers_per_block: c.vae.ddconfig.num_res_blocks, latent_channels: 4, scaling_factor: 0.18215 }));
  writeFileSync(path.join(dir, 'text_encoder', 'config.json'), JSON.stringify({ architectures: ['CLIPTextModel'], vocab_size: 49408, hidden_size: c.text.width, intermediate_size: 4 * c.text.width, num_attention_heads: c.text.heads, num_hidden_layers: c.text.layers, max_position_embeddings: 77, hidden_act: 'quick_gelu' }));
  writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify({ _class_name: 'PNDMScheduler', beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', num_train_timesteps: 1000, prediction_type: 'epsilon' }));
  tidy(() => {
    writeSafetensors(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), new Map([...sd.unet.stateDict()].map(([k, t]) => [diffusersUnetKey(k), t])));
    writeSafetensors(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), new Map([...sd.vae.stateDict()].map(([k, t]) => {
      const dk = diffusersVaeKey(k);
      return [dk, /attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(dk) ? t.reshape([t.shape[0]!, t.shape[1]!]) : t];
    })));
    writeSafetensors(path.join(dir, 'text_encoder', 'model.safetensors'), new Map([...sd.text.stateDict()].map(([k, t]) => [`text_model.${k}`, t])));
  });
}
