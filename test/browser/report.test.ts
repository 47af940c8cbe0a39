// report.html of real runs, opened in Chromium from file://: no console errors, one chart per metric
// family with every series holding as many points as metrics.jsonl has values, resumed segments and
// NaN stops marked, and the slider switching the sample grids. Screenshots go to the test's temp dir.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DMDTrainer, NonFiniteLossError } from '../../src/index.js';
import { writeReport, reportHooks } from '../../src/report/report.js';
import { tempDir } from '../helpers/tmp.js';
import { tinyTeacher } from '../helpers/teacher.js';
import { trainTeacher, TeacherConfigSchema } from '../../src/teacher/train.js';
import { FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { haveChromium, launch, newPage, CHROMIUM } from '../helpers/browser.js';

const dir = tempDir();
const teacher = tinyTeacher(dir);
const quiet = () => {};
const base = { teacher, batchSize: 2, device: 'cpu', sampleEvery: 2, checkpointEvery: 3, metricsEvery: 1, fakeUpdatesPerGen: 2, finalEval: 0, gan: false };
const browserTest = haveChromium ? test.serial : test.skip;
const title = (t: string) => (haveChromium ? t : `${t} [skipped: no Chromium at ${CHROMIUM}; apt-get install chromium]`);

async function train(cfg: Record<string, unknown>): Promise<void> {
  const tr = new DMDTrainer({ ...base, ...cfg }, quiet);
  try {
    await tr.train(quiet, { progress: false });
  } finally {
    tr.dispose();
  }
}

function metricCounts(run: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n')) {
    const m = JSON.parse(line) as Record<string, unknown>;
    if (m.event) continue;
    for (const [k, v] of Object.entries(m)) if (typeof v === 'number') counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

browserTest(title('the report of a resumed DMD run: charts with every point, resume marked, slider switches grids, no console errors'), async (t) => {
  const run = path.join(dir, 'dmd');
  await train({ out: run, steps: 6 });
  await train({ out: run, steps: 10, resume: true });
  // the run refreshed report.html itself; rewrite it to check the command's output is the same kind of page
  const summary = writeReport(run);
  const counts = metricCounts(run);
  const browser = await launch();
  try {
    const { page, errors } = await newPage(browser);
    await page.goto(pathToFileURL(summary.file).href);
    await page.waitForSelector('figure.chart svg path[data-series]');
    t.deepEqual(errors, []);
    const charts = await page.$$eval('figure.chart', (figs) => figs.map((f) => ({
      id: (f as HTMLElement).dataset.chart,
      series: Array.from(f.querySelectorAll('path[data-series]')).map((p) => [p.getAttribute('data-series'), Number(p.getAttribute('data-points'))]),
      resumes: f.querySelectorAll('line[data-resume]').length,
    })));
    for (const id of ['dm', 'fake', 'grad', 'lr']) t.true(charts.some((c) => c.id === id), `chart ${id} missing`);
    for (const c of charts) {
      t.true(c.series.length > 0, `${c.id} has no series`);
      for (const [name, n] of c.series) t.is(n, counts.get(name as string), `${c.id}/${name}`);
      t.is(c.resumes, 1, `${c.id}: the resumed segment is marked once`);
    }
    // the log-scale toggle redraws without errors and keeps the series
    await page.locator('figure[data-chart="fake"] input.log-toggle').check();
    t.is(await page.locator('figure[data-chart="fake"] path[data-series="loss_fake"]').count(), 1);
    // the slider walks through the grids
    const grids = await page.locator('#grid-slider').getAttribute('max');
    t.is(Number(grids) + 1, summary.grids);
    const last = await page.locator('#grid-image').getAttribute('src');
    t.is(await page.locator('#grid-caption').textContent(), 'final');
    await page.locator('#grid-slider').fill('0');
    t.is(await page.locator('#grid-caption').textContent(), 'step 2');
    t.not(await page.locator('#grid-image').getAttribute('src'), last);
    await page.screenshot({ path: path.join(dir, 'report-dmd.png'), fullPage: true });
    t.log(`screenshot: ${path.join(dir, 'report-dmd.png')}`);
    t.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

browserTest(title('the report of a run stopped by NaN losses marks the stop'), async (t) => {
  const run = path.join(dir, 'nan');
  await t.throwsAsync(() => train({ out: run, steps: 30, genLr: 1e12, fakeLr: 1e12, warmupSteps: 0, gradClip: 0, checkpointEvery: 2 }), { instanceOf: NonFiniteLossError });
  const browser = await launch();
  try {
    const { page, errors } = await newPage(browser);
    await page.goto(pathToFileURL(path.join(run, 'report.html')).href);
    await page.waitForSelector('figure.chart');
    t.regex((await page.locator('p.stop').first().textContent()) ?? '', /Stopped at step \d+: .*(NaN|Inf)/);
    t.true((await page.locator('line[data-stop]').count()) > 0);
    t.deepEqual(errors, []);
    await page.screenshot({ path: path.join(dir, 'report-nan.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

browserTest(title('the report of a teacher run shows its EDM loss and learning rate'), async (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) return t.pass();
  const run = path.join(dir, 'teacher');
  await trainTeacher(TeacherConfigSchema.parse({ out: run, data: 'fashion-mnist:test', kimg: 0.012, batchSize: 2, metricsEvery: 1, sampleEvery: 3, checkpointEvery: 3, device: 'cpu', network: { model_channels: 8, num_blocks: 1, attn_resolutions: [] } }), quiet, { progress: false, hooks: reportHooks(run) });
  const counts = metricCounts(run);
  const browser = await launch();
  try {
    const { page, errors } = await newPage(browser);
    await page.goto(pathToFileURL(path.join(run, 'report.html')).href);
    await page.waitForSelector('figure.chart');
    t.is(Number(await page.locator('figure[data-chart="loss"] path[data-series="loss"]').getAttribute('data-points')), counts.get('loss') ?? -1);
    t.is(Number(await page.locator('figure[data-chart="lr"] path[data-series="lr"]').getAttribute('data-points')), counts.get('lr') ?? -1);
    t.regex((await page.locator('table').first().textContent()) ?? '', /teacher/);
    t.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
