// What a DMD run holds in memory per process, before its first step: the frozen teacher, the trained
// copies (generator, fake score) with their gradients and AdamW's two moments, the EMA copy, the frozen
// parts the teacher comes with (text encoder, VAE, prompt embeddings), and per sample the activations
// one backward keeps. Weights are float32 "master" weights whatever --dtype the networks run in.
import type { MemoryEstimate } from '../train/memory.js';
import { trainsFakeScore, type DMDConfig } from './config.js';
import type { ScoreModel } from './score-model.js';

/** The estimate for these settings and teacher (see checkMemory in train/memory.ts). */
export function dmdMemoryEstimate(cfg: DMDConfig, teacher: ScoreModel): MemoryEstimate {
  const P = teacher.parameterCount();
  const trained = 1 + (trainsFakeScore(cfg) ? 1 : 0);
  // float32 weights (4 bytes), gradients (4) and AdamW's exp_avg and exp_avg_sq (8) per trained parameter
  const weights = 4 * P * (1 + trained + (cfg.emaDecay > 0 ? 1 : 0));
  return { fixedBytes: weights + 12 * P * trained + teacher.frozenBytes(), perSampleBytes: teacher.trainingBytesPerImage(cfg.dtype) };
}
