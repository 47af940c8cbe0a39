// CLIP score (Hessel et al. 2021, as text-to-image papers report it): 100 * max(cos(E_img, E_txt), 0)
// between an image's and its prompt's embeddings by a CLIP ViT, averaged over samples. The weights are
// the user's: openai's released ViT files (TorchScript .pt), open_clip's or any state dict with openai's
// names (.pt/.bin/.safetensors), or Hugging Face CLIPModel's names (.safetensors). Images are resized
// (bicubic, antialiased) so that the shorter side is the model's input size, centre-cropped and
// normalised with CLIP's mean and std; text is cut to the model's context (77 tokens) and pooled at the
// end-of-text token, as openai's encode_text does.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { tensor, arange } from '../tensor/create.js';
import type { Device, ExecutionDType } from '../tensor/device.js';
import { interpolate } from '../nn/functional.js';
import { readSafetensors } from '../io/safetensors.js';
import { readTorchSave, TorchSaveError } from '../io/torchsave.js';
import { CLIPTextEncoder } from '../sd/clip.js';
import { CLIPImageEncoder, type CLIPVisionConfig } from '../sd/clip-vision.js';
import { CLIPTokenizer } from '../sd/tokenizer.js';
import { TorchScriptModule } from './fid.js';
import { Tensor as TensorClass } from '../tensor/tensor.js';

export class CLIPScoreError extends Error {
  readonly code = 'ERR_CLIP';
}

const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

/** A state dict's tensors by name, from any of the file kinds CLIP weights come in. */
function readState(file: string): Map<string, Tensor> {
  if (!existsSync(file)) throw new CLIPScoreError(`--clip ${file}: no such file (give openai's ViT-B-32.pt / ViT-L-14.pt, or an open_clip or Hugging Face CLIP checkpoint)`);
  if (/\.safetensors$/i.test(file)) return readSafetensors(file).tensors;
  let value: unknown;
  try {
    value = readTorchSave(file);
  } catch (e) {
    if (!(e instanceof TorchSaveError)) throw e;
    // openai's released files are TorchScript archives: their weights are the script module's parameters
    try {
      const m = new TorchScriptModule(file);
      const out = new Map([...m.state()].map(([n, t]) => [n, keep(t)] as const));
      m.dispose();
      return out;
    } catch (e2) {
      throw new CLIPScoreError(`--clip ${file}: neither a state dict nor a TorchScript archive (${e instanceof Error ? e.message : String(e)}; ${e2 instanceof Error ? e2.message : String(e2)})`);
    }
  }
  const root = value instanceof Map ? Object.fromEntries(value) : (value as Record<string, unknown>);
  const dict = (root && typeof root === 'object' && 'state_dict' in root ? root.state_dict : root) as Record<string, unknown> | Map<string, unknown>;
  const entries = dict instanceof Map ? [...dict.entries()] : Object.entries(dict ?? {});
  const out = new Map<string, Tensor>();
  for (const [k, v] of entries) if (v instanceof TensorClass) out.set(String(k), v);
  if (!out.size) throw new CLIPScoreError(`--clip ${file}: holds no tensors`);
  return out;
}

