// CLIP's byte-level BPE tokenizer with Stable Diffusion v1's convention: [<|startoftext|>] + up to 75
// token ids + [<|endoftext|>], padded with <|endoftext|> (49407) to 77. Text is cleaned as openai's
// SimpleTokenizer does (HTML entities unescaped, whitespace runs collapsed, lower case), split with its
// pattern, mapped to byte symbols (GPT-2's bytes_to_unicode) and merged by rank with the merges of
// openai's bpe_simple_vocab_16e6.txt.gz (shipped in assets/clip, MIT licence).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor } from '../tensor/create.js';
import type { Tensor } from '../tensor/tensor.js';

export class TokenizerError extends Error {
  readonly code = 'ERR_TOKENIZER';
}

export const BOS = 49406;
export const EOS = 49407;

/** The vocabulary shipped with the package. */
export function defaultVocabPath(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../assets/clip/bpe_simple_vocab_16e6.txt.gz');
}

/** GPT-2's map from bytes to printable symbols: printable Latin-1 bytes map to themselves, the rest to 256+. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => { out[b] = String.fromCodePoint(cs[i]!); });
  return out;
}

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function unescapeHtml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return ENTITIES[e] ?? m;
  });
}

export interface Tokenized {
  /** context_length ids: BOS, the prompt's ids (at most context_length - 2), EOS, EOS padding */
  ids: number[];
  /** the text of the ids that did not fit, or null */
  dropped: string | null;
}

export class CLIPTokenizer {
  private readonly encoder = new Map<string, number>();
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly byteEncoder = bytesToUnicode();
  private readonly byteDecoder = new Map<string, number>();
  private readonly cache = new Map<string, string[]>();

  constructor(merges: string[]) {
    this.byteEncoder.forEach((c, b) => this.byteDecoder.set(c, b));
    // ids: the 256 byte symbols in bytes_to_unicode's order, the same with '</w>', one per merge, then the two specials
    const order: string[] = [];
    for (let b = 0x21; b <= 0x7e; b++) order.push(this.byteEncoder[b]!);
    for (let b = 0xa1; b <= 0xac; b++) order.push(this.byteEncoder[b]!);
    for (let b = 0xae; b <= 0xff; b++) order.push(this.byteEncoder[b]!);
    for (let b = 0; b < 256; b++) if (!((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff))) order.push(this.byteEncoder[b]!);
    const vocab = [...order, ...order.map((s) => `${s}</w>`)];
    merges.forEach((m, i) => {
      const [a, b] = m.split(' ');
      if (a === undefined || b === undefined) throw new TokenizerError(`merge ${i + 1} ('${m}') is not a pair`);
      this.ranks.set(m, i);
      vocab.push(a + b);
    });
    vocab.push('<|startoftext|>', '<|endoftext|>');
    vocab.forEach((v, i) => { this.encoder.set(v, i); this.decoder.push(v); });
    if (this.decoder.length !== EOS + 1) throw new TokenizerError(`the vocabulary has ${this.decoder.length} entries, CLIP's has ${EOS + 1} (not openai's bpe_simple_vocab_16e6.txt.gz?)`);
  }

  /** openai's merges file (gzip): line 0 a header, then 48894 merges, in rank order. */
  static load(file = defaultVocabPath()): CLIPTokenizer {
    let text: string;
    try {
      const raw = readFileSync(file);
      text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
    } catch (e) {
      throw new TokenizerError(`${file}: cannot read the BPE vocabulary (${e instanceof Error ? e.message : String(e)})`);
    }
    const lines = text.split('\n');
    return new CLIPTokenizer(lines.slice(1, 49152 - 256 - 2 + 1));
  }

  get vocabSize(): number { return this.decoder.length; }

  private bpe(token: string): string[] {
    const known = this.cache.get(token);
    if (known) return known;
    const chars = [...token];
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1]}</w>`];
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const a = word[best]!, b = word[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < word.length; ) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) { next.push(a + b); i += 2; }
        else next.push(word[i++]!);
      }
      word = next;
    }
    this.cache.set(token, word);
    return word;
  }

  /** The BPE ids of a text (no BOS/EOS). */
  encode(text: string): number[] {
    const clean = unescapeHtml(unescapeHtml(text)).replace(/\s+/gu, ' ').trim().toLowerCase();
    const ids: number[] = [];
    for (const m of clean.matchAll(PATTERN)) {
      const symbols = [...Buffer.from(m[0], 'utf8')].map((b) => this.byteEncoder[b]!).join('');
      for (const piece of this.bpe(symbols)) ids.push(this.encoder.get(piece)!);
    }
    return ids;
  }

  /** Text of ids (byte symbols decoded, '</w>' ends a word). */
  decode(ids: readonly number[]): string {
    const text = ids.map((i) => this.decoder[i] ?? '').join('');
    const bytes = [...text.replace(/<\|startoftext\|>|<\|endoftext\|>/g, '')].map((c) => this.byteDecoder.get(c) ?? 0x20);
    return Buffer.from(bytes).toString('utf8').replace(/<\/w>/g, ' ').trim();
  }

  /** SD v1's input: [BOS] + ids[:L - 2] + [EOS], padded with EOS to L (77). */
  tokenize(prompt: string, contextLength = 77): Tokenized {
    const ids = this.encode(prompt);
    const keep = contextLength - 2;
    const body = ids.slice(0, keep);
    const out = [BOS, ...body, EOS];
    while (out.length < contextLength) out.push(EOS);
    return { ids: out, dropped: ids.length > keep ? this.decode(ids.slice(keep)) : null };
  }

  /** Token ids int64 [P, L] of prompts; `warn` hears of every truncated prompt with the words it lost. */
  batch(prompts: readonly string[], o: { contextLength?: number; warn?: (msg: string) => void } = {}): Tensor {
    const rows = prompts.map((p, i) => {
      const r = this.tokenize(p, o.contextLength ?? 77);
      if (r.dropped !== null)
        o.warn?.(`prompt ${i + 1} is longer than ${(o.contextLength ?? 77) - 2} tokens and was truncated; dropped: "${r.dropped}"`);
      return r.ids;
    });
    return tensor(rows, { dtype: 'int64' });
  }
}
