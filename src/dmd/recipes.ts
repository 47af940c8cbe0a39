// Named recipes of dmd-train (--recipe): the schema's defaults are the `default` recipe (tuned for the
// bundled Fashion-MNIST teacher on a CPU); `dmd` and `dmd2` are the published settings for real EDM
// teachers on GPUs. A recipe only fills settings the user did not give (flags and --config win).
import { RECIPE_NAMES, type DMDConfig, type RecipeName } from './config.js';
import { isBundledTextToImageTeacher } from '../sd/bundled-teacher.js';
import { planBudget, isBundledDefault, BudgetError, DEFAULT_BUDGET_MINUTES, TEACHER_GAN_FROM_MINUTES } from './budget.js';
import { hasFashionMnist, FASHION_MNIST_DIR } from '../data/sources.js';

/** What each recipe changes from the schema defaults. */
export const RECIPES: Record<RecipeName, Partial<DMDConfig>> = {
  default: {},
  // DMD (Yin et al., CVPR 2024): distribution matching + LPIPS regression on teacher ODE pairs (lambda
  // 0.25), the fake score updated once per generator update, AdamW at 2e-6 (ImageNet-64)
  dmd: {
    fakeUpdatesPerGen: 1, genLr: 2e-6, fakeLr: 2e-6, regression: 'lpips', lambdaReg: 0.25, lpipsResize: 224, gan: false,
    warmupSteps: 0, emaDecay: 0, gradClip: 10, batchSize: 32,
  },
  // DMD2 (Yin et al., NeurIPS 2024), ImageNet-64: two time-scale update (fake:gen 5), no regression,
  // GAN classifier on the fake score's bottleneck with diffusion noise up to level 1000, AdamW at 2e-6
  dmd2: {
    fakeUpdatesPerGen: 5, genLr: 2e-6, fakeLr: 2e-6, gan: true, diffusionGan: true, diffusionGanMaxTimestep: 1000, ganGenWeight: 3e-3, ganHeadWeight: 1e-2,
    lambdaReg: 0, warmupSteps: 0, emaDecay: 0, gradClip: 10, batchSize: 40,
  },
  // DMD2's stage 1 for Stable Diffusion v1.5 (main/train_sd.py, LAION prompts): distribution matching
  // alone with real guidance 1.75, the fake score updated 10 times per generator update, AdamW at 1e-5,
  // 32 prompts per GPU at 512 px in bfloat16 with gradient checkpointing, generator at timestep 999
  'sd15-dmd2': {
    fakeUpdatesPerGen: 10, genLr: 1e-5, fakeLr: 1e-5, realGuidance: 1.75, gan: false, lambdaReg: 0, warmupSteps: 0, emaDecay: 0, gradClip: 10,
    batchSize: 32, dtype: 'bfloat16', activationCheckpointing: true, minStepPercent: 0.02, maxStepPercent: 0.98,
  },
  // DMD2's stage 2 for SD v1.5: stage 1's settings plus the GAN classifier on the fake UNet's middle block
  // (diffusion GAN noise up to timestep 1000, generator weight 5e-3, classifier weight 1e-2) on captioned
  // real images (--data), at lr 5e-7; continue a stage-1 run with --resume --force-resume
  'sd15-dmd2-gan': {
    fakeUpdatesPerGen: 10, genLr: 5e-7, fakeLr: 5e-7, realGuidance: 1.75, gan: true, diffusionGan: true, diffusionGanMaxTimestep: 1000, ganGenWeight: 5e-3, ganHeadWeight: 1e-2,
    lambdaReg: 0, warmupSteps: 0, emaDecay: 0, gradClip: 10, batchSize: 32, dtype: 'bfloat16', activationCheckpointing: true, minStepPercent: 0.02, maxStepPercent: 0.98,
  },
  // DMD (Yin et al., CVPR 2024) for Stable Diffusion v1.5, as we read its paper: distribution matching with
  // the fake score updated once per generator update and real guidance 3, plus LPIPS regression (weight
  // 0.25, on the VAE's decoding resized to 224) onto DDIM pairs of the teacher with the same guidance
  // (dmd pairs --teacher T --prompts P; needs --pairs), AdamW at 1e-5, bfloat16 with checkpointing
  'sd15-dmd': {
    fakeUpdatesPerGen: 1, genLr: 1e-5, fakeLr: 1e-5, realGuidance: 3, regression: 'lpips', lambdaReg: 0.25, lpipsResize: 224, gan: false, warmupSteps: 0, emaDecay: 0,
    gradClip: 10, batchSize: 16, dtype: 'bfloat16', activationCheckpointing: true, minStepPercent: 0.02, maxStepPercent: 0.98,
  },
};

