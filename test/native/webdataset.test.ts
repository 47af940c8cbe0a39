// WebDataset shards and JPEG images as datasets: tar archives written by GNU tar (ustar, GNU long names,
// pax) are indexed and read; samples group by key with captions (.txt / .json) and classes (.cls);
// photos of several sizes are cut to their centred square and resized like torch's antialiased
// bilinear interpolation; JPEGs decode close to the pixels they encode; bad shards are named.
import test from 'ava';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { openDataset, expandShards, decodeImage, DatasetError } from '../../src/data/sources.js';
import { encodePNG, type Image } from '../../src/data/png.js';
import { centerCropResize } from '../../src/data/resize.js';
import { TarReader } from '../../src/io/tar.js';
import { interpolate } from '../../src/nn/functional.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir('dmd-wds-');

/** A smooth RGB test picture of w x h (HWC). */
function picture(w: number, h: number, seed: number): Image {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < 3; k++)
    data[(y * w + x) * 3 + k] = Math.round(127.5 + 120 * Math.sin((x + 1) * (0.11 + 0.05 * k) + (y + 2) * 0.07 * (seed + 1)));
  return { width: w, height: h, channels: 3, data };
}
const toJPEG = (img: Image, q = 95) => {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let p = 0; p < img.width * img.height; p++) { rgba.set(img.data.subarray(3 * p, 3 * p + 3), 4 * p); rgba[4 * p + 3] = 255; }
  return jpeg.encode({ width: img.width, height: img.height, data: rgba }, q).data;
};

function shard(name: string, files: Record<string, Uint8Array | string>, format = 'gnu'): string {
  const src = path.join(dir, `${name}.src`);
  for (const [f, v] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
    writeFileSync(path.join(src, f), v);
  }
  const out = path.join(dir, `${name}.tar`);
  execFileSync('tar', ['--format', format, '-cf', out, '-C', src, '--sort=name', ...Object.keys(files)]);
  return out;
}

test('GNU tar archives (ustar, GNU long names, pax) are indexed and read member by member', (t) => {
  const long = `${'deep/'.repeat(30)}x.txt`; // 150 characters: beyond ustar's 100-byte name field
  for (const format of ['ustar', 'gnu', 'pax']) {
    const files: Record<string, string> = { 'a.txt': 'alpha', 'sub/b.txt': 'x'.repeat(1300) };
    if (format !== 'ustar') files[long] = 'long name';
    const r = new TarReader(shard(`fmt-${format}`, files, format));
    for (const [k, v] of Object.entries(files)) t.is(r.readEntry(k).toString(), v, `${format} ${k}`);
    t.is(r.entries.size, Object.keys(files).length);
    r.close();
  }
});

