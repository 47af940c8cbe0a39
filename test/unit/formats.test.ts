// Pure-TS formats: PNG codec, ZIP reader, IDX/CIFAR parsing, config files (no addon).
import test from 'ava';
import { writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync, deflateSync, crc32 } from 'node:zlib';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { encodePNG, decodePNG, PNGError } from '../../src/data/png.js';
import { ZipReader, ZipError } from '../../src/io/zip.js';
import { idxSource, cifarSource, folderSource, edmZipSource, openDataset, DatasetError, FASHION_MNIST_DIR } from '../../src/data/sources.js';
import { readConfigFile, ConfigError } from '../../src/cli/options.js';
import { tempDir } from '../helpers/tmp.js';
import { existsSync, utimesSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileSha256 } from '../../src/util/fs.js';

const dir = tempDir();

test('PNG round trip for gray and RGB', (t) => {
  for (const channels of [1, 3] as const) {
    const data = Uint8Array.from({ length: 5 * 3 * channels }, (_, i) => (i * 37) % 256);
    const img = decodePNG(encodePNG({ width: 5, height: 3, channels, data }));
    t.deepEqual([img.width, img.height, img.channels], [5, 3, channels]);
    t.deepEqual(Array.from(img.data), Array.from(data));
  }
});

test('PNG decoding of every filter type, RGBA and palette images (written by Python)', (t) => {
  // a PNG with filters 0..4 on consecutive rows, RGBA, built by hand
  const w = 3, h = 5;
  const rows: number[] = [];
  const px = (x: number, y: number) => [x * 40 + y, y * 30, 200 - x * 10 - y, 255];
  const raw: number[][] = [];
  for (let y = 0; y < h; y++) raw.push(Array.from({ length: w }, (_, x) => px(x, y)).flat());
  for (let y = 0; y < h; y++) {
    const f = y % 5;
    rows.push(f);
    for (let i = 0; i < w * 4; i++) {
      const a = i >= 4 ? raw[y]![i - 4]! : 0;
      const b = y ? raw[y - 1]![i]! : 0;
      const c = y && i >= 4 ? raw[y - 1]![i - 4]! : 0;
      const p = a + b - c;
      const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, pr][f]!;
      rows.push((raw[y]![i]! - pred) & 0xff);
    }
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0))]);
  const img = decodePNG(png);
  t.is(img.channels, 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) t.deepEqual(Array.from(img.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3)), px(x, y).slice(0, 3));
  t.throws(() => decodePNG(Buffer.from('not a png at all')), { instanceOf: PNGError });
  t.throws(() => decodePNG(png.subarray(0, 40)), { instanceOf: PNGError });
  // a flipped bit in the data is caught by the chunk CRC
  const bad = Buffer.from(png);
  bad[45] = bad[45]! ^ 0x10;
  t.throws(() => decodePNG(bad, 'bad.png'), { instanceOf: PNGError, message: /bad\.png: corrupt/ });
});

test('IDX files (gzip or not) and their errors', (t) => {
  const n = 3, hw = 4;
  const img = Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, hw, 0, 0, 0, hw]), Buffer.from(Array.from({ length: n * hw * hw }, (_, i) => i))]);
  const lab = Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, n]), Buffer.from([2, 0, 1])]);
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(img));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte'), lab);
  const s = openDataset(dir);
  t.is(s.size, 3);
  t.is(s.numClasses, 3);
  t.deepEqual(Array.from(s.labels!), [2, 0, 1]);
  t.deepEqual(Array.from(s.image(1).subarray(0, 3)), [16, 17, 18]);
  writeFileSync(path.join(dir, 'bad-idx3-ubyte'), img.subarray(0, 30));
  t.throws(() => idxSource(path.join(dir, 'bad-idx3-ubyte'), null), { instanceOf: DatasetError, message: /truncated/ });
  const short = path.join(dir, 'short-labels');
  writeFileSync(short, Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 2]), Buffer.from([1, 1])]));
  t.throws(() => idxSource(path.join(dir, 'train-images-idx3-ubyte.gz'), short), { message: /2 labels for 3 images/ });
});

test('CIFAR-10 binary batches', (t) => {
  const rec = Buffer.alloc(2 * 3073);
  rec[0] = 7;
  rec[1] = 11;
  rec[3073] = 3;
  const f = path.join(dir, 'data_batch_x.bin');
  writeFileSync(f, rec);
  const s = cifarSource([f], 'cifar');
  t.deepEqual([s.size, s.channels, s.height, s.numClasses], [2, 3, 32, 10]);
  t.deepEqual(Array.from(s.labels!), [7, 3]);
  t.is(s.image(0)[0], 11);
  writeFileSync(f, rec.subarray(0, 100));
  t.throws(() => cifarSource([f], 'cifar'), { message: /not a whole number/ });
});