/** openai block names (resblocks.N.attn.in_proj_weight, ...) to Hugging Face's (layers.N.self_attn.q_proj.weight, ...). */
function renameBlocks(from: Map<string, Tensor>, prefix: string, to: string, out: Map<string, Tensor>): void {
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.(.+)$`);
  const names: Record<string, string> = { 'attn.out_proj': 'self_attn.out_proj', ln_1: 'layer_norm1', ln_2: 'layer_norm2', 'mlp.c_fc': 'mlp.fc1', 'mlp.c_proj': 'mlp.fc2' };
  for (const [k, v] of from) {
    const m = re.exec(k);
    if (!m) continue;
    const [, i, rest] = m as unknown as [string, string, string];
    const base = `${to}${i}.`;
    if (rest === 'attn.in_proj_weight' || rest === 'attn.in_proj_bias') {
      const kind = rest.endsWith('weight') ? 'weight' : 'bias';
      const [q, kk, vv] = v.chunk(3, 0) as [Tensor, Tensor, Tensor];
      out.set(`${base}self_attn.q_proj.${kind}`, q);
      out.set(`${base}self_attn.k_proj.${kind}`, kk);
      out.set(`${base}self_attn.v_proj.${kind}`, vv);
      continue;
    }
    const hit = Object.keys(names).find((n) => rest.startsWith(`${n}.`));
    if (hit) out.set(`${base}${names[hit]}${rest.slice(hit.length)}`, v);
  }
}

interface CLIPParts {
  vision: Map<string, Tensor>;
  text: Map<string, Tensor>;
  /** [vision width, embed] and [text width, embed] */
  visualProjection: Tensor;
  textProjection: Tensor;
}

/** The two towers' weights under our (Hugging Face) names, from openai/open_clip or Hugging Face names. */
function splitState(s: Map<string, Tensor>, file: string): CLIPParts {
  const get = (k: string) => {
    const t = s.get(k);
    if (!t) throw new CLIPScoreError(`--clip ${file}: no '${k}' tensor; this is not a CLIP ViT checkpoint (ResNet CLIPs are not supported)`);
    return t;
  };
  const vision = new Map<string, Tensor>();
  const text = new Map<string, Tensor>();
  if (s.has('visual.conv1.weight')) {
    vision.set('embeddings.patch_embedding.weight', get('visual.conv1.weight'));
    vision.set('embeddings.class_embedding', get('visual.class_embedding'));
    vision.set('embeddings.position_embedding.weight', get('visual.positional_embedding'));
    for (const [a, b] of [['ln_pre', 'pre_layrnorm'], ['ln_post', 'post_layernorm']] as const)
      for (const w of ['weight', 'bias']) vision.set(`${b}.${w}`, get(`visual.${a}.${w}`));
    renameBlocks(s, 'visual.transformer.resblocks.', 'encoder.layers.', vision);
    text.set('embeddings.token_embedding.weight', get('token_embedding.weight'));
    text.set('embeddings.position_embedding.weight', get('positional_embedding'));
    for (const w of ['weight', 'bias']) text.set(`final_layer_norm.${w}`, get(`ln_final.${w}`));
    renameBlocks(s, 'transformer.resblocks.', 'encoder.layers.', text);
    return { vision, text, visualProjection: get('visual.proj'), textProjection: get('text_projection') };
  }
  if (s.has('vision_model.embeddings.patch_embedding.weight')) {
    for (const [k, v] of s) {
      if (k.startsWith('vision_model.')) vision.set(k.slice('vision_model.'.length), v);
      else if (k.startsWith('text_model.') && !k.endsWith('position_ids')) text.set(k.slice('text_model.'.length), v);
    }
    return { vision, text, visualProjection: get('visual_projection.weight').t(), textProjection: get('text_projection.weight').t() };
  }
  throw new CLIPScoreError(`--clip ${file}: neither openai/open_clip names (visual.conv1.weight, ...) nor Hugging Face CLIPModel names (vision_model.*); give a CLIP ViT checkpoint`);
}

function countLayers(m: Map<string, Tensor>): number {
  return new Set([...m.keys()].map((k) => /^encoder\.layers\.(\d+)\./.exec(k)?.[1]).filter((x) => x !== undefined)).size;
}

export class CLIPScorer {
  private constructor(
    readonly file: string,
    readonly vision: CLIPImageEncoder,
    readonly text: CLIPTextEncoder,
    private readonly visualProjection: Tensor,
    private readonly textProjection: Tensor,
    private readonly tokenizer: CLIPTokenizer,
  ) {}

  /** Loads a CLIP ViT's two towers and projections (see the file's header for the formats). */
  static load(file: string, o: { device?: Device } = {}): CLIPScorer {
    const device = o.device ?? 'cpu';
    const state = readState(file);
    const made: { vision?: CLIPImageEncoder; text?: CLIPTextEncoder } = {};
    try {
      return tidy(() => {
        const p = splitState(state, file);
        const patch = p.vision.get('embeddings.patch_embedding.weight')!;
        const width = patch.shape[0]!;
        const grid = Math.round(Math.sqrt(p.vision.get('embeddings.position_embedding.weight')!.shape[0]! - 1));
        const vc: CLIPVisionConfig = { image_size: grid * patch.shape[2]!, patch_size: patch.shape[2]!, width, heads: Math.max(1, Math.floor(width / 64)), layers: countLayers(p.vision) };
        const tok = p.text.get('embeddings.token_embedding.weight')!;
        const tw = tok.shape[1]!;
        const vision = (made.vision = CLIPImageEncoder.create(vc, { init: false }));
        vision.loadStateDict(p.vision);
        const text = (made.text = CLIPTextEncoder.create({ vocab_size: tok.shape[0]!, context_length: p.text.get('embeddings.position_embedding.weight')!.shape[0]!, width: tw, heads: Math.max(1, Math.floor(tw / 64)), layers: countLayers(p.text) }, { init: false }));
        text.loadStateDict(p.text);
        for (const m of [vision, text]) m.eval().requiresGrad_(false).to({ device });
        const vp = keep(p.visualProjection.to({ device, dtype: 'float32' }).contiguous());
        const tp = keep(p.textProjection.to({ device, dtype: 'float32' }).contiguous());
        return new CLIPScorer(path.resolve(file), vision, text, vp, tp, CLIPTokenizer.load());
      });
    } catch (e) {
      made.vision?.dispose();
      made.text?.dispose();
      if (e instanceof CLIPScoreError) throw e;
      throw new CLIPScoreError(`--clip ${file}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      dispose([...state.values()]);
    }
  }

  get imageSize(): number { return this.vision.config.image_size; }

  /** Images in [-1, 1] (1 or 3 channels, any size) as CLIP's input: bicubic resize of the shorter side, centre crop, normalisation. */
  preprocess(images: Tensor): Tensor {
    return tidy(() => {
      const s = this.imageSize;
      const [, c, h, w] = images.shape as [number, number, number, number];
      const rgb = (c === 1 ? images.repeat([1, 3, 1, 1]) : images).to('float32').add(1).div(2).clamp(0, 1);
      const scale = s / Math.min(h, w);
      const [nh, nw] = [Math.max(s, Math.round(h * scale)), Math.max(s, Math.round(w * scale))];
      const resized = nh === h && nw === w ? rgb : interpolate(rgb, { size: [nh, nw], mode: 'bicubic', alignCorners: false, antialias: true });
      const top = Math.floor((nh - s) / 2);
      const left = Math.floor((nw - s) / 2);
      const crop = resized.narrow(2, top, s).narrow(3, left, s);
      const dev = images.device;
      return crop.sub(tensor(MEAN, { device: dev }).reshape([1, 3, 1, 1])).div(tensor(STD, { device: dev }).reshape([1, 3, 1, 1]));
    });
  }

  /** Image embeddings [N, embed] of CLIP-normalised pixels (openai's encode_image). */
  encodePixels(pixels: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return noGrad(() => tidy(() => this.vision.forward(pixels, o).matmul(this.visualProjection)));
  }

  /** Text embeddings [N, embed] of token ids [N, L] (openai's encode_text: pooled at the largest id, the end-of-text token). */
  encodeTokens(tokens: Tensor, o: { dtype?: ExecutionDType } = {}): Tensor {
    return noGrad(() => tidy(() => {
      const hidden = this.text.forward(tokens, o);
      const n = tokens.shape[0]!;
      const at = tokens.argmax(-1).to(hidden.device);
      const flat = hidden.reshape([n * hidden.shape[1]!, hidden.shape[2]!]);
      return flat.indexSelect(0, arange(0, n, 1, { device: hidden.device }).mul(hidden.shape[1]!).add(at)).matmul(this.textProjection);
    }));
  }

  /** Text embeddings of prompts (CLIP's tokenizer, cut to the model's context). */
  encodePrompts(prompts: readonly string[], o: { dtype?: ExecutionDType } = {}): Tensor {
    return tidy(() => this.encodeTokens(this.tokenizer.batch(prompts, { contextLength: this.text.config.context_length }).to(this.visualProjection.device), o));
  }

  /** Per-sample CLIP scores 100 * max(cos, 0) [N] (float64) of images in [-1, 1] and their prompts. */
  scores(images: Tensor, prompts: readonly string[], o: { dtype?: ExecutionDType } = {}): Tensor {
    if (images.shape[0] !== prompts.length) throw new RangeError(`CLIP score: ${images.shape[0]} images for ${prompts.length} prompts`);
    return tidy(() => {
      const a = this.encodePixels(this.preprocess(images.to(this.visualProjection.device)), o).to('float64');
      const b = this.encodePrompts(prompts, o).to('float64');
      const cos = a.mul(b).sum([1]).div(a.square().sum([1]).sqrt().mul(b.square().sum([1]).sqrt()));
      return cos.clamp(0, Infinity).mul(100);
    });
  }

  dispose(): void {
    this.vision.dispose();
    this.text.dispose();
    dispose([this.visualProjection, this.textProjection]);
  }
}
