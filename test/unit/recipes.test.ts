// dmd-train's recipes: what the default recipe sets for the bundled teacher, the published DMD/DMD2
// settings, and that flags and --config always win over a recipe.
import test from 'ava';
import { DMDConfigSchema } from '../../src/dmd/config.js';
import { applyRecipe, RECIPES, BUNDLED_T2I_TEACHER } from '../../src/dmd/recipes.js';
import { BUNDLED_T2I_TEACHER_URL } from '../../src/sd/bundled-teacher.js';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { symlinkSync, copyFileSync } from 'node:fs';
import { tempDir } from '../helpers/tmp.js';
import { resolveConfig } from '../../src/cli/options.js';

const resolve = (flags: Record<string, unknown>) => resolveConfig(DMDConfigSchema, flags, null, applyRecipe);

test('no flags (the bundled teacher): DMD with fake:gen 1 and regression on automatically made pairs, no GAN', (t) => {
  const c = resolve({});
  t.is(c.recipe, 'default');
  t.is(c.fakeUpdatesPerGen, 1);
  t.is(c.pairs, 'auto');
  t.is(c.regression, 'pseudo-huber');
  t.is(c.lambdaReg, 0.25);
  t.is(c.lambdaDm, 1);
  t.false(c.gan);
  t.is(c.genLr, 1e-4);
  t.is(c.steps, 600);
  t.is(c.emaDecay, 0.99);
});

test('a user teacher with the default recipe gets the schema defaults: no pairs are made for it', (t) => {
  const c = resolve({ teacher: 'edm.pt' });
  t.is(c.fakeUpdatesPerGen, 5);
  t.is(c.pairs, undefined);
  t.false(c.gan);
  t.is(c.steps, 1000);
  t.is(c.emaDecay, 0);
});

test('flags win over the default recipe: --lambda-reg 0 turns regression (and auto pairs) off, --fake-updates-per-gen stays', (t) => {
  const c = resolve({ 'lambda-reg': 0, 'fake-updates-per-gen': 3 });
  t.is(c.pairs, undefined);
  t.is(c.fakeUpdatesPerGen, 3);
  t.is(resolve({ pairs: 'runs/pairs' }).pairs, 'runs/pairs');
  const own = resolve({ steps: 50, 'ema-decay': 0 });
  t.is(own.steps, 50);
  t.is(own.emaDecay, 0);
});

test('--recipe dmd and dmd2 are the published settings, and a flag still overrides them', (t) => {
  const dmd = resolve({ recipe: 'dmd', teacher: 'edm.pt' });
  t.is(dmd.fakeUpdatesPerGen, 1);
  t.is(dmd.regression, 'lpips');
  t.is(dmd.genLr, 2e-6);
  t.false(dmd.gan);
  const dmd2 = resolve({ recipe: 'dmd2', teacher: 'edm.pt', 'gen-lr': 5e-6 });
  t.is(dmd2.fakeUpdatesPerGen, 5);
  t.true(dmd2.gan);
  t.true(dmd2.diffusionGan);
  t.is(dmd2.lambdaReg, 0);
  t.is(dmd2.batchSize, 40);
  t.is(dmd2.genLr, 5e-6);
  t.is(dmd2.fakeLr, RECIPES.dmd2.fakeLr!);
  // the published recipes never make pairs behind the user's back
  t.is(resolve({ recipe: 'dmd2' }).pairs, undefined);
});

test("--recipe sd15-dmd2 is DMD2's stage 1 for SD v1.5: fake:gen 10, guidance 1.75, lr 1e-5, bfloat16 with checkpointing, no GAN or regression", (t) => {
  const c = resolve({ recipe: 'sd15-dmd2', teacher: 'v1-5-pruned-emaonly.safetensors', prompts: 'prompts.txt', 'batch-size': 8 });
  t.is(c.fakeUpdatesPerGen, 10);
  t.is(c.realGuidance, 1.75);
  t.is(c.genLr, 1e-5);
  t.is(c.fakeLr, 1e-5);
  t.is(c.dtype, 'bfloat16');
  t.true(c.activationCheckpointing);
  t.false(c.gan);
  t.is(c.lambdaReg, 0);
  t.is(c.pairs, undefined);
  t.is(c.conditioningTimestep, undefined); // the teacher's last timestep, 999
  t.is(c.batchSize, 8);
});

test('--recipe sd15-dmd is DMD for SD v1.5: fake:gen 1, guidance 3, LPIPS regression x0.25 on the given pairs, lr 1e-5', (t) => {
  const c = resolve({ recipe: 'sd15-dmd', teacher: 'v1-5-pruned-emaonly.safetensors', prompts: 'prompts.txt', pairs: 'pairs/', lpips: 'lpips/' });
  t.is(c.fakeUpdatesPerGen, 1);
  t.is(c.realGuidance, 3);
  t.is(c.regression, 'lpips');
  t.is(c.lambdaReg, 0.25);
  t.is(c.lambdaDm, 1);
  t.is(c.lpipsResize, 224);
  t.is(c.genLr, 1e-5);
  t.is(c.pairs, 'pairs/');
  t.is(c.dtype, 'bfloat16');
  t.true(c.activationCheckpointing);
  t.false(c.gan);
});

test("--recipe sd15-dmd2-gan is DMD2's stage 2 for SD v1.5: the GAN on captioned data at lr 5e-7, fake:gen 10", (t) => {
  const c = resolve({ recipe: 'sd15-dmd2-gan', teacher: 'v1-5-pruned-emaonly.safetensors', prompts: 'prompts.txt', data: 'captioned/' });
  t.true(c.gan);
  t.true(c.diffusionGan);
  t.is(c.diffusionGanMaxTimestep, 1000);
  t.is(c.ganGenWeight, 5e-3);
  t.is(c.ganHeadWeight, 1e-2);
  t.is(c.genLr, 5e-7);
  t.is(c.fakeLr, 5e-7);
  t.is(c.fakeUpdatesPerGen, 10);
  t.is(c.realGuidance, 1.75);
  t.is(c.lambdaReg, 0);
});

test('the bundled text-to-image teacher (through any path to it) gets its own defaults; a copy elsewhere or another recipe does not', (t) => {
  const bundled = fileURLToPath(BUNDLED_T2I_TEACHER_URL);
  const dir = tempDir();
  const link = path.join(dir, 'linked.safetensors');
  symlinkSync(bundled, link);
  for (const teacher of [bundled, path.relative(process.cwd(), bundled), link]) {
    const c = resolve({ teacher, prompts: 'assets/fmnist-prompts.txt' });
    for (const [k, v] of Object.entries(BUNDLED_T2I_TEACHER)) t.deepEqual(c[k as keyof typeof c], v, `${teacher}: ${k}`);
    t.is(c.pairs, 'auto');
  }
  t.is(resolve({ teacher: bundled, prompts: 'p.txt', 'real-guidance': 2 }).realGuidance, 2);
  const copy = path.join(dir, 'copy.safetensors');
  copyFileSync(bundled, copy);
  t.is(resolve({ teacher: copy, prompts: 'p.txt' }).realGuidance, 1);
  t.is(resolve({ teacher: bundled, prompts: 'p.txt', recipe: 'sd15-dmd2' }).fakeUpdatesPerGen, 10);
});