test('corrupt and truncated shards are refused naming the file and the place', (t) => {
  const good = shard('good', { 'k1.png': encodePNG(picture(8, 8, 0)), 'k1.txt': 'a cat' });
  const bytes = readFileSync(good);
  const bad = Buffer.from(bytes);
  bad[20] = bad[20]! ^ 0x40; // inside the first member's name: the header checksum no longer matches
  writeFileSync(path.join(dir, 'bad.tar'), bad);
  t.throws(() => openDataset(path.join(dir, 'bad.tar')), { message: /bad\.tar: not a tar archive or corrupt at byte 0 \(header checksum/ });
  writeFileSync(path.join(dir, 'cut.tar'), bytes.subarray(0, 700));
  t.throws(() => openDataset(path.join(dir, 'cut.tar')), { message: /cut\.tar: truncated: member k1\.png needs \d+ bytes/ });
  t.throws(() => openDataset(path.join(dir, 'none-{0..1}.tar')), { message: /none-0\.tar: WebDataset shard not found/ });
});

test('WebDataset samples: key grouping, JPEG and PNG images of several sizes fitted to one square, captions, classes, brace shards', (t) => {
  const pics = [picture(40, 30, 0), picture(24, 24, 1), picture(30, 50, 2), picture(16, 16, 3)];
  const a = shard('wds-000', {
    's/000.jpg': toJPEG(pics[0]!), 's/000.txt': ' a striped shirt \n', 's/000.cls': '3',
    's/001.png': encodePNG(pics[1]!), 's/001.json': JSON.stringify({ caption: 'a bag', width: 24 }), 's/001.cls': '1',
  });
  shard('wds-001', { 'v1.0/002.jpg': toJPEG(pics[2]!), 'v1.0/002.txt': 'a boot', 'v1.0/002.cls': '0', '003.png': encodePNG(pics[3]!), '003.txt': 'a coat', '003.cls': '2' });
  t.deepEqual(expandShards(path.join(dir, 'wds-{000..001}.tar')), [a, path.join(dir, 'wds-001.tar')]);
  const s = openDataset(path.join(dir, 'wds-{000..001}.tar'), { resolution: 16 });
  t.is(s.size, 4);
  t.deepEqual([s.channels, s.height, s.width], [3, 16, 16]);
  t.deepEqual(s.captions, ['a striped shirt', 'a bag', 'a boot', 'a coat']);
  t.deepEqual([...s.labels!], [3, 1, 0, 2]);
  t.is(s.numClasses, 4);
  // each image equals its own crop + antialiased resize by torch (JPEGs: of their decoded pixels)
  const decoded = [decodeImage(toJPEG(pics[0]!), 'a'), pics[1]!, decodeImage(toJPEG(pics[2]!), 'c'), pics[3]!];
  decoded.forEach((img, i) => {
    const side = Math.min(img.width, img.height);
    const x0 = Math.floor((img.width - side) / 2);
    const y0 = Math.floor((img.height - side) / 2);
    const want = tidy(() => {
      const x = tensor(Float32Array.from(img.data), { shape: [1, img.height, img.width, 3] }).permute([0, 3, 1, 2]).narrow(2, y0, side).narrow(3, x0, side);
      return Array.from(interpolate(x, { size: [16, 16], mode: 'bilinear', alignCorners: false, antialias: true }).round().clamp(0, 255).flatten().toFloat64Array());
    });
    const got = s.image(i);
    const worst = want.reduce((m, v, j) => Math.max(m, Math.abs(v - got[j]!)), 0);
    t.true(worst <= 1, `sample ${i}: largest difference from torch's resize ${worst}`);
  });
  // without a resolution: the first image's shorter side
  t.is(openDataset(a).height, 30);
});

test('JPEG decoding is close to the encoded pixels; bad JPEGs and partial captions are named', (t) => {
  const p = picture(33, 21, 4);
  const d = decodeImage(toJPEG(p, 98), 'x.jpg');
  t.deepEqual([d.width, d.height, d.channels], [33, 21, 3]);
  const mae = d.data.reduce((m, v, i) => m + Math.abs(v - p.data[i]!), 0) / d.data.length;
  t.true(mae < 2, `mean absolute error ${mae}`);
  const j = toJPEG(p);
  t.throws(() => decodeImage(j.subarray(0, 200), 'cut.jpg'), { message: /cut\.jpg: corrupt or unsupported JPEG/ });
  const tar = shard('partial', { '0.png': encodePNG(picture(8, 8, 0)), '0.txt': 'one', '1.png': encodePNG(picture(8, 8, 1)) });
  t.throws(() => openDataset(tar), { instanceOf: DatasetError, message: /1 of 2 samples have a caption; 1 in .*partial\.tar has none/ });
  const noImage = shard('noimage', { '0.png': encodePNG(picture(8, 8, 0)), '1.txt': 'orphan' });
  t.throws(() => openDataset(noImage), { message: /sample 1 has no image/ });
  // a folder of JPEGs with sidecar captions reads like a folder of PNGs
  const folder = path.join(dir, 'jpegs');
  mkdirSync(folder);
  writeFileSync(path.join(folder, 'a.jpg'), toJPEG(picture(12, 12, 0)));
  writeFileSync(path.join(folder, 'a.txt'), 'a hat');
  writeFileSync(path.join(folder, 'b.jpeg'), toJPEG(picture(12, 12, 1)));
  writeFileSync(path.join(folder, 'b.txt'), 'a sock');
  const f = openDataset(folder);
  t.is(f.size, 2);
  t.deepEqual(f.captions, ['a hat', 'a sock']);
});

test('centerCropResize leaves a constant image constant and an image of the target size untouched', (t) => {
  const c: Image = { width: 37, height: 23, channels: 1, data: new Uint8Array(37 * 23).fill(77) };
  t.true(centerCropResize(c, 9).data.every((v) => v === 77));
  const same = picture(10, 10, 0);
  t.is(centerCropResize(same, 10), same);
});

test('JPEGs written by libjpeg decode like libjpeg: progressive 4:2:0 colour and one-component gray', (t) => {
  const fx = path.resolve('test/fixtures/jpeg');
  for (const [jpg, ref, channels] of [['progressive.jpg', 'progressive.ppm', 3], ['gray.jpg', 'gray.pgm', 1]] as const) {
    const d = decodeImage(readFileSync(path.join(fx, jpg)), jpg);
    t.deepEqual([d.width, d.height, d.channels], [37, 29, channels], jpg);
    const pnm = readFileSync(path.join(fx, ref));
    const px = pnm.subarray(pnm.length - 37 * 29 * channels);
    let worst = 0;
    let sum = 0;
    px.forEach((v, i) => { const e = Math.abs(v - d.data[i]!); worst = Math.max(worst, e); sum += e; });
    // libjpeg's float IDCT against jpeg-js's integer one: a few levels at most
    t.true(worst <= 3 && sum / px.length < 1, `${jpg}: largest difference from libjpeg ${worst}, mean ${sum / px.length}`);
  }
  t.throws(() => decodeImage(Buffer.from('not an image at all'), 'x.png'), { message: /x\.png/ });
});
