// Evaluation pieces: the TorchScript path (a tiny traced detector with Inception's interface), .npz
// statistics, the Fréchet distance, the evaluation classifier, LPIPS and the regression losses.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { tensor, randn, arange, tidy, noGrad, manualSeed, type Tensor } from '../../src/index.js';
import { TorchScriptModule, InceptionDetector, toUint8RGB } from '../../src/metrics/fid.js';
import { readNpz } from '../../src/io/npz.js';
import { featureStats, frechetDistance, StatsAccumulator } from '../../src/metrics/frechet.js';
import { FeatureClassifier } from '../../src/metrics/classifier.js';
import { LPIPS } from '../../src/metrics/lpips.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { regressionLoss } from '../../src/dmd/regression/losses.js';
import { tempDir } from '../helpers/tmp.js';
import { torchPython } from '../helpers/python.js';
import { DEFAULT_FIXTURES, readManifest, readCase } from '../parity/fixtures.js';
import { formulaWeights } from '../parity/kinds.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const assets = path.resolve(here, '../assets');
const dir = tempDir();

test('a TorchScript module runs with keyword arguments and matches PyTorch', (t) => {
  const expected = JSON.parse(readFileSync(path.join(assets, 'tiny-detector-expected.json'), 'utf8')) as { features: number[][] };
  const m = new TorchScriptModule(path.join(assets, 'tiny-detector.pt'));
  const probe = arange(0, 2 * 3 * 8 * 8).remainder(256).to('uint8').reshape([2, 3, 8, 8]);
  const f = m.call('forward', [probe], { return_features: true });
  t.deepEqual(f.shape, [2, 8]);
  const err = Math.max(...f.toArray().map((v, i) => Math.abs(v - expected.features.flat()[i]!)));
  t.true(err < 1e-6, `max err ${err}`);
  t.deepEqual(m.call('forward', [probe], { return_features: false }).shape, [2]);
  t.throws(() => m.call('nope', []), { message: /no method 'nope'/ });
  m.dispose();
  const det = new InceptionDetector(path.join(assets, 'tiny-detector.pt'));
  t.deepEqual(det.features(randn([3, 1, 8, 8]).clamp(-1, 1)).shape, [3, 8]);
  det.dispose();
  t.deepEqual(toUint8RGB(tensor([[[[-1, 1]]]])).toArray(), [0, 255, 0, 255, 0, 255]);
});

test('.npz statistics (stored and compressed) read as EDM writes them', (t) => {
  for (const f of ['refs.npz', 'refs-compressed.npz']) {
    const a = readNpz(path.join(assets, f));
    t.deepEqual(a.get('mu')!.toArray().map((v) => +v.toFixed(6)), [-1, -0.6, -0.2, 0.2, 0.6, 1]);
    t.is(a.get('sigma')!.dtype, 'float64');
    t.deepEqual(a.get('sigma')!.shape, [6, 6]);
    t.is(a.get('sigma')!.diagonal().toArray()[5], 6.1);
  }
});

test('Fréchet distance: zero for identical data, analytic for 1-D Gaussians, streaming = batch statistics', (t) => {
  manualSeed(0);
  const x = randn([500, 4], { dtype: 'float64' });
  const s = featureStats(x);
  t.true(Math.abs(frechetDistance(s, s)) < 1e-9);
  // 1-D: (mu1-mu2)^2 + (s1 - s2)^2
  const a = { mu: tensor([1], { dtype: 'float64' }), sigma: tensor([[4]], { dtype: 'float64' }), count: 0 };
  const b = { mu: tensor([3], { dtype: 'float64' }), sigma: tensor([[9]], { dtype: 'float64' }), count: 0 };
  t.true(Math.abs(frechetDistance(a, b) - (4 + 1)) < 1e-12);
  const acc = new StatsAccumulator();
  for (const part of x.split(128, 0)) acc.add(part);
  const st = acc.stats();
  t.true(st.mu.allclose(s.mu, 1e-12, 1e-12));
  t.true(st.sigma.allclose(s.sigma, 1e-10, 1e-12));
  // near-singular covariances (fewer samples than dimensions) stay finite and non-negative
  const few = featureStats(randn([5, 16], { dtype: 'float64' }));
  const d = frechetDistance(few, featureStats(randn([5, 16], { dtype: 'float64' })));
  t.true(Number.isFinite(d) && d >= -1e-9);
});

test('the evaluation classifier: features, logits, save/load round trip', (t) => {
  const spec = { inChannels: 1, classes: 10, width: 8, resolution: 32, name: 'test' };
  const c = FeatureClassifier.create(spec, 3);
  c.eval();
  const x = randn([4, 1, 32, 32]).clamp(-1, 1);
  const f = noGrad(() => c.features(x));
  t.deepEqual(f.shape, [4, 32]);
  t.deepEqual(noGrad(() => c.logits(x)).shape, [4, 10]);
  const file = path.join(dir, 'cls.safetensors');
  c.save(file);
  const back = FeatureClassifier.load(file);
  t.deepEqual(back.spec, spec);
  t.true(noGrad(() => back.features(x)).equal(f));
  c.dispose();
  back.dispose();
});

