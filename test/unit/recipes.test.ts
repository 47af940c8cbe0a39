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
import { resolveConfig, yargsOptions, ConfigError } from '../../src/cli/options.js';
import { yargs } from '../../src/cli/yargs.js';
import { planBudget, plannedMinutes, budgetSpeedNotice, BudgetError, BUNDLED_COSTS, CROSSING_MINUTES, GAN_FROM_MINUTES, PHASED_UNTIL_MINUTES, PHASED_DM_START, GAN_DM_START, PHASED_FAKE_WARMUP, PHASED_LAMBDA_DM, GAN_GEN_WEIGHT, TEACHER_GAN_FROM_MINUTES, TEACHER_GAN_DM_START, TEACHER_GAN_WARMUP, TEACHER_GAN_HEAD_WEIGHT, TEACHER_GAN_GEN_WEIGHT, TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES, TEACHER_GAN_BATCH, TEACHER_GAN_SMALL_BATCH_PAIRS } from '../../src/dmd/budget.js';
import { parseDMDSettings } from '../../src/dmd/setup.js';

const resolve = (flags: Record<string, unknown>) => resolveConfig(DMDConfigSchema, flags, null, applyRecipe);

test('no flags (the bundled teacher): the 20-minute plan, a short regression phase on automatically made pairs, the teacher-GAN head warm-up, then regression beside the GAN, with an EMA generator', (t) => {
  const c = resolveConfig(DMDConfigSchema, {}, null, (input) => applyRecipe(input, { fashionMnist: () => true }));
  t.is(c.recipe, 'default');
  t.is(c.pairs, 'auto');
  t.is(c.regression, 'pseudo-huber');
  t.is(c.lambdaReg, 0.25);
  t.is(c.lambdaDm, 0);
  t.is(c.genLr, 1e-4);
  t.true(TEACHER_GAN_FROM_MINUTES <= 20);
  t.deepEqual([c.gan, c.ganFeatures, c.ganSamples, c.ganGenWeight, c.ganHeadWeight, c.data, c.fakeUpdatesPerGen], [true, 'teacher', 'fresh', TEACHER_GAN_GEN_WEIGHT, TEACHER_GAN_HEAD_WEIGHT, 'fashion-mnist', 1]);
  t.deepEqual([c.dmStart, c.fakeWarmup, c.emaDecay], [TEACHER_GAN_DM_START, TEACHER_GAN_WARMUP, 0.99]);
  // the GAN judges 8 of the 32 samples at this budget, and the regression has 512 pairs
  t.true(20 < TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES);
  t.is(c.ganBatchSize, TEACHER_GAN_BATCH);
  t.is(c.autoPairs, TEACHER_GAN_SMALL_BATCH_PAIRS);
  t.is(c.pairs, 'auto');
  // 20 minutes of the reference CPU, less the pairs (half the time of 1024) and the final evaluation, at the phases' speeds
  const { pairsSeconds, finalEvalSeconds, regression, teacherGanWarmupSmallBatch, teacherGanSmallBatch } = BUNDLED_COSTS;
  const before = (pairsSeconds * 512) / 1024 + finalEvalSeconds + TEACHER_GAN_DM_START * regression + TEACHER_GAN_WARMUP * teacherGanWarmupSmallBatch;
  t.is(c.steps, TEACHER_GAN_DM_START + TEACHER_GAN_WARMUP + Math.floor((20 * 60 - before) / teacherGanSmallBatch));
  t.true(c.steps >= 1800, 'at least the 1800 iterations where both seeds measured scored under 1.2x the teacher');
});

