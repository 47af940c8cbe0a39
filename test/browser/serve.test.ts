// `dmd serve`: the demo page generates images for a chosen class in Chromium; the API answers bad
// requests with 400 and a one-line reason, merges concurrent requests into batches, keeps each
// request's images independent of its batch, and frees its tensors (flat after 1000 requests).
import test from 'ava';
import path from 'node:path';
import { EDMNetwork, saveGenerator } from '../../src/index.js';
import { startServer, ServeConfigSchema, type DemoServer } from '../../src/serve/server.js';
import { tempDir } from '../helpers/tmp.js';
import { TINY_TEACHER } from '../helpers/teacher.js';
import { haveChromium, launch, newPage, CHROMIUM } from '../helpers/browser.js';

const dir = tempDir();
const generator = path.join(dir, 'generator.safetensors');
{
  const net = EDMNetwork.create(TINY_TEACHER, { seed: 0 });
  saveGenerator(net, generator, 80);
  net.dispose();
}
let server: DemoServer;
test.before(async () => {
  server = await startServer(ServeConfigSchema.parse({ generator, port: 0, device: 'cpu', maxCount: 16, batchWindowMs: 5 }), () => {});
});
test.after.always(async () => server?.close());

const post = (body: string) => fetch(new URL('api/generate', server.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body });

test.serial('bad requests are 400s with a one-line reason; other routes and methods are named', async (t) => {
  const cases: [string, RegExp][] = [
    ['{not json', /not valid JSON/],
    ['[1, 2]', /must be a JSON object/],
    ['{"classes": 12}', /12 is not a class of this model \(0\.\.9\)/],
    ['{"classes": -1}', /-1 is not a class/],
    ['{"classes": 2.5}', /classes/],
    ['{"count": 0}', /count: .*>=1/],
    ['{"count": 17}', /17 is more than this server's --max-count 16/],
    ['{"count": "3"}', /count: .*expected number/],
    ['{"seed": -4}', /seed/],
    ['{"format": "gif"}', /format/],
    ['{"classes": [1, 2], "count": 3}', /2 classes for count 3/],
    ['{"foo": 1}', /unknown field\(s\) 'foo'/],
    ['{"prompt": "a cat"}', /prompt: this model is class-conditional; give classes/],
  ];
  for (const [body, re] of cases) {
    const r = await post(body);
    t.is(r.status, 400, body);
    const j = (await r.json()) as { error: string };
    t.regex(j.error, re, body);
    t.false(j.error.includes('\n'), `${body}: one line`);
  }
  const big = await post(JSON.stringify({ pad: 'x'.repeat(100_000) }));
  t.is(big.status, 413);
  t.is((await fetch(new URL('api/generate', server.url))).status, 405);
  t.is((await fetch(new URL('nowhere', server.url))).status, 404);
  t.is((await fetch(new URL('api/health', server.url))).status, 200);
});

test.serial('concurrent requests are batched, and each request\'s images depend only on its own seed', async (t) => {
  const one = async (seed: number, classes: number) => {
    const r = await post(JSON.stringify({ seed, classes, count: 2, format: 'json' }));
    t.is(r.status, 200);
    return (await r.json()) as { images: string[]; batch_images: number; classes: number[] };
  };
  const alone = await one(7, 3);
  const before = server.batcher.stats.batches;
  const together = await Promise.all(Array.from({ length: 16 }, (_, i) => one(i === 5 ? 7 : 100 + i, i === 5 ? 3 : i % 10)));
  const batches = server.batcher.stats.batches - before;
  t.true(batches < 16, `16 concurrent requests ran in ${batches} batches`);
  t.true(together.some((r) => r.batch_images > 2));
  t.deepEqual(together[5]!.images, alone.images);
  t.deepEqual(together[5]!.classes, [3, 3]);
  const png = await post(JSON.stringify({ count: 10 }));
  t.is(png.headers.get('content-type'), 'image/png');
  t.deepEqual([...new Uint8Array(await png.arrayBuffer()).subarray(1, 4)], [0x50, 0x4e, 0x47]);
});

test.serial('live tensors stay flat over 1000 requests', async (t) => {
  const health = async () => ((await (await fetch(new URL('api/health', server.url))).json()) as { liveTensors: number }).liveTensors;
  await post('{"count": 1}');
  const start = await health();
  for (let i = 0; i < 1000; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => post(JSON.stringify({ count: 1 + ((i + k) % 3), seed: i + k, format: (i + k) % 2 ? 'png' : 'json' })).then((r) => r.arrayBuffer())));
  t.is(await health(), start);
});

(haveChromium ? test.serial : test.skip)(`the demo page generates images of the chosen class${haveChromium ? '' : ` [skipped: no Chromium at ${CHROMIUM}]`}`, async (t) => {
  const browser = await launch();
  try {
    const { page, errors } = await newPage(browser);
    await page.goto(server.url);
    t.is(await page.locator('#class option').count(), 11);
    await page.locator('#class').selectOption('4');
    await page.locator('#count').fill('6');
    await page.locator('#seed').fill('3');
    await page.locator('#generate').click();
    await page.waitForSelector('#status[data-state="done"]');
    t.is(await page.locator('img.sample').count(), 6);
    t.deepEqual(await page.$$eval('img.sample', (imgs) => imgs.map((i) => (i as HTMLImageElement).dataset.class)), ['4', '4', '4', '4', '4', '4']);
    t.true(await page.$$eval('img.sample', (imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth === 32)));
    t.regex((await page.locator('#status').textContent()) ?? '', /6 images in \d+ ms/);
    // a bad count is reported on the page, not thrown
    await page.locator('#count').fill('99');
    await page.locator('#generate').click();
    await page.waitForSelector('#status[data-state="error"]');
    t.regex((await page.locator('#status').textContent()) ?? '', /--max-count 16/);
    await page.screenshot({ path: path.join(dir, 'serve.png'), fullPage: true });
    t.log(`screenshot: ${path.join(dir, 'serve.png')}`);
    t.deepEqual(errors.filter((e) => !/400/.test(e)), []);
  } finally {
    await browser.close();
  }
});
