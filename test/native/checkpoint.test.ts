// Teacher files: save/load round trips in both formats, the EDM snapshot converter, and corrupted
// or mismatched files, each a clear error naming the problem (the process survives all of them).
import test from 'ava';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  EDMNetwork, loadEDM, saveEDM, readEDMConfig, writeTorchSave, writeSafetensors, readSafetensors, tensor, ones, randn, tidy, noGrad,
  type Tensor, type EDMConfigInput, type PickleValue,
} from '../../src/index.js';
import { tempDir } from '../helpers/tmp.js';
import { torchPython } from '../helpers/python.js';
import { DEFAULT_FIXTURES, readManifest, readCase } from '../parity/fixtures.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const dir = tempDir();
const cfg: EDMConfigInput = {
  model_type: 'SongUNet', img_resolution: 8, img_channels: 1, label_dim: 3, model_channels: 8, channel_mult: [1, 2], num_blocks: 1, attn_resolutions: [4], dropout: 0,
};

function reference(): { net: EDMNetwork; x: Tensor; sigma: Tensor; labels: Tensor; D: Tensor } {
  const net = EDMNetwork.create(cfg, { seed: 5 });
  net.eval();
  const x = randn([2, 1, 8, 8]).keep();
  const sigma = tensor([0.3, 4]).keep();
  const labels = tensor([[1, 0, 0], [0, 0, 1]]).keep();
  const D = noGrad(() => net.forward(x, sigma, { labels })).keep();
  return { net, x, sigma, labels, D };
}
const ref = reference();

for (const ext of ['pt', 'safetensors']) {
  test(`saveEDM/loadEDM round trip (.${ext}) reproduces the network exactly`, (t) => {
    const f = path.join(dir, `teacher.${ext}`);
    saveEDM(ref.net, f);
    const net = loadEDM(f);
    t.false(net.training);
    t.deepEqual(readEDMConfig(f), net.config);
    const D = noGrad(() => net.forward(ref.x, ref.sigma, { labels: ref.labels }));
    t.true(D.equal(ref.D));
    net.dispose();
  });
}