test('--budget plans regression alone below the crossing, regression beside a GAN on the frozen teacher after a short regression phase past it, and DMD2 (DM + GAN) after a longer regression phase from GAN_FROM_MINUTES on; without the GAN, distribution matching after the regression phase in its window', (t) => {
  const short = resolve({ budget: TEACHER_GAN_FROM_MINUTES - 1 });
  t.is(short.lambdaDm, 0);
  t.is(short.dmStart, 0);
  t.false(short.gan);
  const c = BUNDLED_COSTS;
  t.is(short.steps, Math.floor(((TEACHER_GAN_FROM_MINUTES - 1) * 60 - c.pairsSeconds - c.finalEvalSeconds) / c.regression), 'as many regression iterations as fit');
  // every second of the budget is planned, within one iteration
  const used = (p: { steps: number; dmStart: number; fakeWarmup: number; autoPairs: number }, perIteration: number, warmup: number = c.fakeWarmup) =>
    (c.pairsSeconds * p.autoPairs) / 1024 + c.finalEvalSeconds + p.dmStart * c.regression + p.fakeWarmup * warmup + (p.steps - p.dmStart - p.fakeWarmup) * perIteration;
  // from TEACHER_GAN_FROM_MINUTES to the DMD2 recipe: regression, then beside it the GAN whose head reads the frozen teacher (no DM, no fake score)
  // (the GAN judging 8 of the 32 samples below TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES, the whole batch from it on)
  for (const minutes of [TEACHER_GAN_FROM_MINUTES, TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES - 1, TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES, CROSSING_MINUTES, GAN_FROM_MINUTES - 1]) {
    const tg = resolve({ budget: minutes });
    const small = minutes < TEACHER_GAN_SMALL_BATCH_BELOW_MINUTES;
    t.deepEqual([tg.dmStart, tg.fakeWarmup, tg.fakeUpdatesPerGen, tg.lambdaDm, tg.gan, tg.ganFeatures, tg.ganHeadWeight, tg.diffusionGan, tg.ganGenWeight, tg.data, tg.pairs, tg.emaDecay, tg.ganBatchSize, tg.autoPairs],
      [TEACHER_GAN_DM_START, TEACHER_GAN_WARMUP, 1, 0, true, 'teacher', TEACHER_GAN_HEAD_WEIGHT, false, TEACHER_GAN_GEN_WEIGHT, 'fashion-mnist', 'auto', 0.99, small ? TEACHER_GAN_BATCH : 0, small ? TEACHER_GAN_SMALL_BATCH_PAIRS : 1024]);
    const [perIteration, warmup] = small ? [c.teacherGanSmallBatch, c.teacherGanWarmupSmallBatch] : [c.teacherGan, c.teacherGanWarmup];
    const u = used(tg, perIteration, warmup);
    t.true(u <= minutes * 60 && u > minutes * 60 - perIteration, `${minutes}: ${u}`);
    // no plan stops before the first point measured ahead of regression alone: 1050 iterations light, 350 GAN iterations with the whole batch
    t.true(small ? tg.steps >= 1050 : tg.steps - TEACHER_GAN_DM_START - TEACHER_GAN_WARMUP >= 345, `${minutes}: ${tg.steps}`);
  }
  // without the GAN, between the crossing and PHASED_UNTIL_MINUTES: DM alone after the regression phase
  t.is(resolve({ budget: CROSSING_MINUTES - 1, gan: false }).lambdaDm, 0);
  for (const minutes of [CROSSING_MINUTES, PHASED_UNTIL_MINUTES - 1]) {
    const phased = resolve({ budget: minutes, gan: false });
    t.deepEqual([phased.dmStart, phased.fakeWarmup, phased.fakeUpdatesPerGen, phased.lambdaDm, phased.pairs, phased.emaDecay, phased.gan], [PHASED_DM_START, PHASED_FAKE_WARMUP, 5, PHASED_LAMBDA_DM, 'auto', 0.99, false]);
    const u1 = used(phased, c.dmd);
    t.true(u1 <= minutes * 60 && u1 > minutes * 60 - c.dmd, `${minutes}: ${u1}`);
  }
  // from GAN_FROM_MINUTES on, at any length: the longer regression phase, then DM and the GAN (clean samples, real Fashion-MNIST)
  for (const minutes of [GAN_FROM_MINUTES, 90, 120]) {
    const gan = resolve({ budget: minutes });
    t.deepEqual([gan.dmStart, gan.fakeWarmup, gan.fakeUpdatesPerGen, gan.lambdaDm, gan.gan, gan.ganFeatures, gan.diffusionGan, gan.ganGenWeight, gan.data, gan.pairs, gan.emaDecay],
      [GAN_DM_START, PHASED_FAKE_WARMUP, 5, PHASED_LAMBDA_DM, true, 'fake', false, GAN_GEN_WEIGHT, 'fashion-mnist', 'auto', 0.99]);
    const u = used(gan, c.dmd2);
    t.true(u <= minutes * 60 && u > minutes * 60 - c.dmd2, `${minutes}: ${u}`);
    t.true(gan.steps - GAN_DM_START - PHASED_FAKE_WARMUP >= 150, 'the GAN gets at least the 150 iterations of its first measured lead');
  }
  // without the GAN (--no-gan): DM after the regression phase up to PHASED_UNTIL_MINUTES, regression alone again past it
  const noGan = resolve({ budget: PHASED_UNTIL_MINUTES - 1, gan: false });
  t.deepEqual([noGan.dmStart, noGan.lambdaDm, noGan.gan, noGan.data], [PHASED_DM_START, PHASED_LAMBDA_DM, false, undefined]);
  for (const minutes of [PHASED_UNTIL_MINUTES, 120]) {
    const past = resolve({ budget: minutes, gan: false });
    t.deepEqual([past.lambdaDm, past.dmStart, past.fakeWarmup, past.emaDecay, past.pairs], [0, 0, 0, 0.99, 'auto']);
    t.is(past.steps, Math.floor((minutes * 60 - c.pairsSeconds - c.finalEvalSeconds) / c.regression));
  }
  // flags still win over the plan
  const own = resolve({ budget: CROSSING_MINUTES, gan: false, steps: 3000, 'lambda-dm': 2 });
  t.is(own.steps, 3000);
  t.is(own.lambdaDm, 2);
  t.is(own.dmStart, PHASED_DM_START);
  const ownGan = resolve({ budget: 60, 'gan-gen-weight': 0.1, data: 'my-images' });
  t.deepEqual([ownGan.ganGenWeight, ownGan.data, ownGan.gan], [0.1, 'my-images', true]);
  // turning regression off keeps the plan's length (as planned without the GAN) and the EMA, with DMD's fake:gen 1
  const noReg = resolve({ 'lambda-reg': 0 });
  t.is(noReg.pairs, undefined);
  t.is(noReg.lambdaDm, 1);
  t.is(noReg.fakeUpdatesPerGen, 1);
  t.is(noReg.steps, planBudget(20, { gan: false }).steps);
  t.false(resolve({ 'lambda-reg': 0, budget: 60 }).gan);
  t.throws(() => resolve({ budget: 3 }), { message: /--budget 3 is too short: making the pairs and evaluating take 4\.6 min of it; give at least \d+ minutes, or --steps/ });
});

