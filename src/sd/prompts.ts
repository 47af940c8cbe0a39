// Prompt files: plain text with one prompt per line, or JSON Lines with a `text` field per line
// (.jsonl) and optionally an integer `class` (the class a prompt asks for, which `dmd eval` checks
// with its classifier). Blank lines are skipped; a file that holds no prompt, is not UTF-8, or has a JSON line
// without text is refused naming the file and the line.
import { readRegularFile, FileError } from '../util/fs.js';

export class PromptsError extends Error {
  readonly code = 'ERR_PROMPTS';
}

export interface PromptRecord {
  text: string;
  /** the class the prompt asks for (JSON Lines `class` field) */
  class?: number;
}

export function readPrompts(file: string): string[] {
  return readPromptRecords(file).map((r) => r.text);
}

export function readPromptRecords(file: string): PromptRecord[] {
  let raw: Buffer;
  try {
    raw = readRegularFile(file, '--prompts', 1 << 30);
  } catch (e) {
    if (e instanceof FileError) throw new PromptsError(e.message);
    throw e;
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    throw new PromptsError(`--prompts ${file}: is not UTF-8 text (save it as UTF-8)`);
  }
  const jsonl = /\.jsonl$/i.test(file);
  const out: PromptRecord[] = [];
  text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    if (!jsonl) {
      out.push({ text: line.trim() });
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new PromptsError(`--prompts ${file}: line ${i + 1} is not JSON`);
    }
    const t = (v as { text?: unknown })?.text;
    if (typeof t !== 'string') throw new PromptsError(`--prompts ${file}: line ${i + 1} has no "text" string`);
    const c = (v as { class?: unknown }).class;
    if (c !== undefined && !(typeof c === 'number' && Number.isInteger(c) && c >= 0)) throw new PromptsError(`--prompts ${file}: line ${i + 1}: "class" must be a non-negative integer`);
    out.push(c === undefined ? { text: t } : { text: t, class: c });
  });
  if (!out.length) throw new PromptsError(`--prompts ${file}: holds no prompt (one per line${jsonl ? ', as {"text": ...}' : ''})`);
  return out;
}
