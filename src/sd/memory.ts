// What training an SD v1 latent UNet costs in memory, from its architecture: the activations one
// sample keeps for backward (walking the blocks as ldm's UNetModel builds them), with or without
// activation checkpointing, with attention probabilities stored (the exact attention of libtorch 1.x)
// or not (scaled_dot_product_attention's fused kernels on libtorch >= 2 with CUDA). An estimate to
// decide before the first step whether a batch fits, not an allocator trace.
import type { SDUNetConfig } from './config.js';

export interface ActivationEstimateOptions {
  /** bytes per activation element (2 for bfloat16/float16 execution, 4 for float32) */
  bytes: number;
  /** activation checkpointing per block: only block inputs are kept, one block is recomputed at a time */
  checkpointing: boolean;
  /** whether attention keeps its L x L probabilities (false for fused attention kernels) */
  attentionProbs: boolean;
}

interface Block {
  /** elements kept for backward without checkpointing */
  kept: number;
  /** elements of the block's input (what checkpointing keeps) */
  input: number;
  /** elements of attention probabilities (kept unless attention is fused) */
  probs?: number;
}

function resBlock(cin: number, cout: number, L: number): Block {
  // GroupNorm, SiLU and conv inputs of both halves, the time-embedding sum, the skip path
  return { kept: (3 * cin + 5 * cout) * L, input: cin * L };
}

function transformer(c: SDUNetConfig, ch: number, L: number): Block {
  const heads = c.num_head_channels > 0 ? ch / c.num_head_channels : c.num_heads;
  const ctx = 77;
  // norms, projections, q/k/v, the attention outputs and residuals, GEGLU's 8x-wide projection
  const perBlock = 35 * ch * L + 2 * ctx * ch;
  const probs = 2 * heads * L * (L + ctx);
  return { kept: 3 * ch * L + c.transformer_depth * perBlock, input: ch * L, probs: c.transformer_depth * probs };
}

/** Bytes of activations one sample keeps for one backward through the UNet at latent size h x w. */
export function sdActivationBytes(c: SDUNetConfig, h: number, w: number, o: ActivationEstimateOptions): number {
  const blocks: Block[] = [];
  const levels = c.channel_mult.length;
  const attn = (l: number) => c.attention_resolutions.includes(2 ** l);
  let ch = c.model_channels;
  const skips: number[] = [ch];
  blocks.push({ kept: c.in_channels * h * w, input: c.in_channels * h * w });
  for (let l = 0; l < levels; l++) {
    const L = (h >> l) * (w >> l);
    for (let b = 0; b < c.num_res_blocks; b++) {
      const out = c.model_channels * c.channel_mult[l]!;
      blocks.push(resBlock(ch, out, L));
      ch = out;
      if (attn(l)) blocks.push(transformer(c, ch, L));
      skips.push(ch);
    }
    if (l < levels - 1) {
      blocks.push({ kept: ch * L, input: ch * L });
      skips.push(ch);
    }
  }
  const Lmid = (h >> (levels - 1)) * (w >> (levels - 1));
  blocks.push(resBlock(ch, ch, Lmid), transformer(c, ch, Lmid), resBlock(ch, ch, Lmid));
  for (let l = levels - 1; l >= 0; l--) {
    const L = (h >> l) * (w >> l);
    for (let b = 0; b <= c.num_res_blocks; b++) {
      const out = c.model_channels * c.channel_mult[l]!;
      blocks.push(resBlock(ch + skips.pop()!, out, L));
      ch = out;
      if (attn(l)) blocks.push(transformer(c, ch, L));
    }
    if (l > 0) blocks.push({ kept: 4 * ch * L, input: ch * L });
  }
  blocks.push({ kept: 3 * ch * h * w, input: ch * h * w });
  const full = (b: Block) => b.kept + (o.attentionProbs ? b.probs ?? 0 : 0);
  let elements: number;
  if (o.checkpointing) {
    // the inputs of every block, plus one block recomputed with its gradients in backward
    elements = blocks.reduce((a, b) => a + b.input, 0) + 2 * Math.max(...blocks.map(full));
  } else {
    // everything, plus the gradients of the largest block in flight
    elements = blocks.reduce((a, b) => a + full(b), 0) + Math.max(...blocks.map(full));
  }
  return elements * o.bytes;
}
