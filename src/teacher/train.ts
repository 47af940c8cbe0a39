// `dmd teacher` and trainTeacher(): the family's training loop, EDM (edm/teacher.ts) or text-to-image
// (sd/teacher.ts), from one settings object (config.ts).
import type { RunOptions } from '../train/run.js';
import { trainEDMTeacher, type TeacherRunResult } from '../edm/teacher.js';
import { trainSDTeacher } from '../sd/teacher.js';
import { SD_ONLY_FLAGS, type TeacherConfig } from './config.js';

export { TeacherConfigSchema, type TeacherConfig } from './config.js';
export type { TeacherRunResult } from '../edm/teacher.js';

export async function trainTeacher(cfg: TeacherConfig, log: (s: string) => void = console.log, o: RunOptions = {}): Promise<TeacherRunResult> {
  if (cfg.mode === 'sd') return trainSDTeacher(cfg, log, o);
  if (SD_ONLY_FLAGS.some((k) => cfg[k])) throw new RangeError('--vae, --captions, --train-text-encoder and --sd-config are for --mode sd (a text-to-image teacher)');
  return trainEDMTeacher(cfg, log, o);
}