test('a folder of PNGs (class = subfolder) and an EDM dataset zip', (t) => {
  const root = path.join(dir, 'pngs');
  for (const [cls, v] of [['cat', 10], ['dog', 200]] as const) {
    mkdirSync(path.join(root, cls), { recursive: true });
    writeFileSync(path.join(root, cls, 'a.png'), encodePNG({ width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(v) }));
  }
  const s = folderSource(root);
  t.deepEqual(Array.from(s.labels!), [0, 1]);
  t.deepEqual(Array.from(s.image(1)), new Array(12).fill(200));
  const py = spawnSync('python3', ['-c', `
import zipfile,json,sys
z=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)
z.write(sys.argv[2],'00000/img00000000.png'); z.write(sys.argv[3],'00000/img00000001.png')
z.writestr('dataset.json', json.dumps({'labels': [['00000/img00000000.png', 4], ['00000/img00000001.png', 1]]}))
z.close()`, path.join(dir, 'ds.zip'), path.join(root, 'cat', 'a.png'), path.join(root, 'dog', 'a.png')]);
  if (py.status !== 0) return;
  const z = edmZipSource(path.join(dir, 'ds.zip'));
  t.deepEqual(Array.from(z.labels!), [4, 1]);
  t.is(z.numClasses, 5);
  t.deepEqual(Array.from(z.image(0)), new Array(12).fill(10));
  writeFileSync(path.join(dir, 'broken.zip'), 'PK not really');
  t.throws(() => new ZipReader(path.join(dir, 'broken.zip')), { instanceOf: ZipError });
});

test('Fashion-MNIST from Debian\'s dataset-fashion-mnist, when installed', (t) => {
  if (!existsSync(FASHION_MNIST_DIR)) {
    t.log('skipped: dataset-fashion-mnist not installed');
    return t.pass();
  }
  const s = openDataset('fashion-mnist');
  t.deepEqual([s.size, s.channels, s.height, s.width, s.numClasses], [60000, 1, 28, 28, 10]);
  t.is(openDataset('fashion-mnist:test').size, 10000);
  t.throws(() => openDataset('/nonexistent/data'), { message: /not found/ });
});

test('config files: YAML (nesting, lists, scalars, comments) and JSON; errors name the line or the problem', (t) => {
  const f = path.join(dir, 'run.yaml');
  writeFileSync(f, `# run settings
steps: 20
lr: 2.0e-6   # generator
name: "fmnist run"
flag: true
empty: null
betas: [0.9, 0.999]
network:
  model_channels: 32
  attn_resolutions:
    - 16
    - 8
`);
  t.deepEqual(readConfigFile(f), { steps: 20, lr: 2e-6, name: 'fmnist run', flag: true, empty: null, betas: [0.9, 0.999], network: { model_channels: 32, attn_resolutions: [16, 8] } });
  const bad = (name: string, text: string, re: RegExp) => {
    const g = path.join(dir, name);
    writeFileSync(g, text);
    t.throws(() => readConfigFile(g), { instanceOf: ConfigError, message: re }, name);
  };
  bad('indent.yaml', 'a: 1\n  b: 2', /at line \d+, column \d+/);
  bad('open.yaml', 'a: [1, 2', /line 1/);
  bad('dup.yaml', 'a: 1\na: 2', /unique|duplicate/i);
  bad('list.yaml', '- 1\n- 2', /mapping of settings/);
  bad('broken.json', '{"a": 1', /broken\.json/);
  t.throws(() => readConfigFile(dir), { instanceOf: ConfigError, message: /is a directory/ });
  t.throws(() => readConfigFile('/dev/zero'), { instanceOf: ConfigError, message: /not a regular file/ });
  t.throws(() => readConfigFile(path.join(dir, 'missing.yaml')), { instanceOf: ConfigError, message: /not found/ });
});

test('fileSha256 matches node:crypto, and a rewritten file is hashed again', (t) => {
  const f = path.join(dir, 'sha.bin');
  const a = Buffer.alloc(3 << 20, 7); // more than one 1 MiB read
  writeFileSync(f, a);
  const want = createHash('sha256').update(a).digest('hex');
  t.is(fileSha256(f), want);
  t.is(fileSha256(f), want); // memoised: same answer
  const b = Buffer.from(a);
  b[b.length - 1] = 8; // same size, new content
  writeFileSync(f, b);
  utimesSync(f, new Date(), new Date(Date.now() + 5000)); // a distinct modification time whatever the clock's resolution
  t.is(fileSha256(f), createHash('sha256').update(b).digest('hex'));
});
