// The text conditioning of a training run: a list of prompts and their embeddings by the frozen text
// encoder. When the whole table is small (under `cacheBytes`) every prompt is encoded once at the start
// and batches are rows of that table; otherwise the prompts a batch draws are encoded when drawn.
import type { Tensor } from '../tensor/tensor.js';
import { tidy, keep, dispose } from '../tensor/scope.js';
import { cat } from '../tensor/create.js';
import type { ExecutionDType } from '../tensor/device.js';
import type { StableDiffusion } from './pipeline.js';

export interface PromptEmbeddingOptions {
  /** the text encoder's execution precision (the embeddings are float32 either way) */
  dtype?: ExecutionDType;
  /** encode everything once when the table fits in this many bytes (default 256 MiB) */
  cacheBytes?: number;
  /** prompts per text-encoder batch while filling the table */
  batchSize?: number;
  /** hears of truncated prompts (once per prompt) */
  warn?: (msg: string) => void;
}

export class PromptEmbeddings {
  /** [P, tokens, width] when cached, else null */
  private readonly table: Tensor | null;

  constructor(private readonly sd: StableDiffusion, readonly prompts: readonly string[], private readonly o: PromptEmbeddingOptions = {}) {
    if (!prompts.length) throw new RangeError('no prompts to condition on');
    const t = sd.config.text;
    const bytes = prompts.length * t.context_length * t.width * 4;
    if (bytes > (o.cacheBytes ?? 256 * 2 ** 20)) {
      this.table = null;
      return;
    }
    const bs = o.batchSize ?? 64;
    const parts: Tensor[] = [];
    try {
      for (let i = 0; i < prompts.length; i += bs) parts.push(keep(sd.encodePrompts(prompts.slice(i, i + bs), { dtype: o.dtype, warn: o.warn })));
      this.table = keep(cat(parts));
    } finally {
      dispose(parts);
    }
  }

  get size(): number { return this.prompts.length; }
  /** bytes of the cached table (0 when batches are encoded when drawn) */
  get bytes(): number { return this.table ? this.table.numel * 4 : 0; }
  /** whether every prompt's embedding is held (else batches are encoded when drawn) */
  get cached(): boolean { return this.table !== null; }

  /** The embeddings [N, tokens, width] of prompts at `indices` (int64 [N], any device). */
  take(indices: Tensor): Tensor {
    if (this.table) return tidy(() => this.table!.indexSelect(0, indices.to(this.table!.device)));
    const rows = Array.from(indices.to('cpu').toFloat64Array(), (i) => this.prompts[i]!);
    return this.sd.encodePrompts(rows, { dtype: this.o.dtype });
  }

  dispose(): void {
    this.table?.dispose();
  }
}