function lpipsFromFixture(): { net: LPIPS; x0: Tensor; x1: Tensor; expected: Tensor } {
  const c = readManifest(DEFAULT_FIXTURES).cases.find((x) => x.name === 'lpips-vgg-64')!;
  const data = readCase(c, DEFAULT_FIXTURES);
  const net = LPIPS.empty();
  noGrad(() => net.loadStateDict(formulaWeights(c.weights as never)));
  net.eval().requiresGrad_(false);
  return { net, x0: data.get('input/x0'), x1: data.get('input/x1'), expected: data.get('expected/distance') };
}

test('LPIPS: zero for identical images, symmetric, differentiable, gray inputs repeated', (t) => {
  const { net, x0, x1 } = lpipsFromFixture();
  t.true(noGrad(() => net.distance(x0, x0)).abs().max().item() < 1e-7);
  const [d01, d10] = noGrad(() => [net.distance(x0, x1), net.distance(x1, x0)]);
  t.true(d01!.allclose(d10!, 1e-5, 1e-8));
  const x = x0.detach().requiresGrad_();
  tidy(() => net.distance(x, x1).sum().backward());
  t.true(x.grad!.abs().sum().item() > 0);
  const g = x0.slice(1, 0, 1);
  t.true(noGrad(() => net.distance(g, g.mul(0.5))).min().item() > 0);
  // bf16 execution: close to fp32 for clearly different images (nearly identical ones are dominated by rounding)
  const far = x0.flip(3);
  const [f32, bf] = noGrad(() => [net.distance(x0, far), net.distance(x0, far, { dtype: 'bfloat16' })]);
  const rel = bf!.sub(f32!).abs().max().item() / f32!.abs().max().item();
  t.log(`bf16 relative error ${rel}`);
  t.true(rel < 0.1, `bf16 relative error ${rel}`);
  net.dispose();
});

test('regression losses: l2, l1, pseudo-huber (iCT constant), lpips needs weights', (t) => {
  const x = tensor([[[[1, 2], [3, 4]]]]);
  const y = tensor([[[[1, 1], [1, 1]]]]);
  t.is(regressionLoss('l2', x, y).item(), (0 + 1 + 4 + 9) / 4);
  t.is(regressionLoss('l1', x, y).item(), (0 + 1 + 2 + 3) / 4);
  const c = 0.00054 * Math.sqrt(4);
  t.true(Math.abs(regressionLoss('pseudo-huber', x, y).item() - (Math.sqrt(14 + c * c) - c)) < 1e-5);
  t.throws(() => regressionLoss('lpips', x, y, null), { message: /needs LPIPS weights/ });
  t.throws(() => LPIPS.load(path.join(dir, 'missing.safetensors')), { message: /missing\.safetensors: file not found/ });
});

test('scripts/convert-lpips.py writes weights that reproduce the reference', (t) => {
  const py = torchPython();
  if (!py) return t.pass();
  const c = readManifest(DEFAULT_FIXTURES).cases.find((x) => x.name === 'lpips-vgg-64')!;
  const ws = formulaWeights(c.weights as never);
  const vggSt = path.join(dir, 'vgg-src.safetensors');
  // hand the formula weights to Python through safetensors, saved back as .pth state dicts
  writeSafetensors(vggSt, ws);
  const make = `
import json,struct,sys,torch,numpy as np,collections
b=open(sys.argv[1],'rb').read();n=struct.unpack('<Q',b[:8])[0];h=json.loads(b[8:8+n]);d=collections.OrderedDict()
for k,v in h.items():
    if k=='__metadata__': continue
    s,e=v['data_offsets'];d[k]=torch.from_numpy(np.frombuffer(b[8+n+s:8+n+e],dtype=np.float32).copy()).reshape(v['shape'])
vgg=collections.OrderedDict((k,v) for k,v in d.items() if k.startswith('features.'))
vgg['classifier.0.weight']=torch.zeros(2,2)
torch.save(vgg,sys.argv[2]); torch.save(collections.OrderedDict((k,v) for k,v in d.items() if k.startswith('lin')),sys.argv[3])`;
  const vggPth = path.join(dir, 'vgg16.pth');
  const linPth = path.join(dir, 'vgg.pth');
  t.is(spawnSync(py, ['-c', make, vggSt, vggPth, linPth]).status, 0);
  const out = path.join(dir, 'lpips.safetensors');
  const r = spawnSync(py, [path.resolve(here, '../../scripts/convert-lpips.py'), vggPth, linPth, out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const net = LPIPS.load(out);
  const data = readCase(c, DEFAULT_FIXTURES);
  const d = noGrad(() => net.distance(data.get('input/x0'), data.get('input/x1')));
  t.true(d.allclose(data.get('expected/distance'), 1e-4, 1e-9));
  net.dispose();
});
