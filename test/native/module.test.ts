// Module handles over the EDM networks: EDM's parameter names, state dicts, train/eval, dtype moves,
// requires_grad, gradients through one forward call, execution in bfloat16.
import test from 'ava';
import { EDMNetwork, noGrad, tidy, randn, tensor, foreach, F, type Tensor } from '../../src/index.js';

const cfg = { model_type: 'SongUNet' as const, img_resolution: 16, img_channels: 3, label_dim: 10, augment_dim: 9, model_channels: 16, channel_mult: [1, 2, 2], num_blocks: 1, attn_resolutions: [8], dropout: 0 };

test('parameter and buffer names are EDM\'s', (t) => {
  const net = EDMNetwork.create(cfg);
  const names = net.stateNames();
  t.is(names.length, 211); // as EDMPrecond(...).state_dict() in the reference fixture
  t.true(names.includes('model.enc.8x8_block0.qkv.weight'));
  t.true(names.includes('model.enc.8x8_down.conv0.resample_filter'));
  t.true(names.includes('model.map_augment.weight'));
  t.false(names.includes('model.map_augment.bias'));
  t.true(names.includes('model.dec.16x16_aux_conv.weight'));
  t.is(net.parameterCount(), 318019);
  t.is(net.parameters().length, net.parameterNames().length);
  const fourier = EDMNetwork.create({ ...cfg, embedding_type: 'fourier', channel_mult_noise: 2, encoder_type: 'residual', decoder_type: 'skip', resample_filter: [1, 3, 3, 1] });
  t.true(fourier.stateNames().includes('model.map_noise.freqs'));
  t.true(fourier.stateNames().includes('model.enc.8x8_aux_residual.weight'));
  t.true(fourier.stateNames().includes('model.dec.8x8_aux_up.resample_filter'));
  net.dispose();
  fourier.dispose();
});

test('seeded creation is reproducible; EDM init scales (zero-ish output convs)', (t) => {
  const a = EDMNetwork.create(cfg, { seed: 3 });
  const b = EDMNetwork.create(cfg, { seed: 3 });
  const sa = a.stateDict();
  const sb = b.stateDict();
  for (const [k, v] of sa) t.true(v.equal(sb.get(k)!), k);
  const conv1 = sa.get('model.enc.16x16_block0.conv1.weight')!;
  t.true(conv1.abs().max().item() < 1e-4); // init_zero: xavier * 1e-5
  a.dispose();
  b.dispose();
});

test('train/eval, clone, to(dtype) and requires_grad', (t) => {
  const net = EDMNetwork.create(cfg, { seed: 1 });
  t.true(net.training);
  net.eval();
  t.false(net.training);
  const c = net.clone();
  t.false(c.training);
  const x = randn([2, 3, 16, 16]);
  const labels = tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]]);
  const [d1, d2] = noGrad(() => [net.forward(x, 2.5, { labels }), c.forward(x, 2.5, { labels })]);
  t.true(d1!.equal(d2!));
  net.requiresGrad_(false);
  t.false(net.parameters()[0]!.requiresGrad);
  net.requiresGrad_(true);
  c.to({ dtype: 'float64' });
  t.is(c.parameters()[0]!.dtype, 'float64');
  net.dispose();
  c.dispose();
});

test('gradients flow through the native forward to every used parameter', (t) => {
  const net = EDMNetwork.create(cfg, { seed: 2 });
  const x = randn([2, 3, 16, 16]);
  const labels = tensor([[1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]);
  tidy(() => net.forward(x, tensor([0.5, 3]), { labels }).square().mean().backward());
  const has = foreach.hasGrad(net.parameters());
  const names = net.parameterNames();
  const without = names.filter((_, i) => !has[i]);
  t.deepEqual(without, ['model.map_augment.weight']); // no augment labels given
  net.dispose();
});

test('bfloat16 execution stays close to float32 and returns float32', (t) => {
  const net = EDMNetwork.create(cfg, { seed: 4 });
  net.eval();
  const x = randn([2, 3, 16, 16]);
  const [a, b] = noGrad(() => [net.forward(x, 1.0), net.forward(x, 1.0, { dtype: 'bfloat16' })]);
  t.is(b!.dtype, 'float32');
  const err = tidy(() => a!.sub(b!).abs().max().item() / a!.abs().max().item());
  t.true(err < 0.05, `relative error ${err}`);
  net.dispose();
});

test('the bottleneck is the encoder output shape', (t) => {
  const net = EDMNetwork.create(cfg);
  const z = noGrad(() => net.bottleneck(randn([2, 3, 16, 16]), 1));
  const s = net.bottleneckShape();
  t.deepEqual(z.shape, [2, s.channels, s.resolution, s.resolution]);
  net.dispose();
});

// The EDM layers resample with a [1, 1] filter through the pooling kernels (native/edm_layers.cc); this
// is the identity that keeps them exact: the same bits as EDM's depthwise (transposed) convolution with
// taps of 1/4 (x4 up), forward and backward, at the shapes of the bundled and preset networks.
test('box-filter resampling by pooling gives the depthwise convolution\'s bits, forward and backward', (t) => {
  tidy(() => {
    for (const [n, c, h] of [[32, 64, 32], [32, 64, 16], [4, 128, 8], [3, 1, 4]] as const) {
      const taps = tensor([[0.25, 0.25], [0.25, 0.25]]).reshape([1, 1, 2, 2]).repeat([c, 1, 1, 1]);
      const x = randn([n, c, h, h]).mul(3);
      const run = (f: (x: Tensor) => Tensor) => {
        const xi = x.clone().requiresGrad_(true);
        const y = f(xi);
        y.mul(tensor(1).add(y.mul(0.1).sin())).sum().backward(); // a gradient that varies per element
        return { y: y.detach(), g: xi.grad! };
      };
      const down = [run((v) => F.conv2d(v, taps, null, { stride: 2, groups: c })), run((v) => F.avgPool2d(v, 2, 2))];
      const up = [run((v) => F.convTranspose2d(v, taps.mul(4), null, { stride: 2, groups: c })), run((v) => F.interpolate(v, { scaleFactor: 2, mode: 'nearest' }))];
      for (const [name, [a, b]] of [['down', down], ['up', up]] as const) {
        t.true(a!.y.equal(b!.y), `${name} ${n}x${c}x${h}: forward`);
        t.true(a!.g.equal(b!.g), `${name} ${n}x${c}x${h}: backward`);
      }
    }
  });
});
