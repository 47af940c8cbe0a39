// Image datasets as uint8 sources: MNIST/Fashion-MNIST IDX files (gzip or not), CIFAR-10 binary
// batches, a folder of PNG/JPEG images (class = subfolder), EDM's dataset zip (images + dataset.json),
// and WebDataset tar shards (image + caption/class per sample key, photos of any size fitted to a square).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { decodePNG, type Image } from './png.js';
import { decodeJPEG, isJPEG } from './jpeg.js';
import { centerCropResize } from './resize.js';
import { ZipReader } from '../io/zip.js';
import { TarReader } from '../io/tar.js';

export class DatasetError extends Error {
  readonly code = 'ERR_DATASET';
}

export interface ImageSource {
  readonly name: string;
  readonly size: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** number of classes (0 for unlabelled data) */
  readonly numClasses: number;
  /** class index per image, or null */
  readonly labels: Int32Array | null;
  /** a caption per image (folders and zips with a `.txt` beside every image, WebDataset captions), or null */
  readonly captions?: string[] | null;
  /** CHW uint8 pixels of image i */
  image(i: number): Uint8Array;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

// ---- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------------
function readMaybeGzip(file: string): Buffer {
  const b = readFileSync(file);
  if (b[0] === 0x1f && b[1] === 0x8b) {
    try {
      return gunzipSync(b);
    } catch (e) {
      throw new DatasetError(`${file}: corrupt gzip (${e instanceof Error ? e.message : String(e)})`);
    }
  }
  return b;
}

export function parseIDX(buf: Buffer, file: string): { dims: number[]; data: Uint8Array } {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new DatasetError(`${file}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new DatasetError(`${file}: IDX element type 0x${buf[2]!.toString(16)} is not unsigned bytes`);
  const nd = buf[3]!;
  if (nd < 1 || nd > 4 || buf.length < 4 + 4 * nd) throw new DatasetError(`${file}: bad IDX header`);
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * nd;
  if (buf.length - start !== n) throw new DatasetError(`${file}: IDX header says ${n} bytes of data, file has ${buf.length - start} (truncated or corrupt)`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + start, n) };
}

function findFile(dir: string, base: string): string | null {
  for (const f of [base, `${base}.gz`]) if (existsSync(path.join(dir, f))) return path.join(dir, f);
  return null;
}

export function idxSource(imagesFile: string, labelsFile: string | null, name = path.basename(imagesFile)): ImageSource {
  const img = parseIDX(readMaybeGzip(imagesFile), imagesFile);
  if (img.dims.length !== 3) throw new DatasetError(`${imagesFile}: expected [N, H, W] images, got [${img.dims.join(', ')}]`);
  const [n, h, w] = img.dims as [number, number, number];
  let labels: Int32Array | null = null;
  let numClasses = 0;
  if (labelsFile) {
    const lab = parseIDX(readMaybeGzip(labelsFile), labelsFile);
    if (lab.dims.length !== 1 || lab.dims[0] !== n) throw new DatasetError(`${labelsFile}: ${lab.dims[0]} labels for ${n} images in ${imagesFile}`);
    labels = Int32Array.from(lab.data);
    numClasses = Math.max(...labels) + 1;
  }
  const px = h * w;
  return { name, size: n, channels: 1, height: h, width: w, numClasses, labels, image: (i) => img.data.subarray(i * px, (i + 1) * px) };
}

/** The images file of an IDX split in `dir` (plain or gzipped), or null. */
const idxImagesFile = (dir: string, split: 'train' | 't10k'): string | null => findFile(dir, `${split}-images-idx3-ubyte`);

/** Whether Debian's dataset-fashion-mnist is installed (its training images, without reading them). */
export function hasFashionMnist(): boolean {
  return idxImagesFile(FASHION_MNIST_DIR, 'train') !== null;
}

function idxDir(dir: string, split: 'train' | 't10k'): ImageSource | null {
  const imgs = idxImagesFile(dir, split);
  if (!imgs) return null;
  return idxSource(imgs, findFile(dir, `${split}-labels-idx1-ubyte`), `${path.basename(dir)}:${split}`);
}

// ---- CIFAR-10 binary ------------------------------------------------------------------------------
export function cifarSource(files: string[], name: string): ImageSource {
  const rec = 1 + 3072;
  const bufs = files.map((f) => {
    const b = readFileSync(f);
    if (b.length % rec !== 0) throw new DatasetError(`${f}: ${b.length} bytes is not a whole number of CIFAR-10 records (${rec} bytes each)`);
    return b;
  });
  const all = Buffer.concat(bufs);
  const n = all.length / rec;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = all[i * rec]!;
    if (labels[i]! > 9) throw new DatasetError(`${name}: record ${i} has label ${labels[i]}, CIFAR-10 labels are 0..9 (not a CIFAR-10 binary file?)`);
  }
  return { name, size: n, channels: 3, height: 32, width: 32, numClasses: 10, labels, image: (i) => all.subarray(i * rec + 1, (i + 1) * rec) };
}

// ---- PNG/JPEG folders, EDM zips and WebDataset shards ---------------------------------------------
const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** A PNG or a JPEG (told by its signature) as gray or RGB HWC uint8. */
export function decodeImage(buf: Uint8Array, file: string): Image {
  return isJPEG(buf) ? decodeJPEG(buf, file) : decodePNG(buf, file);
}

function hwcToChw(d: Uint8Array, h: number, w: number, c: number): Uint8Array {
  if (c === 1) return d;
  const out = new Uint8Array(d.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[k * h * w + y * w + x] = d[(y * w + x) * c + k]!;
  return out;
}

/**
 * The captions of PNGs: the text of `x.txt` beside each `x.png` (trimmed, UTF-8), when every image has
 * one; null when none has; refused when only some have (a caption file lost in a copy).
 */
function sidecarCaptions(name: string, files: string[], has: (f: string) => boolean, read: (f: string) => Buffer): string[] | null {
  const txt = files.map((f) => f.replace(IMAGE_FILE, '.txt'));
  const present = txt.filter(has).length;
  if (!present) return null;
  if (present < files.length) {
    const missing = txt.find((t) => !has(t))!;
    throw new DatasetError(`${name}: ${present} of ${files.length} images have a caption (.txt beside the image); ${missing} is missing. Caption every image or none`);
  }
  return txt.map((t) => read(t).toString('utf8').trim());
}

function pngSource(name: string, files: string[], labels: Int32Array | null, read: (f: string) => Buffer, captions: string[] | null = null): ImageSource {
  if (!files.length) throw new DatasetError(`${name}: no PNG or JPEG images found`);
  const first = decodeImage(read(files[0]!), files[0]!);
  const { width, height, channels } = first;
  const numClasses = labels ? Math.max(...labels) + 1 : 0;
  return {
    name, size: files.length, channels, height, width, numClasses, labels, captions,
    image(i) {
      const f = files[i]!;
      const img = decodeImage(read(f), f);
      if (img.width !== width || img.height !== height || img.channels !== channels)
        throw new DatasetError(`${name}: ${f} is ${img.width}x${img.height}x${img.channels}, the dataset is ${width}x${height}x${channels} (images of several sizes: pack them as WebDataset .tar shards, which are cropped and resized to one size)`);
      return hwcToChw(img.data, height, width, channels);
    },
  };
}

export function folderSource(dir: string): ImageSource {
  const subdirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const files: string[] = [];
  const labels: number[] = [];
  if (subdirs.length) {
    subdirs.forEach((sd, cls) => {
      for (const f of readdirSync(path.join(dir, sd)).filter((f) => IMAGE_FILE.test(f)).sort()) {
        files.push(path.join(dir, sd, f));
        labels.push(cls);
      }
    });
  } else {
    for (const f of readdirSync(dir).filter((f) => IMAGE_FILE.test(f)).sort()) files.push(path.join(dir, f));
  }
  return pngSource(dir, files, subdirs.length ? Int32Array.from(labels) : null, (f) => readFileSync(f), sidecarCaptions(dir, files, existsSync, (f) => readFileSync(f)));
}

export function edmZipSource(file: string): ImageSource {
  const zip = new ZipReader(file);
  const names = [...zip.entries.keys()].filter((n) => IMAGE_FILE.test(n)).sort();
  let labels: Int32Array | null = null;
  if (zip.entries.has('dataset.json')) {
    let meta: { labels?: [string, number][] | null };
    try {
      meta = JSON.parse(zip.readEntry('dataset.json').toString('utf8'));
    } catch (e) {
      throw new DatasetError(`${file}: dataset.json is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (meta.labels) {
      const map = new Map(meta.labels.map(([n, l]) => [n.replace(/\\/g, '/'), l]));
      labels = Int32Array.from(names.map((n) => {
        const l = map.get(n);
        if (l === undefined) throw new DatasetError(`${file}: dataset.json has no label for ${n}`);
        if (!Number.isInteger(l) || l < 0 || l > 1e6) throw new DatasetError(`${file}: dataset.json gives ${n} the label ${JSON.stringify(l)}; labels must be class indices 0, 1, ...`);
        return l;
      }));
    }
  }
  return pngSource(file, names, labels, (n) => zip.readEntry(n), sidecarCaptions(file, names, (n) => zip.entries.has(n), (n) => zip.readEntry(n)));
}

/** `a-{000..012}.tar` -> a-000.tar ... a-012.tar (WebDataset's brace notation, zero padding kept); other specs as they are. */
export function expandShards(spec: string): string[] {
  const m = /\{(\d+)\.\.(\d+)\}/.exec(spec);
  if (!m) return [spec];
  const [lo, hi] = [parseInt(m[1]!, 10), parseInt(m[2]!, 10)];
  if (hi < lo) throw new DatasetError(`${spec}: the shard range {${m[1]}..${m[2]}} is empty`);
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) out.push(...expandShards(spec.slice(0, m.index) + String(i).padStart(m[1]!.length, '0') + spec.slice(m.index + m[0].length)));
  return out;
}

