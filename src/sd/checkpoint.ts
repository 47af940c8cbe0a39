// Stable Diffusion v1 teachers from the files users have: a single-file checkpoint (the
// `v1-5-pruned-emaonly.safetensors` most people download, or a `.ckpt` torch.save; keys
// `model.diffusion_model.*`, `first_stage_model.*`, `cond_stage_model.transformer.text_model.*`, the
// EMA weights `model_ema.*` when present and asked for), with the architecture inferred from the keys
// and shapes or given by an LDM config (`v1-inference.yaml`); or a diffusers folder (unet/,
// text_encoder/, vae/, tokenizer/, scheduler/) through diffusers' published key mapping. SD 2.x and
// SDXL are recognised and refused with one line.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYAML } from 'yaml';
import type { Tensor } from '../tensor/tensor.js';
import { dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import type { Device } from '../tensor/device.js';
import { readSafetensors, readSafetensorsHeader, SafetensorsError } from '../io/safetensors.js';
import { readTorchSave, torchFileKind, TorchSaveError } from '../io/torchsave.js';
import { readRegularFile } from '../util/fs.js';
import { Tensor as TensorClass } from '../tensor/tensor.js';
import { parseStableDiffusionConfig, SDConfigError, type StableDiffusionConfig, type StableDiffusionConfigInput } from './config.js';
import { SDUNet } from './unet.js';
import { CLIPTextEncoder } from './clip.js';
import { AutoencoderKL } from './vae.js';
import { CLIPTokenizer } from './tokenizer.js';
import { diffusersToLdm } from './diffusers.js';

export class SDCheckpointError extends Error {
  readonly code = 'ERR_SD_CHECKPOINT';
}

export const UNET_PREFIX = 'model.diffusion_model.';
export const VAE_PREFIX = 'first_stage_model.';
export const TEXT_PREFIX = 'cond_stage_model.transformer.text_model.';
const EMA_PREFIX = 'model_ema.';

/** What kind of diffusion checkpoint the keys are (what is not SD v1 is named by the caller). */
export function checkpointFamily(keys: Iterable<string>): 'sd1' | 'sd2' | 'sdxl' | 'edm' | 'unknown' {
  let unet = false, openclip = false, hfclip = false, sdxl = false, edm = false;
  for (const k of keys) {
    if (k.startsWith('conditioner.embedders.') || k.startsWith('model.diffusion_model.label_emb.')) sdxl = true;
    else if (k.startsWith('cond_stage_model.model.')) openclip = true;
    else if (k.startsWith('cond_stage_model.transformer.')) hfclip = true;
    else if (k.startsWith(UNET_PREFIX)) unet = true;
    else if (k.startsWith('model.enc.') || k.startsWith('model.dec.') || k.startsWith('model.map_noise')) edm = true;
  }
  if (sdxl) return 'sdxl';
  if (openclip && unet) return 'sd2';
  if (unet && hfclip) return 'sd1';
  if (edm) return 'edm';
  return 'unknown';
}

const count = (shapes: Map<string, number[]>, re: RegExp) => {
  const ids = new Set<number>();
  for (const k of shapes.keys()) {
    const m = re.exec(k);
    if (m) ids.add(Number(m[1]));
  }
  return ids.size ? Math.max(...ids) + 1 : 0;
};

/** The architecture of SD v1-layout weights, from their names and shapes (heads cannot be seen in weights: SD v1's 8, and CLIP's head size 64). */
export function inferSDConfig(shapes: Map<string, number[]>): StableDiffusionConfigInput {
  const s = (k: string) => {
    const v = shapes.get(k);
    if (!v) throw new SDCheckpointError(`missing ${k}`);
    return v;
  };
  const u = (k: string) => s(`${UNET_PREFIX}${k}`);
  const mc = u('input_blocks.0.0.weight')[0]!;
  const nInputs = count(shapes, /^model\.diffusion_model\.input_blocks\.(\d+)\./);
  const downs = [...shapes.keys()].filter((k) => /^model\.diffusion_model\.input_blocks\.\d+\.0\.op\.weight$/.test(k)).length;
  const levels = downs + 1;
  const nrb = (nInputs - 1 - downs) / levels;
  if (!Number.isInteger(nrb) || nrb < 1) throw new SDCheckpointError(`the UNet's ${nInputs} input blocks do not make ${levels} levels of equal depth`);
  const channelMult: number[] = [];
  const attn: number[] = [];
  for (let l = 0; l < levels; l++) {
    const first = 1 + l * (nrb + 1);
    channelMult.push(u(`input_blocks.${first}.0.out_layers.3.weight`)[0]! / mc);
    if (shapes.has(`${UNET_PREFIX}input_blocks.${first}.1.proj_in.weight`)) attn.push(2 ** l);
  }
  const firstST = [...shapes.keys()].find((k) => /^model\.diffusion_model\.(input_blocks|middle_block)\.\d+\.1\.transformer_blocks\.0\.attn2\.to_k\.weight$/.test(k));
  if (!firstST) throw new SDCheckpointError('the UNet has no cross-attention (not a text-conditioned SD UNet)');
  const stPrefix = firstST.slice(0, firstST.indexOf('transformer_blocks.'));
  const depth = count(shapes, new RegExp(`^${stPrefix.replace(/\./g, '\\.')}transformer_blocks\\.(\\d+)\\.`));
  const width = s(`${TEXT_PREFIX}embeddings.token_embedding.weight`)[1]!;
  const vaeLevels = count(shapes, /^first_stage_model\.encoder\.down\.(\d+)\./);
  const ch = s(`${VAE_PREFIX}encoder.conv_in.weight`)[0]!;
  return {
    unet: {
      in_channels: u('input_blocks.0.0.weight')[1]!, out_channels: u('out.2.weight')[0]!, model_channels: mc, num_res_blocks: nrb,
      channel_mult: channelMult, attention_resolutions: attn, num_heads: 8, num_head_channels: -1, transformer_depth: depth, context_dim: s(firstST)[1]!,
    },
    vae: {
      embed_dim: s(`${VAE_PREFIX}post_quant_conv.weight`)[1]!,
      ddconfig: {
        ch, in_channels: s(`${VAE_PREFIX}encoder.conv_in.weight`)[1]!, out_ch: s(`${VAE_PREFIX}decoder.conv_out.weight`)[0]!,
        z_channels: s(`${VAE_PREFIX}decoder.conv_in.weight`)[1]!, num_res_blocks: count(shapes, /^first_stage_model\.encoder\.down\.0\.block\.(\d+)\./),
        ch_mult: Array.from({ length: vaeLevels }, (_, i) => s(`${VAE_PREFIX}encoder.down.${i}.block.0.conv1.weight`)[0]! / ch),
        attn_resolutions: [],
      },
    },
    text: {
      vocab_size: s(`${TEXT_PREFIX}embeddings.token_embedding.weight`)[0]!, width, context_length: s(`${TEXT_PREFIX}embeddings.position_embedding.weight`)[0]!,
      layers: count(shapes, /^cond_stage_model\.transformer\.text_model\.encoder\.layers\.(\d+)\./), heads: Math.max(1, Math.round(width / 64)),
    },
  };
}

/** An LDM config file (CompVis's v1-inference.yaml format) as our config. */
export function readLdmConfig(file: string): StableDiffusionConfigInput {
  let doc: unknown;
  try {
    doc = parseYAML(readRegularFile(file, '--teacher-config', 2 ** 20).toString('utf8'));
  } catch (e) {
    throw new SDCheckpointError(`--teacher-config ${file}: not readable YAML (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  const p = (doc as { model?: { params?: Record<string, unknown> } })?.model?.params;
  const unet = (p?.unet_config as { params?: Record<string, unknown> } | undefined)?.params;
  const first = (p?.first_stage_config as { params?: Record<string, unknown> } | undefined)?.params;
  if (!p || !unet || !first) throw new SDCheckpointError(`--teacher-config ${file}: not an LDM config (expected model.params.unet_config.params and first_stage_config.params)`);
  const target = String((p.cond_stage_config as { target?: string } | undefined)?.target ?? '');
  if (target && !/FrozenCLIPEmbedder$/.test(target))
    throw new SDCheckpointError(`--teacher-config ${file}: its text encoder ${target} is not SD v1's CLIP (FrozenCLIPEmbedder); SD 2.x and others are not supported yet`);
  if (p.parameterization && p.parameterization !== 'eps') throw new SDCheckpointError(`--teacher-config ${file}: parameterization ${String(p.parameterization)} (v-prediction, SD 2.x) is not supported yet; SD v1 predicts eps`);
  const { lossconfig: _l, ddconfig, embed_dim, monitor: _m, ...restVae } = first as Record<string, unknown>;
  void restVae;
  return {
    unet: Object.fromEntries(Object.entries(unet).filter(([k]) => k !== 'use_fp16')) as never,
    vae: { ddconfig: ddconfig as never, embed_dim: embed_dim as number, ...(typeof p.scale_factor === 'number' ? { scale_factor: p.scale_factor } : {}) },
    schedule: {
      ...(typeof p.linear_start === 'number' ? { linear_start: p.linear_start } : {}),
      ...(typeof p.linear_end === 'number' ? { linear_end: p.linear_end } : {}),
      ...(typeof p.timesteps === 'number' ? { timesteps: p.timesteps } : {}),
    },
  };
}

export interface SDLoadOptions {
  device?: Device;
  /** use the EMA weights (`model_ema.*`) when the checkpoint has them (default: when present) */
  ema?: boolean;
  /** an LDM config (v1-inference.yaml) instead of inferring the architecture from the weights */
  config?: string;
}

/** A loaded SD v1 teacher: the three networks, the tokenizer and the schedule's config. */
export interface StableDiffusionParts {
  config: StableDiffusionConfig;
  unet: SDUNet;
  text: CLIPTextEncoder;
  vae: AutoencoderKL;
  tokenizer: CLIPTokenizer;
  /** what was read, for messages: the file and whether the EMA weights were used */
  source: { path: string; kind: 'single-file' | 'diffusers'; ema: boolean };
}

function readTensors(file: string): Map<string, Tensor> {
  const kind = torchFileKind(file);
  try {
    if (!kind) return readSafetensors(file).tensors;
    const v = readTorchSave(file);
    const root = v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof TensorClass) && !(v instanceof Uint8Array) && !(v instanceof Map) ? v : null;
    const sd = root && 'state_dict' in root ? root.state_dict : root;
    const out = new Map<string, Tensor>();
    if (sd && typeof sd === 'object' && !Array.isArray(sd) && !(sd instanceof TensorClass) && !(sd instanceof Map) && !(sd instanceof Uint8Array))
      for (const [k, t] of Object.entries(sd)) if (t instanceof TensorClass) out.set(k, t);
    const rest = root ? Object.entries(root).filter(([k]) => k !== 'state_dict').map(([, x]) => x) : [v];
    dispose(rest);
    if (!out.size) throw new SDCheckpointError(`${file}: holds no state_dict of tensors`);
    return out;
  } catch (e) {
    if (e instanceof SafetensorsError || e instanceof TorchSaveError) throw new SDCheckpointError(e.message);
    throw e;
  }
}

/** The config a file written by dmd-torch records (its heads cannot be read from the weights), or null. */
function recordedConfig(file: string): StableDiffusionConfigInput | null {
  if (torchFileKind(file)) return null;
  try {
    const m = readSafetensorsHeader(file).metadata;
    return m.format === 'dmd-torch/sd' && m.config ? (JSON.parse(m.config) as StableDiffusionConfigInput) : null;
  } catch {
    return null;
  }
}

function shapesOf(file: string): Map<string, number[]> {
  if (torchFileKind(file)) {
    const t = readTensors(file);
    const m = new Map([...t].map(([k, v]) => [k, v.shape]));
    dispose(t);
    return m;
  }
  try {
    return new Map(readSafetensorsHeader(file).entries.map((e) => [e.name, e.shape]));
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SDCheckpointError(e.message);
    throw e;
  }
}

/** Refuses what is not SD v1, naming what it is. */
function checkFamily(file: string, keys: Iterable<string>): void {
  const f = checkpointFamily(keys);
  if (f === 'sd1') return;
  const what = {
    sd2: 'a Stable Diffusion 2.x checkpoint (OpenCLIP text encoder, cond_stage_model.model.*)',
    sdxl: 'an SDXL checkpoint (conditioner.embedders.*, label_emb)',
    edm: 'an EDM teacher, not a Stable Diffusion checkpoint (pass it as it is: it is read as an EDM teacher)',
    unknown: 'not a Stable Diffusion v1 checkpoint (no model.diffusion_model.* with cond_stage_model.transformer.* keys)',
  }[f];
  throw new SDCheckpointError(`${file}: ${what}${f === 'sd2' || f === 'sdxl' ? '; only SD v1.x teachers are supported yet' : ''}`);
}

/** The conditioning timestep recorded in a one-step SD generator file from dmd-train, or null (a teacher, or not such a file). */
export function generatorTimestep(file: string): number | null {
  if (torchFileKind(file)) return null;
  try {
    const m = readSafetensorsHeader(file).metadata;
    return m.role === 'generator' && m.conditioning_timestep !== undefined ? Number(m.conditioning_timestep) : null;
  } catch {
    return null;
  }
}

/**
 * The conditioning timestep of the SD file named by --generator (which must be a one-step generator from
 * dmd-train), or null for one named by --teacher (which must not be); both at once is refused.
 */
export function sdModelRole(o: { generator?: string | undefined; teacher?: string | undefined }, file: string): number | null {
  if (o.generator !== undefined && o.teacher !== undefined)
    throw new SDCheckpointError('give either --generator (a one-step generator from dmd-train) or --teacher (sampled with DDIM), not both');
  const t = generatorTimestep(file);
  if (o.generator !== undefined && t === null)
    throw new SDCheckpointError(`${file} is a Stable Diffusion teacher, not a one-step generator from dmd-train; pass it as --teacher (sampled with DDIM), or give the generator.safetensors of a dmd-train run`);
  if (o.generator === undefined && t !== null) throw new SDCheckpointError(`${file} is a one-step generator from dmd-train, not a teacher; pass it as --generator`);
  return t;
}

/** Whether a path is an SD teacher (single file of SD v1 layout or a diffusers folder) rather than another kind. */
export function isStableDiffusion(file: string): boolean {
  try {
    if (statSync(file).isDirectory()) return existsSync(path.join(file, 'unet'));
    const f = checkpointFamily(shapesOf(file).keys());
    return f === 'sd1' || f === 'sd2' || f === 'sdxl';
  } catch {
    return false;
  }
}

/** Loads an SD v1 teacher from a single-file checkpoint or a diffusers folder (eval mode, frozen). */
export function loadStableDiffusion(source: string, o: SDLoadOptions = {}): StableDiffusionParts {
  if (!existsSync(source)) throw new SDCheckpointError(`${source}: not found (pass an SD v1 checkpoint, e.g. v1-5-pruned-emaonly.safetensors, or a diffusers folder)`);
  if (statSync(source).isDirectory()) return loadDiffusers(source, o);
  // a torch.save checkpoint is read once (its names come with its tensors); a safetensors header first
  const early = torchFileKind(source) ? readTensors(source) : null;
  const shapes = early ? new Map([...early].map(([k, v]) => [k, v.shape])) : shapesOf(source);
  try {
    checkFamily(source, shapes.keys());
  } catch (e) {
    dispose(early);
    throw e;
  }
  let config: StableDiffusionConfig;
  try {
    const recorded = o.config ? null : recordedConfig(source);
    config = parseStableDiffusionConfig(o.config ? readLdmConfig(o.config) : recorded ?? inferSDConfig(shapes), o.config ? `--teacher-config ${o.config}` : recorded ? `${source}: recorded config` : `${source}: inferred architecture`);
  } catch (e) {
    dispose(early);
    if (e instanceof SDConfigError) throw new SDCheckpointError(e.message);
    throw e;
  }
  const tensors = early ?? readTensors(source);
  const hasEma = [...tensors.keys()].some((k) => k.startsWith(EMA_PREFIX));
  const ema = o.ema ?? hasEma;
  if (ema && !hasEma) {
    dispose(tensors);
    throw new SDCheckpointError(`${source}: has no EMA weights (model_ema.*); load it without ema`);
  }
  try {
    return build(config, tensors, { path: source, kind: 'single-file', ema }, o.device, CLIPTokenizer.load(), o.config);
  } finally {
    dispose(tensors);
  }
}

/** LitEma's flattened names: model_ema. + the UNet's parameter name under diffusion_model with the dots removed. */
function emaKey(unetKey: string): string {
  return `${EMA_PREFIX}${`diffusion_model.${unetKey}`.replace(/\./g, '')}`;
}

function part(tensors: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), v);
  return out;
}

