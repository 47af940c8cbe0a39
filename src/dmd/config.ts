// dmd-train settings: the zod schema is the single source of the defaults and CLI flags.
import { z } from 'zod';
import { REGRESSION_LOSSES } from './regression/losses.js';
import { fields, distributedShape } from '../util/fields.js';
import { runSettingsShape, sampleEveryField } from '../train/settings.js';

/** the named recipes of --recipe (what each sets: recipes.ts) */
export const RECIPE_NAMES = ['default', 'dmd', 'dmd2', 'sd15-dmd2', 'sd15-dmd2-gan', 'sd15-dmd'] as const;
export type RecipeName = (typeof RECIPE_NAMES)[number];

export const DMDConfigSchema = z.object({
  recipe: z.enum(RECIPE_NAMES).default('default').describe('settings to start from: default (for the bundled teacher: the plan of --budget, regression on automatically made pairs, EMA 0.99; for the bundled text-to-image teacher: fake:gen 1 + the same regression, real guidance 3, 800 iterations, EMA 0.99; tuned on a CPU), dmd (DMD: fake:gen 1 + LPIPS regression, lr 2e-6), dmd2 (DMD2: fake:gen 5 + diffusion GAN, lr 2e-6), sd15-dmd2 (DMD2 stage 1 for SD v1.5: fake:gen 10, real guidance 1.75, lr 1e-5, batch 32, bfloat16, activation checkpointing), sd15-dmd2-gan (its stage 2: + GAN on captioned --data, lr 5e-7), sd15-dmd (DMD for SD v1.5: fake:gen 1, real guidance 3, LPIPS regression x0.25 on --pairs, lr 1e-5); flags override'),
  teacher: z.string().min(1).optional().describe('teacher: EDM (an NVlabs snapshot .pkl, a .pt or a .safetensors) or Stable Diffusion v1 (a single-file .safetensors/.ckpt or a diffusers folder, with --prompts); default: the bundled Fashion-MNIST teacher'),
  prompts: z.string().min(1).optional().describe('Stable Diffusion teachers: the training prompts, one per line, or JSON Lines with a "text" field (.jsonl); 8 of them, spread evenly over the file, are the sample grids\' rows'),
  conditioningTimestep: z.number().int().min(0).optional().describe("Stable Diffusion teachers: the timestep the one-step generator is evaluated at on Gaussian latents (default: the schedule's last, 999, as DMD2)"),
  resolution: z.number().int().positive().optional().describe("Stable Diffusion teachers: image size in pixels, a multiple of 8 (default: the model's, 512 for SD v1.5)"),
  activationCheckpointing: z.boolean().default(false).describe("Stable Diffusion teachers: recompute the trained UNets' block activations in backward instead of keeping them (much less memory, about a third more time; needed at 512 px)"),
  teacherConfig: z.string().min(1).optional().describe('Stable Diffusion teachers: an LDM config (v1-inference.yaml) giving the architecture (default: inferred from the weights)'),
  ...runSettingsShape({ out: 'runs/dmd', checkpointEvery: 250, metricsEvery: 10 }),
  sampleEvery: sampleEveryField(250),
  pairs: z.string().min(1).optional().describe('regression pairs from `dmd pairs` (DMD), or auto (made once from the teacher and cached); without it no regression loss is used (DMD2)'),
  autoPairs: z.number().int().positive().default(1024).describe('how many pairs --pairs auto makes'),
  data: z.string().min(1).optional().describe('real images for the GAN option (fashion-mnist, IDX/CIFAR-10 dir, EDM zip, PNG/JPEG folder, WebDataset shards a-{000..009}.tar; SD teachers: captioned, or a dmd latents directory)'),
  budget: z.number().positive().optional().describe('the bundled teacher with the default recipe: plan the run for this many minutes of a 2-core CPU, pairs included (default 20): regression alone below 20 minutes; from 20 (the default) to 68 a short regression phase and a warm-up of a GAN head on the frozen teacher, then regression beside that GAN; from 69 on regression to its plateau, then DMD2 (distribution matching and the GAN); both GANs against real Fashion-MNIST (--no-gan: regression alone below 42 minutes, distribution matching after a regression phase to 61, regression alone from 62) (README, "Distillation quality"); flags such as --steps still win'),
  steps: z.number().int().positive().default(1000).describe('training iterations (each updates the fake score; every fakeUpdatesPerGen-th also the generator; the default recipe with the bundled teacher: what --budget plans)'),
  batchSize: fields.batchSize(32, 'generated images per iteration and process (the global batch is this times the number of processes)'),
  ...distributedShape(),
  distSameNoise: z.boolean().default(false).describe('test mode of multi-process runs: every process draws the randomness of the global batch and keeps its slice, so N processes x batch B reproduce one process x batch N*B'),
  device: fields.device(),
  dtype: fields.dtype(),
  tf32: fields.tf32(),
  deterministic: fields.deterministic(),
  seed: fields.seed(),
  sigmaC: z.number().positive().default(80).describe('EDM teachers: conditioning noise level of the one-step generator G(z) = D(sigma_c z; sigma_c)'),
  sigmaMin: z.number().positive().default(0.002).describe('smallest Karras sigma of the 1000-level table'),
  sigmaMax: z.number().positive().default(80).describe('largest Karras sigma'),
  rho: z.number().positive().default(7).describe('Karras rho'),
  numTrainTimesteps: z.number().int().min(2).default(1000).describe('levels of the discretised noise table'),
  minStepPercent: z.number().min(0).max(1).default(0.02).describe('distribution matching draws table indices from [min, max] of the levels'),
  maxStepPercent: z.number().min(0).max(1).default(0.98).describe('upper end of the distribution-matching index range'),
  realGuidance: z.number().positive().default(1).describe('classifier-free guidance weight of the real score (teachers trained with label dropout)'),
  lambdaDm: z.number().min(0).default(1).describe('weight of the distribution-matching loss (0 with --pairs: regression only, no fake score)'),
  genLr: z.number().positive().default(1e-4).describe('generator learning rate (AdamW; the default suits short CPU runs, DMD/DMD2 used 2e-6 for long GPU runs: --recipe)'),
  fakeLr: z.number().positive().default(1e-4).describe('fake score (and GAN head) learning rate'),
  betas: z.array(z.number().min(0).lt(1)).length(2).default([0.9, 0.999]).describe('AdamW betas'),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW weight decay'),
  warmupSteps: z.number().int().min(0).default(100).describe('linear learning-rate warm-up (iterations)'),
  lrDecay: z.number().int().min(0).default(0).describe("iterations at the end of the run over which the generator's learning rate falls linearly to 0 (warm-up, constant, decay); 0 = constant after the warm-up"),
  gradClip: z.number().min(0).default(10).describe('global gradient-norm clipping (0 = off)'),
  fakeUpdatesPerGen: z.number().int().positive().default(5).describe('two time-scale ratio: fake-score updates per generator update (DMD2: 5, DMD: 1; the default recipe with the bundled teacher: 1)'),
  dmStart: z.number().int().min(0).default(0).describe('iterations of regression alone (no fake score, no GAN) before distribution matching begins: cheap early progress on the pairs, distribution matching after it; needs --pairs'),
  fakeWarmup: z.number().int().min(0).default(0).describe('fake-score updates on samples of the fixed generator when distribution matching begins (after --dm-start), so that its first gradients come from a fake score that has learned the generator'),
  regression: z.enum(REGRESSION_LOSSES).default('pseudo-huber').describe('regression loss on the pairs (DMD: lpips, which needs --lpips weights)'),
  lambdaReg: z.number().min(0).default(0.25).describe('weight of the regression loss'),
  lpips: z.string().min(1).optional().describe("LPIPS VGG weights, needed for --regression lpips: a directory holding torchvision's vgg16-397923af.pth and LPIPS v0.1 vgg.pth, the two paths joined by a comma, or the file scripts/convert-lpips.py writes"),
  lpipsResize: z.number().int().min(0).default(224).describe('bilinear resize before LPIPS (DMD: 224; 0 = none)'),
  gan: z.boolean().default(false).describe("DMD2's GAN: a classifier head on the fake score's bottleneck, real images from --data"),
  ganFeatures: z.enum(['fake', 'teacher']).default('fake').describe("what the GAN head reads: fake (DMD2: the fake score's bottleneck, which the head's loss trains too) or teacher (the frozen teacher's bottleneck: only the head learns; with --lambda-dm 0 no fake score is made at all)"),
  ganSamples: z.enum(['fresh', 'pairs']).default('fresh').describe("which of the generator's samples the GAN judges: fresh (DMD2: a batch of new noise) or pairs (the regression batch's outputs, so that an iteration runs the generator once; needs --lambda-dm 0 and --pairs)"),
  ganBatchSize: z.number().int().min(0).default(0).describe('how many of the batch the GAN judges: its generator term on that many fresh samples, its head on that many generated and real images (0: the whole batch). Fewer makes a GAN iteration cheaper; below --batch-size it needs --lambda-dm 0'),
  ganGenWeight: z.number().min(0).default(3e-3).describe('weight of the generator GAN loss'),
  ganHeadWeight: z.number().min(0).default(1e-2).describe('weight of the head classification loss'),
  diffusionGan: z.boolean().default(false).describe('noise real and generated images before the head ("diffusion GAN")'),
  diffusionGanMaxTimestep: z.number().int().positive().default(1000).describe('noise-table indices drawn below this for the diffusion GAN'),
  dropout: z.boolean().default(false).describe("keep the networks' dropout active while distilling"),
  emaDecay: z.number().min(0).lt(1).default(0).describe('EMA decay of the generator per generator update (0 = no EMA; the default recipe with the bundled teacher: 0.99)'),
  evalEvery: z.number().int().min(0).default(0).describe('iterations between FD evaluations of a fixed sample set (0 = off; needs an evaluation classifier)'),
  evalNum: z.number().int().min(2).default(500).describe('samples per --eval-every evaluation'),
  evalRef: z.string().min(1).default('fashion-mnist').describe('reference dataset of the evaluations (--eval-every, --final-eval)'),
  evalRefNum: z.number().int().min(2).default(10000).describe('reference images of the evaluations'),
  finalEval: z.number().int().min(0).default(1000).describe('samples of the evaluation of the exported generator, printed beside the teacher\'s figures from <teacher>.eval.json when present (0 = off; needs an evaluation classifier)'),
  classifier: z.string().min(1).optional().describe('evaluation classifier (default: the bundled Fashion-MNIST one when the teacher fits)'),
});
export type DMDConfig = z.infer<typeof DMDConfigSchema>;

/** Whether a run trains a fake score: for distribution matching, or as the body of DMD2's GAN head. */
export function trainsFakeScore(c: Pick<DMDConfig, 'lambdaDm' | 'gan' | 'ganFeatures'>): boolean {
  return c.lambdaDm > 0 || (c.gan && c.ganFeatures === 'fake');
}