test('a budget whose plan has the GAN, without Fashion-MNIST installed, is refused with the three ways out; --data or --no-gan need no Fashion-MNIST', (t) => {
  const without = (flags: Record<string, unknown>) => resolveConfig(DMDConfigSchema, flags, null, (input) => applyRecipe(input, { fashionMnist: () => false }));
  const err = t.throws(() => without({ budget: 60 }), { instanceOf: BudgetError });
  t.regex(err!.message, new RegExp(`^--budget 60 plans a GAN \\(from ${TEACHER_GAN_FROM_MINUTES} minutes on\\)`));
  t.regex(err!.message, /.*not installed in \/usr\/share\/datasets\/fashion-mnist: install it with 'apt-get install dataset-fashion-mnist', give --data .*, or plan without the GAN with --no-gan$/);
  t.is(without({ budget: 60, data: 'my-images' }).data, 'my-images');
  t.false(without({ budget: 60, gan: false }).gan);
  // as the command line gives it
  const argv = yargs(['--budget', '60', '--no-gan']).options(yargsOptions(DMDConfigSchema)).strict().parseSync() as Record<string, unknown>;
  const cli = without(argv);
  t.deepEqual([cli.gan, cli.dmStart, cli.lambdaDm], [false, PHASED_DM_START, PHASED_LAMBDA_DM]);
  t.throws(() => without({ budget: TEACHER_GAN_FROM_MINUTES }), { instanceOf: BudgetError }, 'the teacher-GAN plan reads images too');
  t.is(without({ budget: TEACHER_GAN_FROM_MINUTES - 1 }).lambdaDm, 0, 'below TEACHER_GAN_FROM_MINUTES the plan reads no images');
  // the no-flag run still runs without Fashion-MNIST: regression alone for the default's minutes, said once
  const notes: string[] = [];
  const fallback = resolveConfig(DMDConfigSchema, {}, null, (input) => applyRecipe(input, { fashionMnist: () => false, notice: (s) => notes.push(s) }));
  t.deepEqual([fallback.lambdaDm, fallback.gan, fallback.dmStart, fallback.data, fallback.steps], [0, false, 0, undefined, planBudget(20, { gan: false }).steps]);
  t.is(notes.length, 1);
  t.regex(notes[0]!, /^the default 20-minute plan's GAN compares .* not installed in \/usr\/share\/datasets\/fashion-mnist: planning regression alone instead .*'apt-get install dataset-fashion-mnist' or give --data/);
  t.is(plannedMinutes(fallback), 20, 'the fallback is the 20-minute plan without the GAN');
});

test('a single-valued flag given twice is one error naming the flag and both values; list flags take repeats', (t) => {
  const parse = (args: string[]) => yargs(args).options(yargsOptions(DMDConfigSchema)).strict().parseSync() as Record<string, unknown>;
  t.throws(() => resolve(parse(['--steps', '5', '--steps', '6'])), { instanceOf: ConfigError, message: '--steps was given 2 times (5, 6); give it once' });
  t.throws(() => resolve(parse(['--teacher', 'a.pt', '--teacher', 'b.pt'])), { message: /^--teacher was given 2 times \("a.pt", "b.pt"\)/ });
  // an array field (AdamW's betas) collects its values, repeated or not
  t.deepEqual(resolve(parse(['--betas', '0.5', '--betas', '0.9'])).betas, [0.5, 0.9]);
  t.is(resolve(parse(['--steps', '7'])).steps, 7);
});

test('--budget is refused with a teacher or recipe it was not measured for', (t) => {
  t.throws(() => parseDMDSettings({ teacher: 'edm.pt', budget: 60, pairs: 'runs/pairs' }), { message: /--budget plans the default recipe of the bundled teacher.*with your own teacher give --steps instead/ });
  t.throws(() => parseDMDSettings({ recipe: 'dmd2', budget: 60 }), { message: /with --recipe dmd2 give --steps instead/ });
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

test('a planned run knows its budget, and says how long it will take on a machine far from the reference speed', (t) => {
  t.is(plannedMinutes(resolve({})), 20);
  t.is(plannedMinutes(resolve({ budget: 60 })), 60);
  t.is(plannedMinutes(resolve({ budget: 60, gan: false })), 60, 'planned without the GAN');
  t.is(plannedMinutes(resolve({ budget: 43 })), 43);
  t.is(plannedMinutes(resolve({ budget: 43, gan: false })), 43, 'the phased DM recipe without the GAN');
  t.is(plannedMinutes(resolve({ steps: 100 })), null, '--steps overrides the plan');
  t.is(plannedMinutes(resolve({}), true), null, 'a teacher given in memory');
  t.is(plannedMinutes(resolve({ recipe: 'dmd2' })), null);
  const { regression, dmd, dmd2, teacherGan, teacherGanWarmup, fakeWarmup } = BUNDLED_COSTS;
  t.is(budgetSpeedNotice(20, 'regression', regression * 1.15), null, 'within 20% of the reference');
  t.is(budgetSpeedNotice(20, 'regression', regression / 1.15), null);
  t.is(budgetSpeedNotice(20, 'regression', 0.88),
    `--budget 20: this machine takes 0.88 s per regression iteration where the plan assumes ${regression} s (a 2-core reference VM), so the run will take about 31 minutes; --budget 12 fits 20 minutes here (the plan's quality figures are per iteration, not per minute)`);
  t.regex(budgetSpeedNotice(60, 'dmd', dmd / 2)!, /about 30 minutes; --budget 120 fits 60 minutes here/);
  // a DMD iteration with the GAN is timed against the GAN's cost
  t.is(budgetSpeedNotice(60, 'dmd', dmd2 * 1.15, { gan: true }), null);
  t.regex(budgetSpeedNotice(60, 'dmd', dmd2 * 1.15)!, new RegExp(`where the plan assumes ${dmd} s`));
  // the teacher-GAN recipe's iterations and head warm-up against their own costs
  t.is(budgetSpeedNotice(30, 'dmd', teacherGan * 1.15, { gan: true, ganFeatures: 'teacher' }), null);
  t.regex(budgetSpeedNotice(30, 'dmd', teacherGan * 1.15, { gan: true })!, new RegExp(`where the plan assumes ${dmd2} s`));
  t.is(budgetSpeedNotice(30, 'fake-warmup', teacherGanWarmup, { gan: true, ganFeatures: 'teacher' }), null);
  t.regex(budgetSpeedNotice(30, 'fake-warmup', teacherGanWarmup, { gan: true })!, new RegExp(`where the plan assumes ${fakeWarmup} s`));
  // with the GAN judging 8 samples, against that batch's costs
  t.is(budgetSpeedNotice(20, 'dmd', BUNDLED_COSTS.teacherGanSmallBatch * 1.15, { gan: true, ganFeatures: 'teacher', ganBatchSize: TEACHER_GAN_BATCH }), null);
  t.regex(budgetSpeedNotice(20, 'dmd', teacherGan, { gan: true, ganFeatures: 'teacher', ganBatchSize: TEACHER_GAN_BATCH })!, new RegExp(`where the plan assumes ${BUNDLED_COSTS.teacherGanSmallBatch} s`));
  t.is(budgetSpeedNotice(20, 'fake-warmup', BUNDLED_COSTS.teacherGanWarmupSmallBatch, { gan: true, ganFeatures: 'teacher', ganBatchSize: TEACHER_GAN_BATCH }), null);
  t.regex(budgetSpeedNotice(8, 'regression', regression * 2)!, /about 16 minutes; 8 minutes here are too short for a plan; give --steps/);
});