/**
 * What the default recipe sets for the bundled Fashion-MNIST teacher: the plan of --budget (20 minutes
 * unless given, src/dmd/budget.ts) with an EMA generator of decay 0.99 per update. Below
 * TEACHER_GAN_FROM_MINUTES (10) that is regression alone on the cached pairs, which the budget curves of
 * experiments/fmnist-budget found better than any distribution-matching recipe at 20 minutes (DMD at
 * fake:gen 1, 600 iterations: FD 0.781; regression alone: 0.71); from it on it is a short regression
 * phase followed by regression beside a GAN whose head reads the frozen teacher (0.62 at 20), and for
 * the longest budgets regression to its plateau followed by DMD2 (distribution matching and the GAN beside
 * the regression); the GANs read Fashion-MNIST, Debian's dataset-fashion-mnist, unless --data names other
 * real images. Without the GAN (--no-gan) it is distribution matching in the window where it was measured ahead.
 * `fashionMnist` says whether Fashion-MNIST is installed (tests stand in for the file system); without it a
 * --budget whose plan has a GAN is refused, and the no-flag run plans without the GAN and tells `notice`.
 */
export function bundledTeacherSettings(input: Record<string, unknown>, o: { fashionMnist?: () => boolean; notice?: (s: string) => void } = {}): Partial<DMDConfig> {
  const minutes = typeof input.budget === 'number' ? input.budget : DEFAULT_BUDGET_MINUTES;
  // without regression (--lambda-reg 0) only the plan's length and EMA apply: DMD with fake:gen 1
  if (input.lambdaReg === 0) {
    const plan = planBudget(minutes, { gan: false });
    return { steps: plan.steps, emaDecay: plan.emaDecay, fakeUpdatesPerGen: 1 };
  }
  const plan = planBudget(minutes, { gan: input.gan !== false });
  if (plan.gan && input.data === undefined && !(o.fashionMnist ?? hasFashionMnist)()) {
    // the no-flag run still runs: the plan without the GAN, said once
    if (input.budget === undefined && input.gan === undefined) {
      o.notice?.(`the default ${minutes}-minute plan's GAN compares the generator's samples with real Fashion-MNIST images, which are not installed in ${FASHION_MNIST_DIR}: planning regression alone instead (EMA FD about 0.71 instead of 0.62); install them with 'apt-get install dataset-fashion-mnist' or give --data for the GAN plan`);
      return planBudget(minutes, { gan: false });
    }
    throw new BudgetError(`--budget ${minutes} plans a GAN (from ${TEACHER_GAN_FROM_MINUTES} minutes on), whose head compares the generator's samples with real Fashion-MNIST images, and Fashion-MNIST is not installed in ${FASHION_MNIST_DIR}: install it with 'apt-get install dataset-fashion-mnist', give --data <Fashion-MNIST IDX files or other 32x32 gray images>, or plan without the GAN with --no-gan`);
  }
  return plan;
}

/**
 * What the default recipe sets for the bundled text-to-image teacher (assets/fmnist-t2i-teacher.safetensors,
 * recognised by its path): DMD with real guidance 3 and fake:gen 1, regression on 1024 automatically made
 * DDIM pairs, 800 iterations, EMA 0.99. In experiments/fmnist-t2i it gave FD-fmnist 0.90x the teacher's on
 * held-out phrasings where distribution matching alone gave 1.62x (mode collapse: recall 0.26 vs 0.65).
 */
export const BUNDLED_T2I_TEACHER: Partial<DMDConfig> = { realGuidance: 3, fakeUpdatesPerGen: 1, steps: 800, batchSize: 32, emaDecay: 0.99 };

/**
 * Fills the settings a recipe defines and the input leaves unset (an undefined value counts as unset).
 * The default recipe with the bundled teacher adds bundledTeacherSettings (BUNDLED_T2I_TEACHER for the bundled
 * text-to-image one) and regression on teacher pairs made once and cached (`pairs: 'auto'`) unless
 * regression is off: the regression carries short runs (experiments/fmnist-ablation, fmnist-budget), and
 * the phased recipes of longer budgets keep it beside distribution matching and the GAN.
 * A teacher given in memory (`teacherInMemory`) is not the bundled one.
 */
export function applyRecipe(input: Record<string, unknown>, o: { teacherInMemory?: boolean; fashionMnist?: () => boolean; notice?: (s: string) => void } = {}): Record<string, unknown> {
  const name = (input.recipe ?? 'default') as RecipeName;
  if (!RECIPE_NAMES.includes(name)) return input; // the schema reports the bad value
  const bundled = isBundledDefault(name, input.teacher, o.teacherInMemory);
  const bundledT2I = name === 'default' && typeof input.teacher === 'string' && !o.teacherInMemory && isBundledTextToImageTeacher(input.teacher);
  const out: Record<string, unknown> = { ...input };
  for (const [key, value] of Object.entries({ ...RECIPES[name], ...(bundled ? bundledTeacherSettings(input, o) : {}), ...(bundledT2I ? BUNDLED_T2I_TEACHER : {}) })) out[key] ??= value;
  if ((bundled || bundledT2I) && out.pairs === undefined && out.lambdaReg !== 0) out.pairs = 'auto';
  return out;
}
