// --pairs auto: DMD's regression pairs of the teacher, made once and cached (by the teacher's SHA-256,
// the count and the sampler) under $XDG_CACHE_HOME/dmd-torch/pairs (~/.cache/dmd-torch/pairs), so that a
// recipe can use regression without a separate `dmd pairs` step. A multi-process run shares the work.
import { homedir } from 'node:os';
import path from 'node:path';
import { fileSha256 } from '../../util/fs.js';
import { makePairs, PairsConfigSchema } from './pairs.js';
import { defaultTeacherPath } from '../../edm/default-teacher.js';
import type { DMDConfig } from '../config.js';

/** the sampler of the cached pairs: the teacher's Heun ODE with EDM's 18 steps */
const HEUN_STEPS = 18;

export function pairsCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'dmd-torch', 'pairs');
}

/** Settings with `pairs: 'auto'` replaced by the cached pairs directory (made or completed first). */
export async function resolveAutoPairs<C extends Partial<DMDConfig>>(cfg: C, log: (s: string) => void = console.log): Promise<C> {
  if (cfg.pairs !== 'auto') return cfg;
  const teacher = path.resolve(cfg.teacher ?? defaultTeacherPath());
  const count = cfg.autoPairs ?? 1024;
  const dir = path.join(pairsCacheDir(), `${fileSha256(teacher).slice(0, 16)}-${count}-heun${HEUN_STEPS}-seed${cfg.seed ?? 0}`);
  log(`--pairs auto: ${count} teacher pairs (Heun, ${HEUN_STEPS} steps) in ${dir}`);
  await makePairs(
    PairsConfigSchema.parse({ teacher, out: dir, count, steps: HEUN_STEPS, seed: cfg.seed ?? 0, shardSize: 256, batchSize: 128, device: cfg.device ?? 'auto', distBackend: cfg.distBackend, distTimeout: cfg.distTimeout }),
    log,
  );
  return { ...cfg, pairs: dir };
}