test('a .pt teacher written by saveEDM loads in PyTorch with torch.load(weights_only=True)', (t) => {
  if (!torchPython()) {
    t.log('skipped: no python3 with torch');
    return t.pass();
  }
  const f = path.join(dir, 'weights-only.pt');
  saveEDM(ref.net, f, { trained_kimg: '12.5' });
  const r = spawnSync(torchPython()!, ['-c', `import torch,sys,json
d=torch.load(sys.argv[1], weights_only=True)
sd=d['state_dict']
print(json.dumps([json.loads(d['config'])['model_type'], d['trained_kimg'], len(sd), sum(v.numel() for v in sd.values())]))`, f], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const [modelType, kimg, count, numel] = JSON.parse(r.stdout) as [string, string, number, number];
  t.is(modelType, 'SongUNet');
  t.is(kimg, '12.5');
  let n = 0;
  let keys = 0;
  for (const [, v] of ref.net.stateDict()) {
    n += v.numel;
    keys += 1;
    v.dispose();
  }
  t.is(count, keys);
  t.is(numel, n);
});

test('a .pt whose config is a dict (not a JSON string) loads too', (t) => {
  const f = path.join(dir, 'dict-config.pt');
  const sd: Record<string, PickleValue> = {};
  for (const [k, v] of ref.net.stateDict()) sd[k] = v;
  writeTorchSave(f, { config: { ...cfg, channel_mult: [1, 2], attn_resolutions: [4] } as unknown as PickleValue, state_dict: sd });
  const net = loadEDM(f);
  t.true(noGrad(() => net.forward(ref.x, ref.sigma, { labels: ref.labels })).equal(ref.D));
  net.dispose();
});

test('scripts/convert-edm.py converts an EDM snapshot to both formats with parity', (t) => {
  if (!torchPython()) {
    t.log('skipped: no python3 with torch');
    return t.pass();
  }
  const c = readManifest(DEFAULT_FIXTURES).cases.find((x) => x.name === 'edm-ddpmpp-cond-16')!;
  const pkl = path.join(dir, 'snapshot.pkl');
  const helpers = path.join(root, 'test/helpers');
  const env = { ...process.env, PYTHONPATH: helpers };
  const mk = spawnSync(torchPython()!, [path.join(helpers, 'edm_standin.py'), path.join(DEFAULT_FIXTURES, c.file), JSON.stringify(c.config), pkl], { env, encoding: 'utf8' });
  t.is(mk.status, 0, mk.stderr);
  const data = readCase(c, DEFAULT_FIXTURES);
  for (const ext of ['pt', 'safetensors']) {
    const out = path.join(dir, `converted.${ext}`);
    const r = spawnSync(torchPython()!, [path.join(root, 'scripts/convert-edm.py'), pkl, out], { env, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, /SongUNet, 211 tensors, 318051 values/);
    const net = loadEDM(out);
    t.is(net.config.sigma_max, null);
    const D = noGrad(() => net.forward(data.get('input/x'), data.get('input/sigma'), { labels: data.get('input/class_labels') }));
    const err = tidy(() => D.sub(data.get('expected/D')).abs().max().item());
    t.true(err < 1e-5, `${ext}: max err ${err}`);
    net.dispose();
  }
  const bad = spawnSync(torchPython()!, [path.join(root, 'scripts/convert-edm.py'), pkl, path.join(dir, 'x.pt'), '--key', 'net'], { env, encoding: 'utf8' });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /no network under key 'net'/);
});

// ---- corrupted and mismatched files ------------------------------------------------------------------
const good = path.join(dir, 'good.pt');
const goodSt = path.join(dir, 'good.safetensors');
saveEDM(ref.net, good);
saveEDM(ref.net, goodSt);
const stateOf = (): Record<string, PickleValue> => {
  const sd: Record<string, PickleValue> = {};
  for (const [k, v] of ref.net.stateDict()) sd[k] = v.keep();
  return sd;
};
const cfgJSON = (over: Record<string, unknown> = {}) => JSON.stringify({ ...cfg, ...over });
let k = 0;
const pt = (value: PickleValue) => {
  const f = path.join(dir, `bad${k++}.pt`);
  writeTorchSave(f, value);
  return f;
};
const raw = (bytes: Buffer | string, ext = 'pt') => {
  const f = path.join(dir, `raw${k++}.${ext}`);
  writeFileSync(f, bytes);
  return f;
};

const variants: [string, () => string, RegExp][] = [
  ['missing file', () => path.join(dir, 'nope.pt'), /file not found/],
  ['a directory', () => { const d = path.join(dir, 'adir'); mkdirSync(d, { recursive: true }); return d; }, /is a directory/],
  ['an empty file', () => raw(''), /too short/],
  ['a truncated pickle (EDM .pkl)', () => raw(Buffer.from([0x80, 0x04, 0x95, 0, 0, 0, 0, 0, 0])), /raw1\.pt: truncated or corrupt pickle/],
  ['a truncated .pt', () => raw(readFileSync(good).subarray(0, 900)), /damaged or not a torch\.save file/],
  ['a .pt without config', () => pt({ state_dict: stateOf() }), /no "config" entry/],
  ['a .pt without state_dict', () => pt({ config: cfgJSON() }), /no "state_dict" entry/],
  ['a .pt whose state_dict is a list', () => pt({ config: cfgJSON(), state_dict: [1, 2] }), /must be a dict of tensors/],
  ['a .pt with a non-tensor weight', () => pt({ config: cfgJSON(), state_dict: { ...stateOf(), 'model.map_layer0.weight': 'w' } }), /'model\.map_layer0\.weight'\] is not a tensor/],
  ['config that is not JSON', () => pt({ config: '{"model_type": SongUNet', state_dict: stateOf() }), /not valid JSON/],
  ['an unknown model_type', () => pt({ config: cfgJSON({ model_type: 'VPPrecond' }), state_dict: stateOf() }), /unknown model_type "VPPrecond"/],
  ['an unknown config field', () => pt({ config: cfgJSON({ chanel_mult: [1] }), state_dict: stateOf() }), /unknown field\(s\) 'chanel_mult'/],
  ['a missing key', () => { const s = stateOf(); delete s['model.map_layer1.bias']; return pt({ config: cfgJSON(), state_dict: s }); }, /1 missing key\(s\): 'model\.map_layer1\.bias'/],
  ['an extra key', () => pt({ config: cfgJSON(), state_dict: { ...stateOf(), 'model.extra.weight': ones([1]) } }), /unexpected key\(s\): 'model\.extra\.weight'/],
  ['config that does not match the tensors', () => pt({ config: cfgJSON({ model_channels: 16 }), state_dict: stateOf() }), /has shape .* but the config implies .*config does not match/],
  ['label_dim that does not match', () => pt({ config: cfgJSON({ label_dim: 0 }), state_dict: stateOf() }), /unexpected key\(s\): 'model\.map_label/],
  ['NaN weights', () => pt({ config: cfgJSON(), state_dict: { ...stateOf(), 'model.map_layer0.bias': ones([32]).mul(NaN) } }), /'model\.map_layer0\.bias' contains NaN/],
  ['integer weights', () => pt({ config: cfgJSON(), state_dict: { ...stateOf(), 'model.map_layer0.bias': ones([32], { dtype: 'int64' }) } }), /dtype int64/],
  ['a truncated .safetensors', () => raw(readFileSync(goodSt).subarray(0, readFileSync(goodSt).length - 100), 'safetensors'), /truncated/],
  ['a .safetensors with a lying header length', () => { const b = Buffer.from(readFileSync(goodSt)); b.writeBigUInt64LE(1n << 33n, 0); return raw(b, 'safetensors'); }, /exceeds the file/],
  ['a .safetensors without config metadata', () => { const f = path.join(dir, `nometa${k++}.safetensors`); const r = readSafetensors(goodSt); writeSafetensors(f, r.tensors); return f; }, /no __metadata__\.config/],
];

test(`${variants.length} corrupted or mismatched teacher files give clear errors`, (t) => {
  t.true(variants.length >= 15);
  for (const [what, make, re] of variants) {
    const f = make();
    const e = t.throws(() => loadEDM(f), undefined, what);
    if (e) t.regex(e.message, re, `${what}: ${e.message}`);
  }
  const net = loadEDM(good); // still works afterwards
  net.dispose();
});

test('an OrderedDict state_dict saved directly (no config) is read, and named as what it is', (t) => {
  if (!torchPython()) return t.pass();
  const f = path.join(dir, 'od.pt');
  const r = spawnSync(torchPython()!, ['-c', `import torch,collections; torch.save(collections.OrderedDict(a=torch.ones(2)), ${JSON.stringify(f)})`]);
  t.is(r.status, 0);
  const e = t.throws(() => loadEDM(f));
  t.regex(e!.message, /od\.pt: holds a bare state dict \(1 tensors\) without the EDM config/);
});

test('a safetensors file whose header length starts with the byte 0x80 is not taken for a pickle', (t) => {
  // pad the metadata until the JSON header is 128 + 256k bytes long: its length's low byte is then 0x80
  for (let pad = 0; pad < 300; pad++) {
    const f = path.join(dir, 'len80.safetensors');
    saveEDM(ref.net, f, { pad: 'x'.repeat(pad) });
    const b = readFileSync(f);
    if (b[0] !== 0x80) continue;
    const net = loadEDM(f);
    t.true(noGrad(() => net.forward(ref.x, ref.sigma, { labels: ref.labels })).equal(ref.D));
    net.dispose();
    return;
  }
  t.fail('no padding gave a header length with low byte 0x80');
});
