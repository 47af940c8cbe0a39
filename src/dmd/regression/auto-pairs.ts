// --pairs auto: DMD's regression pairs of the teacher, made once and cached (by the teacher's SHA-256,
// the count, the sampler and, for Stable Diffusion teachers, the prompt file and resolution) under $XDG_CACHE_HOME/dmd-torch/pairs (~/.cache/dmd-torch/pairs), so that a
// recipe can use regression without a separate `dmd pairs` step. A multi-process run shares the work.
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { pathSha256 } from '../../util/fs.js';
import { isStableDiffusion } from '../../sd/checkpoint.js';
import { makePairs, PairsConfigSchema } from './pairs.js';
import { defaultTeacherPath } from '../../edm/default-teacher.js';
import { DMDConfigSchema, type DMDConfig } from '../config.js';

/** the sampler of the cached pairs: an EDM teacher's Heun ODE with EDM's 18 steps, an SD teacher's DDIM with 50 */
const HEUN_STEPS = 18;
const DDIM_STEPS = 50;
export function pairsCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'dmd-torch', 'pairs');
}

/** Settings with `pairs: 'auto'` replaced by the cached pairs directory (made or completed first). */
export async function resolveAutoPairs<C extends Partial<DMDConfig>>(cfg: C, log: (s: string) => void = console.log): Promise<C> {
  if (cfg.pairs !== 'auto') return cfg;
  const teacher = path.resolve(cfg.teacher ?? defaultTeacherPath());
  const count = cfg.autoPairs ?? DMDConfigSchema.shape.autoPairs.parse(undefined);
  const sd = isStableDiffusion(teacher);
  // an SD teacher's pairs use the run's real guidance: the generator regresses onto the distribution it matches
  const guidance = DMDConfigSchema.shape.realGuidance.parse(cfg.realGuidance);
  const prompts = sd && cfg.prompts ? path.resolve(cfg.prompts) : undefined;
  const sampler = sd ? `ddim${DDIM_STEPS}-g${guidance}${prompts ? `-prompts${pathSha256(prompts).slice(0, 12)}` : ''}${cfg.resolution ? `-${cfg.resolution}px` : ''}` : `heun${HEUN_STEPS}`;
  const [head, tail] = [`${pathSha256(teacher).slice(0, 16)}-`, `-${sampler}-seed${cfg.seed ?? 0}`];
  const dir = path.join(pairsCacheDir(), `${head}${count}${tail}`);
  // the cached pairs of other counts (largest first): their shards at the same places are this set's
  const countOf = (n: string) => (n.startsWith(head) && n.endsWith(tail) && /^\d+$/.test(n.slice(head.length, -tail.length)) ? Number(n.slice(head.length, -tail.length)) : 0);
  const others = (existsSync(pairsCacheDir()) ? readdirSync(pairsCacheDir()) : [])
    .map((n) => ({ n, count: countOf(n) })).filter((o) => o.count > 0 && o.count !== count)
    .sort((a, b) => b.count - a.count).map((o) => path.join(pairsCacheDir(), o.n));
  log(`--pairs auto: ${count} teacher pairs (${sd ? `DDIM, ${DDIM_STEPS} steps, guidance ${guidance}` : `Heun, ${HEUN_STEPS} steps`}) in ${dir}`);
  const device = cfg.device ?? 'auto';
  const sdSettings = sd ? { prompts, resolution: cfg.resolution, teacherConfig: cfg.teacherConfig, guidance } : {};
  await makePairs(
    PairsConfigSchema.parse({ teacher, out: dir, count, steps: sd ? DDIM_STEPS : HEUN_STEPS, ...sdSettings, seed: cfg.seed ?? 0, shardSize: 256, device, distBackend: cfg.distBackend, distTimeout: cfg.distTimeout }),
    log,
    { reuse: others },
  );
  return { ...cfg, pairs: dir };
}