/**
 * WebDataset shards: members grouped into samples by key (the path up to the first dot of the file
 * name), each sample an image (`png`, `jpg` or `jpeg`) with optionally a caption (`txt`, or `json` with a
 * "caption" or "text" field) and a class (`cls`, an integer). Every image is cut to its centred square and
 * resized to `resolution` (default: the first image's shorter side); gray images in a colour dataset are
 * repeated to RGB. Captions and classes must be given for every sample or none.
 */
export function webDatasetSource(shards: string[], o: { resolution?: number; name?: string } = {}): ImageSource {
  const name = o.name ?? shards.join(',');
  interface Sample { tar: TarReader; key: string; image?: string; txt?: string; json?: string; cls?: string }
  const samples: Sample[] = [];
  for (const file of shards) {
    if (!existsSync(file)) throw new DatasetError(`${file}: WebDataset shard not found`);
    const tar = new TarReader(file);
    const byKey = new Map<string, Sample>();
    for (const member of tar.entries.keys()) {
      const slash = member.lastIndexOf('/');
      const dot = member.indexOf('.', slash + 1);
      if (dot < 0) continue;
      const key = member.slice(0, dot);
      const ext = member.slice(dot + 1).toLowerCase();
      let s = byKey.get(key);
      if (!s) byKey.set(key, (s = { tar, key }));
      if ((ext === 'png' || ext === 'jpg' || ext === 'jpeg') && !s.image) s.image = member;
      else if (ext === 'txt') s.txt = member;
      else if (ext === 'json') s.json = member;
      else if (ext === 'cls') s.cls = member;
    }
    for (const s of byKey.values()) {
      if (!s.image) throw new DatasetError(`${file}: sample ${s.key} has no image (png, jpg or jpeg)`);
      samples.push(s);
    }
  }
  if (!samples.length) throw new DatasetError(`${name}: no samples in the shards`);
  const caption = (s: Sample): string | null => {
    if (s.txt) return s.tar.readEntry(s.txt).toString('utf8').trim();
    if (!s.json) return null;
    let j: { caption?: unknown; text?: unknown };
    try {
      j = JSON.parse(s.tar.readEntry(s.json).toString('utf8'));
    } catch (e) {
      throw new DatasetError(`${s.tar.path}: ${s.json} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const c = j.caption ?? j.text;
    return typeof c === 'string' ? c.trim() : null;
  };
  const caps = samples.map(caption);
  const nCaps = caps.filter((c) => c !== null).length;
  if (nCaps && nCaps < samples.length) {
    const s = samples[caps.indexOf(null)]!;
    throw new DatasetError(`${name}: ${nCaps} of ${samples.length} samples have a caption; ${s.key} in ${s.tar.path} has none (a .txt, or a .json with "caption"). Caption every sample or none`);
  }
  const nCls = samples.filter((s) => s.cls).length;
  if (nCls && nCls < samples.length) {
    const s = samples.find((x) => !x.cls)!;
    throw new DatasetError(`${name}: ${nCls} of ${samples.length} samples have a class (.cls); ${s.key} in ${s.tar.path} has none`);
  }
  const labels = nCls ? Int32Array.from(samples.map((s) => {
    const v = Number(s.tar.readEntry(s.cls!).toString('utf8').trim());
    if (!Number.isInteger(v) || v < 0 || v > 1e6) throw new DatasetError(`${s.tar.path}: ${s.cls} holds ${JSON.stringify(s.tar.readEntry(s.cls!).toString('utf8').trim())}; classes must be integers 0, 1, ...`);
    return v;
  })) : null;
  const decode = (s: Sample): Image => decodeImage(s.tar.readEntry(s.image!), `${s.tar.path}:${s.image}`);
  const first = decode(samples[0]!);
  const size = o.resolution ?? Math.min(first.width, first.height);
  const channels = first.channels;
  return {
    name, size: samples.length, channels, height: size, width: size, numClasses: labels ? Math.max(...labels) + 1 : 0, labels,
    captions: nCaps ? (caps as string[]) : null,
    image(i) {
      const s = samples[i]!;
      let img = decode(s);
      if (img.channels !== channels) {
        if (channels === 1) throw new DatasetError(`${name}: ${s.tar.path}:${s.image} is a colour image in a gray dataset (its first image is gray)`);
        const rgb = new Uint8Array(img.data.length * 3);
        for (let p = 0; p < img.data.length; p++) rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = img.data[p]!;
        img = { ...img, channels: 3, data: rgb };
      }
      const fitted = centerCropResize(img, size);
      return hwcToChw(fitted.data, size, size, channels);
    },
  };
}

/**
 * Opens a dataset: 'fashion-mnist' / 'fmnist' (Debian's dataset-fashion-mnist; ':test' for t10k), a
 * directory of IDX files, a CIFAR-10 binary directory, an EDM dataset .zip, a folder of PNG/JPEG images
 * (with captions in `.txt` files beside them for text-to-image models), or WebDataset `.tar` shards
 * (`shards-{0000..0099}.tar`; `resolution` is the square size their images are fitted to).
 */
export function openDataset(spec: string, o: { resolution?: number } = {}): ImageSource {
  if (/\.tar$/i.test(spec)) return webDatasetSource(expandShards(spec), { resolution: o.resolution, name: spec });
  const [base, split] = spec.split(':') as [string, string | undefined];
  if (base === 'fashion-mnist' || base === 'fmnist') {
    const s = idxDir(FASHION_MNIST_DIR, split === 'test' ? 't10k' : 'train');
    if (!s) throw new DatasetError(`Fashion-MNIST not found in ${FASHION_MNIST_DIR}: install it with 'apt-get install dataset-fashion-mnist', or pass --data <directory of IDX files>`);
    return s;
  }
  if (!existsSync(spec)) throw new DatasetError(`dataset '${spec}' not found (expected fashion-mnist, a directory of IDX or CIFAR-10 files, an EDM .zip, WebDataset .tar shards, or a folder of PNG/JPEG images)`);
  const st = statSync(spec);
  if (st.isFile()) {
    if (spec.endsWith('.zip')) return edmZipSource(spec);
    if (/idx3-ubyte(\.gz)?$/.test(spec)) return idxSource(spec, existsSync(spec.replace('images-idx3', 'labels-idx1')) ? spec.replace('images-idx3', 'labels-idx1') : null);
    if (spec.endsWith('.bin')) return cifarSource([spec], spec);
    throw new DatasetError(`${spec}: unknown dataset file type (expected .zip, an IDX images file, or a CIFAR-10 .bin)`);
  }
  if (!st.isDirectory()) throw new DatasetError(`${spec}: is neither a dataset file nor a directory (a device, pipe or socket?)`);
  const idx = idxDir(spec, split === 'test' ? 't10k' : 'train');
  if (idx) return idx;
  for (const d of [spec, path.join(spec, 'cifar-10-batches-bin')]) {
    if (existsSync(path.join(d, 'data_batch_1.bin'))) {
      const files = split === 'test' ? ['test_batch.bin'] : [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
      return cifarSource(files.map((f) => path.join(d, f)), `${d}${split ? `:${split}` : ''}`);
    }
  }
  return folderSource(spec);
}