/** Loads weights into a module, naming the first missing, unexpected or mis-shaped key with both shapes. */
function fill(what: string, file: string, m: { stateDict(): Map<string, Tensor>; loadStateDict(s: Map<string, Tensor>): unknown }, weights: Map<string, Tensor>, prefix: string, configFile?: string): void {
  const want = m.stateDict();
  const hint = configFile ? `the config ${configFile} disagrees with the weights` : 'the weights are not of the SD v1 layout';
  try {
    for (const [k, t] of want) {
      const w = weights.get(k);
      if (!w) throw new SDCheckpointError(`${file}: ${what} weight ${prefix}${k} is missing (${hint})`);
      if (w.shape.join() !== t.shape.join()) throw new SDCheckpointError(`${file}: ${prefix}${k} has shape [${w.shape}] but the ${what} needs [${t.shape}] (${hint})`);
    }
    const extra = [...weights.keys()].find((k) => !want.has(k));
    if (extra) throw new SDCheckpointError(`${file}: unexpected ${what} weight ${prefix}${extra} (${hint})`);
  } finally {
    dispose(want);
  }
  noGrad(() => m.loadStateDict(weights));
}

function build(config: StableDiffusionConfig, tensors: Map<string, Tensor>, src: StableDiffusionParts['source'], device: Device | undefined, tokenizer: CLIPTokenizer, configFile?: string): StableDiffusionParts {
  // uninitialised: every weight is loaded (a missing one is an error below)
  const unet = SDUNet.create(config.unet, { init: false });
  const text = CLIPTextEncoder.create(config.text, { init: false });
  const vae = AutoencoderKL.create(config.vae, { init: false });
  try {
    let unetW = part(tensors, UNET_PREFIX);
    if (src.ema) {
      const emaW = new Map<string, Tensor>();
      for (const k of unetW.keys()) {
        const e = tensors.get(emaKey(k));
        if (!e) throw new SDCheckpointError(`${src.path}: EMA weight ${emaKey(k)} (of ${UNET_PREFIX}${k}) is missing`);
        emaW.set(k, e);
      }
      unetW = emaW;
    }
    fill('UNet', src.path, unet, unetW, UNET_PREFIX, configFile);
    const textW = part(tensors, TEXT_PREFIX);
    textW.delete('embeddings.position_ids');
    fill('text encoder', src.path, text, textW, TEXT_PREFIX, configFile);
    fill('VAE', src.path, vae, part(tensors, VAE_PREFIX), VAE_PREFIX, configFile);
    for (const m of [unet, text, vae]) {
      m.eval().requiresGrad_(false);
      if (device && device !== 'cpu') m.to({ device });
    }
    return { config, unet, text, vae, tokenizer, source: src };
  } catch (e) {
    for (const m of [unet, text, vae]) m.dispose();
    throw e;
  }
}

function loadDiffusers(dir: string, o: SDLoadOptions): StableDiffusionParts {
  for (const sub of ['unet', 'text_encoder', 'vae']) if (!existsSync(path.join(dir, sub))) throw new SDCheckpointError(`${dir}: a diffusers folder needs ${sub}/ (found ${readdirSync(dir).join(', ')})`);
  const { config, tensors } = diffusersToLdm(dir, readTensors);
  try {
    checkFamily(dir, tensors.keys());
    const merges = path.join(dir, 'tokenizer', 'merges.txt');
    return build(config, tensors, { path: dir, kind: 'diffusers', ema: false }, o.device, existsSync(merges) ? CLIPTokenizer.load(merges) : CLIPTokenizer.load());
  } finally {
    dispose(tensors);
  }
}
