// A diffusers Stable Diffusion v1 folder (unet/, vae/, text_encoder/ with their config.json and weights,
// scheduler/scheduler_config.json) as an SD v1 single-file state dict: diffusers' published renaming of
// the UNet and VAE blocks to CompVis ldm's (input_blocks / output_blocks / middle_block; encoder.down /
// decoder.up / mid), the VAE attention's linear layers as 1x1 convolutions, the text encoder's
// `text_model.` names under cond_stage_model.transformer.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { dispose } from '../tensor/scope.js';
import { readRegularFile } from '../util/fs.js';
import { parseStableDiffusionConfig, SDConfigError, type StableDiffusionConfig } from './config.js';

export class DiffusersError extends Error {
  readonly code = 'ERR_SD_CHECKPOINT';
}

function readJSON(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new DiffusersError(`${file}: missing (a diffusers folder has a config.json per part)`);
  try {
    return JSON.parse(readRegularFile(file, 'config', 2 ** 20).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new DiffusersError(`${file}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The weights file of a part: safetensors first, then a torch.save .bin (fp32 before fp16 variants). */
function weightsFile(dir: string): string {
  const names = readdirSync(dir);
  for (const pref of [/^(diffusion_pytorch_model|model)\.safetensors$/, /\.safetensors$/, /^(diffusion_pytorch_model|pytorch_model)\.bin$/, /\.bin$/]) {
    const f = names.find((n) => pref.test(n));
    if (f) return path.join(dir, f);
  }
  throw new DiffusersError(`${dir}: holds no weights (diffusion_pytorch_model.safetensors / model.safetensors / *.bin)`);
}

const RESNET_UNET: Record<string, string> = { norm1: 'in_layers.0', conv1: 'in_layers.2', time_emb_proj: 'emb_layers.1', norm2: 'out_layers.0', conv2: 'out_layers.3', conv_shortcut: 'skip_connection' };
const RESNET_VAE: Record<string, string> = { conv_shortcut: 'nin_shortcut' };
const ATTN_VAE: Record<string, string> = { group_norm: 'norm', to_q: 'q', query: 'q', to_k: 'k', key: 'k', to_v: 'v', value: 'v', 'to_out.0': 'proj_out', proj_attn: 'proj_out' };

function renameInner(rest: string, table: Record<string, string>): string {
  for (const [from, to] of Object.entries(table)) if (rest === from || rest.startsWith(`${from}.`)) return to + rest.slice(from.length);
  return rest;
}

function unetKey(k: string, nrb: number, attnUp: (i: number) => boolean): string | null {
  const simple: Record<string, string> = { conv_in: 'input_blocks.0.0', 'time_embedding.linear_1': 'time_embed.0', 'time_embedding.linear_2': 'time_embed.2', conv_norm_out: 'out.0', conv_out: 'out.2' };
  for (const [from, to] of Object.entries(simple)) if (k.startsWith(`${from}.`)) return to + k.slice(from.length);
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)$/.exec(k);
  if (m) {
    const b = 1 + Number(m[1]) * (nrb + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `input_blocks.${b}.0.${renameInner(m[4]!, RESNET_UNET)}` : `input_blocks.${b}.1.${m[4]}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)$/.exec(k);
  if (m) return `input_blocks.${(Number(m[1]) + 1) * (nrb + 1)}.0.op.${m[2]}`;
  m = /^mid_block\.(resnets|attentions)\.(\d+)\.(.*)$/.exec(k);
  if (m) return m[1] === 'resnets' ? `middle_block.${2 * Number(m[2])}.${renameInner(m[3]!, RESNET_UNET)}` : `middle_block.1.${m[3]}`;
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)$/.exec(k);
  if (m) {
    const b = Number(m[1]) * (nrb + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `output_blocks.${b}.0.${renameInner(m[4]!, RESNET_UNET)}` : `output_blocks.${b}.1.${m[4]}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)$/.exec(k);
  if (m) return `output_blocks.${Number(m[1]) * (nrb + 1) + nrb}.${attnUp(Number(m[1])) ? 2 : 1}.conv.${m[2]}`;
  return null;
}

function vaeKey(k: string, levels: number): string | null {
  let m = /^(encoder|decoder)\.(conv_in|conv_out)\.(.*)$/.exec(k);
  if (m) return `${m[1]}.${m[2]}.${m[3]}`;
  m = /^(encoder|decoder)\.conv_norm_out\.(.*)$/.exec(k);
  if (m) return `${m[1]}.norm_out.${m[2]}`;
  m = /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)$/.exec(k);
  if (m) return `encoder.down.${m[1]}.block.${m[2]}.${renameInner(m[3]!, RESNET_VAE)}`;
  m = /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)$/.exec(k);
  if (m) return `encoder.down.${m[1]}.downsample.conv.${m[2]}`;
  m = /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)$/.exec(k);
  if (m) return `decoder.up.${levels - 1 - Number(m[1])}.block.${m[2]}.${renameInner(m[3]!, RESNET_VAE)}`;
  m = /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)$/.exec(k);
  if (m) return `decoder.up.${levels - 1 - Number(m[1])}.upsample.conv.${m[2]}`;
  m = /^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)$/.exec(k);
  if (m) return `${m[1]}.mid.block_${Number(m[2]) + 1}.${renameInner(m[3]!, RESNET_VAE)}`;
  m = /^(encoder|decoder)\.mid_block\.attentions\.0\.(.*)$/.exec(k);
  if (m) return `${m[1]}.mid.attn_1.${renameInner(m[2]!, ATTN_VAE)}`;
  if (/^(quant_conv|post_quant_conv)\./.test(k)) return k;
  return null;
}

/** The folder's parts as one SD v1 single-file state dict, with the config from its config.json files. */
export function diffusersToLdm(dir: string, read: (file: string) => Map<string, Tensor>): { config: StableDiffusionConfig; tensors: Map<string, Tensor> } {
  const uc = readJSON(path.join(dir, 'unet', 'config.json'));
  const vc = readJSON(path.join(dir, 'vae', 'config.json'));
  const tc = readJSON(path.join(dir, 'text_encoder', 'config.json'));
  const sc = existsSync(path.join(dir, 'scheduler', 'scheduler_config.json')) ? readJSON(path.join(dir, 'scheduler', 'scheduler_config.json')) : {};
  if (sc.prediction_type && sc.prediction_type !== 'epsilon') throw new DiffusersError(`${dir}: prediction_type ${String(sc.prediction_type)} (SD 2.x v-prediction) is not supported yet; SD v1 predicts eps`);
  if (tc.hidden_act && tc.hidden_act !== 'quick_gelu') throw new DiffusersError(`${dir}: a text encoder with ${String(tc.hidden_act)} is not SD v1's CLIP (SD 2.x's OpenCLIP is not supported yet)`);
  const blocks = (uc.block_out_channels as number[]) ?? [];
  const mc = blocks[0]!;
  const nrb = Number(uc.layers_per_block ?? 2);
  const downTypes = (uc.down_block_types as string[]) ?? [];
  const upTypes = (uc.up_block_types as string[]) ?? [];
  const heads = uc.attention_head_dim;
  let config: StableDiffusionConfig;
  try {
    config = parseStableDiffusionConfig({
      unet: {
        in_channels: uc.in_channels, out_channels: uc.out_channels, model_channels: mc, num_res_blocks: nrb,
        channel_mult: blocks.map((b) => b / mc), attention_resolutions: downTypes.flatMap((t, i) => (/CrossAttn/.test(t) ? [2 ** i] : [])),
        num_heads: typeof heads === 'number' ? heads : 8, num_head_channels: -1, transformer_depth: 1, context_dim: uc.cross_attention_dim,
      },
      vae: {
        embed_dim: vc.latent_channels ?? 4, ...(typeof vc.scaling_factor === 'number' ? { scale_factor: vc.scaling_factor } : {}),
        ddconfig: {
          ch: ((vc.block_out_channels as number[]) ?? [128])[0], ch_mult: ((vc.block_out_channels as number[]) ?? [128]).map((b) => b / ((vc.block_out_channels as number[])[0]!)),
          num_res_blocks: vc.layers_per_block ?? 2, in_channels: vc.in_channels ?? 3, out_ch: vc.out_channels ?? 3, z_channels: vc.latent_channels ?? 4, attn_resolutions: [],
        },
      },
      text: { vocab_size: tc.vocab_size, width: tc.hidden_size, heads: tc.num_attention_heads, layers: tc.num_hidden_layers, context_length: tc.max_position_embeddings },
      schedule: { ...(typeof sc.beta_start === 'number' ? { linear_start: sc.beta_start } : {}), ...(typeof sc.beta_end === 'number' ? { linear_end: sc.beta_end } : {}), ...(typeof sc.num_train_timesteps === 'number' ? { timesteps: sc.num_train_timesteps } : {}) },
    }, `${dir}: config.json files`);
  } catch (e) {
    if (e instanceof SDConfigError) throw new DiffusersError(e.message);
    throw e;
  }
  const attnUp = (i: number) => /CrossAttn/.test(upTypes[i] ?? '');
  const out = new Map<string, Tensor>();
  const add = (file: string, prefix: string, rename: (k: string) => string | null, what: string) => {
    const t = read(file);
    for (const [k, v] of t) {
      const to = rename(k);
      if (to === null) {
        dispose(t);
        dispose(out);
        throw new DiffusersError(`${file}: ${what} weight '${k}' has no SD v1 counterpart (not an SD v1 ${what}?)`);
      }
      // the VAE attention's linear layers are 1x1 convolutions in ldm
      out.set(prefix + to, what === 'VAE' && /mid\.attn_1\.(q|k|v|proj_out)\.weight$/.test(to) && v.shape.length === 2 ? v.reshape([...v.shape, 1, 1]) : v);
      if (what === 'VAE' && out.get(prefix + to) !== v) v.dispose();
    }
  };
  add(weightsFile(path.join(dir, 'unet')), 'model.diffusion_model.', (k) => unetKey(k, nrb, attnUp), 'UNet');
  add(weightsFile(path.join(dir, 'vae')), 'first_stage_model.', (k) => vaeKey(k, config.vae.ddconfig.ch_mult.length), 'VAE');
  add(weightsFile(path.join(dir, 'text_encoder')), 'cond_stage_model.transformer.', (k) => k, 'text encoder');
  return { config, tensors: out };
}
