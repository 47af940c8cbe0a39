// The evaluation at the end of a distillation run: the exported generator's FD in the evaluation
// classifier's features and its accuracy on intended classes (for a text-to-image generator, on the
// training prompts, with the classes a JSON Lines prompt file gives), printed beside the teacher's figures
// from `<teacher>.eval.json` (a `dmd eval --teacher T --out T.eval.json`) when that file exists.
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import type { Device } from '../tensor/device.js';
import { evaluate, EvalConfigSchema, EvalError, type EvalResult } from './evaluate.js';
import { ClassifierError, type ImageSpec } from './classifier.js';

export interface FinalEvalSettings {
  /** the exported generator file */
  generator: string;
  /** the teacher file it was distilled from (its .eval.json is looked for beside it) */
  teacherPath: string;
  /** what the generator makes (to know whether the bundled classifier fits) */
  spec: ImageSpec;
  /** the prompts of a text-to-image generator (its samples cycle through them) */
  prompts?: string | undefined;
  num: number;
  ref: string;
  refNum: number;
  classifier?: string | undefined;
  seed: number;
  device: Device;
  /** the run directory (final-eval.json is written there) */
  out: string;
}

/** The file a teacher's own evaluation is kept in: `T.eval.json` beside `T.safetensors` / `T.pt`. */
export function teacherEvalFile(teacherPath: string): string {
  return path.join(path.dirname(teacherPath), `${path.basename(teacherPath).replace(/\.(safetensors|pt|pth|pkl)$/, '')}.eval.json`);
}

/**
 * Evaluates the generator and logs one line with the teacher's figures beside it. Skipped, with a
 * note, when no evaluation classifier fits (returns null).
 */
export async function finalEvaluation(s: FinalEvalSettings, log: (s: string) => void): Promise<EvalResult | null> {
  const c = s.spec;
  const skipped = (why: string) => {
    log(`final evaluation skipped: ${why} (pass --classifier, or --final-eval 0)`);
    return null;
  };
  if (!s.classifier && !(c.img_channels === 1 && c.img_resolution === 32 && (c.label_dim === 10 || s.prompts))) return skipped('no evaluation classifier fits this teacher');
  const out = path.join(s.out, 'final-eval.json');
  let r: EvalResult;
  try {
    r = await evaluate(EvalConfigSchema.parse({ generator: s.generator, prompts: s.prompts, num: s.num, ref: s.ref, refNum: s.refNum, classifier: s.classifier, seed: s.seed, device: s.device, out }), () => {}, { single: true });
  } catch (e) {
    // a text-to-image run whose prompts ask for no class, or whose images the classifier does not take
    if (s.prompts && (e instanceof EvalError || e instanceof ClassifierError)) return skipped(e.message);
    throw e;
  }
  const fdKey = Object.keys(r).find((k) => k.startsWith('FD-') && !k.endsWith('_noise_floor'))!;
  const known = teacherEvalFile(s.teacherPath);
  let teacher: EvalResult | null = null;
  try {
    if (existsSync(known)) teacher = JSON.parse(readFileSync(known, 'utf8')) as EvalResult;
  } catch {
    log(`note: ${known} is not readable JSON; comparing without the teacher's figures`);
  }
  const fd = r[fdKey] as number;
  const acc = r.classifier_accuracy_on_samples as number | undefined;
  let line = `final evaluation (${s.num} samples, ${out}): ${fdKey} ${fd.toFixed(3)}`;
  const tfd = teacher?.[fdKey];
  if (typeof tfd === 'number') line += ` (teacher ${teacher!.mode} with NFE ${teacher!.nfe}: ${tfd.toFixed(3)} at ${teacher!.num} samples; ratio ${(fd / tfd).toFixed(2)})`;
  if (acc !== undefined) line += `, accuracy on intended classes ${acc.toFixed(3)}`;
  if (acc !== undefined && typeof teacher?.classifier_accuracy_on_samples === 'number') line += ` (teacher ${teacher.classifier_accuracy_on_samples.toFixed(3)})`;
  log(line);
  return r;
}
