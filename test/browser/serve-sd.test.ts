// `dmd serve` with a Stable Diffusion model: prompts instead of classes, in the API and on the page; a
// one-step SD generator's images equal `dmd sample`'s for the same prompts and seed whatever they are
// batched with; and the model runs in its own thread, so /api/health answers while a long batch of a
// teacher is computed.
import test from 'ava';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { startServer, type DemoServer } from '../../src/serve/server.js';
import { sampleSD } from '../../src/cli/commands/sample-sd.js';
import { tempDir } from '../helpers/tmp.js';
import { tinySD } from '../helpers/sd.js';
import { haveChromium, launch, newPage, CHROMIUM } from '../helpers/browser.js';

const dir = tempDir();
const generator = path.join(dir, 'sd-generator.safetensors');
const teacher = path.join(dir, 'sd-teacher.safetensors');
{
  const sd = tinySD(3);
  sd.saveSingleFile(generator, { metadata: { role: 'generator', conditioning_timestep: '999' } });
  sd.saveSingleFile(teacher);
  sd.dispose();
}
let server: DemoServer;
test.before(async () => {
  server = await startServer({ generator, port: 0, device: 'cpu', maxCount: 8, batchWindowMs: 20 }, () => {});
});
test.after.always(async () => server?.close());

type Answer = { images: string[]; prompts: string[]; batch_images: number; error?: string };
const post = async (s: DemoServer, body: unknown) => {
  const r = await fetch(new URL('api/generate', s.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Answer };
};
const png = (dataUrl: string) => Buffer.from(dataUrl.replace(/^data:image\/png;base64,/, ''), 'base64');

test.serial('the API takes prompts; the images are dmd sample\'s for the same prompts and seed, whatever the batch', async (t) => {
  const info = (await (await fetch(new URL('api/info', server.url))).json()) as { textToImage: boolean; oneStep: boolean; resolution: number; channels: number };
  t.like(info, { textToImage: true, oneStep: true, resolution: 16, channels: 3 });
  const prompts = ['a photo of a sneaker', 'an ankle boot, studio shot', 'a bag'];
  const alone = await post(server, { prompt: prompts, seed: 5, count: 3, format: 'json' });
  t.is(alone.status, 200, alone.body.error);
  t.deepEqual(alone.body.prompts, prompts);
  const out = path.join(dir, 'sampled');
  sampleSD({ generator, prompt: prompts, seed: 5, sampler: 'ddim', dtype: 'float32', batchSize: 2, device: 'cpu', out });
  for (let i = 0; i < 3; i++) t.deepEqual(png(alone.body.images[i]!), readFileSync(path.join(out, `00000${i}.png`)), `image ${i}`);
  // the same request among others (one prompt for every image, other seeds) gives the same images
  const before = server.batcher.stats.batches;
  const all = await Promise.all([
    post(server, { prompt: 'a shirt', seed: 1, count: 2, format: 'json' }),
    post(server, { prompt: prompts, seed: 5, count: 3, format: 'json' }),
    post(server, { prompt: ['x', 'y'], seed: 9, count: 2, format: 'json' }),
  ]);
  t.true(server.batcher.stats.batches - before < 3, 'concurrent requests were merged');
  t.deepEqual(all[1].body.images, alone.body.images);
  t.deepEqual(all[0].body.prompts, ['a shirt', 'a shirt']);
  t.notDeepEqual(all[0].body.images[0], all[0].body.images[1], 'each image of a request has its own noise');
});

test.serial('prompt errors are 400s with a one-line reason', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ count: 2 }, /prompt: this is a text-to-image model; give a prompt/],
    [{ classes: 3, prompt: 'a' }, /classes: this is a text-to-image model/],
    [{ prompt: ['a', 'b'], count: 3 }, /prompt: 2 prompts for count 3; give one per image/],
    [{ prompt: 7 }, /prompt/],
    [{ prompt: 'x'.repeat(2001) }, /prompt/],
    [{ prompt: 'a', count: 9 }, /9 is more than this server's --max-count 8/],
  ];
  for (const [body, re] of cases) {
    const r = await post(server, body);
    t.is(r.status, 400, JSON.stringify(body).slice(0, 80));
    t.regex(r.body.error ?? '', re);
    t.false((r.body.error ?? '').includes('\n'));
  }
});

test.serial('a teacher\'s long batch runs off the event loop: /api/health answers meanwhile', async (t) => {
  const s = await startServer({ teacher, steps: 50, guidance: 3, port: 0, device: 'cpu' }, () => {});
  try {
    const health: number[] = [];
    let done = false;
    const t0 = performance.now();
    const gen = post(s, { prompt: 'a long one', count: 4, format: 'json' }).then((r) => {
      done = true;
      return { ...r, ms: performance.now() - t0 };
    });
    while (!done) {
      const h0 = performance.now();
      t.is((await fetch(new URL('api/health', s.url))).status, 200);
      if (!done) health.push(performance.now() - h0);
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await gen;
    t.is(r.status, 200, r.body.error);
    t.is(r.body.images.length, 4);
    const worst = Math.max(...health);
    t.log(`teacher batch ${r.ms.toFixed(0)} ms (DDIM 50 steps with guidance); ${health.length} health answers meanwhile, slowest ${worst.toFixed(1)} ms`);
    t.true(r.ms > 500, `the batch took ${r.ms.toFixed(0)} ms: too short to show anything`);
    t.true(health.length >= 5, `${health.length} health answers during the batch`);
    t.true(worst < r.ms / 4, `the slowest health answer took ${worst.toFixed(0)} ms of a ${r.ms.toFixed(0)} ms batch`);
  } finally {
    await s.close();
  }
});

test.serial('a teacher is refused as --generator and the reverse, in one line', async (t) => {
  await t.throwsAsync(startServer({ generator: teacher, port: 0, device: 'cpu' }, () => {}), { message: /is a Stable Diffusion teacher, not a one-step generator.*--teacher/ });
  await t.throwsAsync(startServer({ teacher: generator, port: 0, device: 'cpu' }, () => {}), { message: /is a one-step generator from dmd-train, not a teacher; pass it as --generator/ });
});

(haveChromium ? test.serial : test.skip)(`the demo page has a prompt box and makes images for it${haveChromium ? '' : ` [skipped: no Chromium at ${CHROMIUM}]`}`, async (t) => {
  const browser = await launch();
  try {
    const { page, errors } = await newPage(browser);
    await page.goto(server.url);
    t.false(await page.locator('#class-row').isVisible());
    await page.locator('#prompt').fill('a pullover, front view');
    await page.locator('#count').fill('3');
    await page.locator('#generate').click();
    await page.waitForSelector('#status[data-state="done"]');
    t.is(await page.locator('img.sample').count(), 3);
    t.deepEqual(await page.$$eval('img.sample', (imgs) => imgs.map((i) => (i as HTMLImageElement).dataset.prompt)), ['a pullover, front view', 'a pullover, front view', 'a pullover, front view']);
    t.true(await page.$$eval('img.sample', (imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 16)));
    await page.locator('#prompt').fill('');
    await page.locator('#count').fill('1');
    await page.locator('#generate').click();
    await page.waitForSelector('#status[data-state="done"]');
    await page.screenshot({ path: path.join(dir, 'serve-sd.png'), fullPage: true });
    t.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
