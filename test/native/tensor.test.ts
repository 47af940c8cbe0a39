// Tensor creation, readback and the op table, checked against hand-computed values.
import test from 'ava';
import {
  tensor, zeros, ones, full, arange, linspace, eye, fromArray, fromBytes, cat, stack, where, einsum, tidy, DTYPES, type DType,
  F, eigh,
} from '../../src/index.js';

const close = (a: number[], b: number[], eps = 1e-6) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) <= eps);

test('creation functions and shapes', (t) => {
  t.deepEqual(zeros([2, 3]).shape, [2, 3]);
  t.deepEqual(ones([4]).toArray(), [1, 1, 1, 1]);
  t.deepEqual(full([2], 7, { dtype: 'int32' }).toArray(), [7, 7]);
  t.is(arange(5).dtype, 'int64');
  t.deepEqual(arange(0, 1, 0.25).toArray(), [0, 0.25, 0.5, 0.75]);
  t.deepEqual(linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
  t.deepEqual(eye(2).toArray(), [1, 0, 0, 1]);
  t.deepEqual(tensor([[1, 2], [3, 4]]).shape, [2, 2]);
  t.is(tensor(true).dtype, 'bool');
  t.is(tensor(3.5).item(), 3.5);
});

test('every dtype round-trips through bytes and casts', (t) => {
  for (const d of DTYPES) {
    const x = tensor([0, 1, 2, 3], { dtype: d as DType });
    t.is(x.dtype, d);
    const back = fromBytes(x.bytes(), [4], d as DType);
    t.true(back.equal(x), d);
    t.deepEqual(x.to('float64').toArray(), d === 'bool' ? [0, 1, 1, 1] : [0, 1, 2, 3], d);
  }
});

test('fromArray shares memory both ways (zero-copy), tensor() copies', (t) => {
  const a = new Float32Array([1, 2, 3, 4]);
  const shared = fromArray(a, [2, 2]);
  shared.mul_(10);
  t.deepEqual(Array.from(a), [10, 20, 30, 40]);
  a[0] = -1;
  t.is(shared.toArray()[0], -1);
  const copied = tensor(a, { shape: [4] });
  a[1] = 99;
  t.is(copied.toArray()[1], 20);
  const ints = fromArray(new BigInt64Array([5n, 6n]));
  t.is(ints.dtype, 'int64');
  t.deepEqual(ints.toArray(), [5, 6]);
});

test('arithmetic broadcasts and follows PyTorch promotion for JS numbers', (t) => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  const b = tensor([10, 20, 30]);
  t.deepEqual(a.add(b).toArray(), [11, 22, 33, 14, 25, 36]);
  t.deepEqual(a.sub(b, 0.5).toArray(), [-4, -8, -12, -1, -5, -9]);
  t.deepEqual(a.mul(2).toArray(), [2, 4, 6, 8, 10, 12]);
  t.deepEqual(a.rsub(1).toArray(), [0, -1, -2, -3, -4, -5]);
  t.deepEqual(tensor([2, 4]).rdiv(8).toArray(), [4, 2]);
  const i = arange(4);
  t.is(i.add(2).dtype, 'int64');
  t.is(i.add(2.5).dtype, 'float32');
  t.is(i.div(2).dtype, 'float32');
  t.deepEqual(a.gt(3).toArray(), [0, 0, 0, 1, 1, 1]);
  t.deepEqual(a.maximum(tensor(4)).toArray(), [4, 4, 4, 4, 5, 6]);
});

test('unary functions', (t) => {
  const x = tensor([-1, 0, 2]);
  t.true(close(x.exp().toArray(), [Math.exp(-1), 1, Math.exp(2)], 1e-5));
  t.true(close(x.silu().toArray(), [-1 / (1 + Math.E), 0, 2 / (1 + Math.exp(-2))], 1e-6));
  t.true(close(x.sigmoid().toArray(), [1 / (1 + Math.E), 0.5, 1 / (1 + Math.exp(-2))], 1e-6));
  t.true(close(x.softplus().toArray(), x.toArray().map((v) => Math.log1p(Math.exp(v))), 1e-6));
  t.true(close(x.abs().sqrt().toArray(), [1, 0, Math.SQRT2], 1e-6));
  t.deepEqual(x.clamp(-0.5, 1).toArray(), [-0.5, 0, 1]);
  t.deepEqual(tensor([NaN, Infinity, -Infinity, 1]).nanToNum(0, 5, -5).toArray(), [0, 5, -5, 1]);
  t.deepEqual(x.tanh().toArray().map((v) => +v.toFixed(6)), [-0.761594, 0, 0.964028]);
});

test('reductions over dims, keepdim, std with correction', (t) => {
  const a = tensor([[1, 2, 3], [4, 5, 6]]);
  t.is(a.sum().item(), 21);
  t.deepEqual(a.sum(0).toArray(), [5, 7, 9]);
  t.deepEqual(a.mean(1, true).shape, [2, 1]);
  t.deepEqual(a.amax(1).toArray(), [3, 6]);
  t.is(a.min().item(), 1);
  t.true(close(a.std(1).toArray(), [1, 1]));
  t.true(close(a.std(1, { correction: 0 }).toArray(), [Math.sqrt(2 / 3), Math.sqrt(2 / 3)]));
  t.deepEqual(a.argmax(1).toArray(), [2, 2]);
  const [v, i] = a.maxDim(0);
  t.deepEqual(v.toArray(), [4, 5, 6]);
  t.deepEqual(i.toArray(), [1, 1, 1]);
  t.true(close([a.norm().item()], [Math.sqrt(91)], 1e-5));
  t.true(close(a.logsumexp(1).toArray(), [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)), Math.log(Math.exp(4) + Math.exp(5) + Math.exp(6))], 1e-5));
  t.is(tensor([true, false]).any().item(), 1);
  t.is(tensor([true, false]).all().item(), 0);
});

test('std and var honour corrections 0, 1 and 2 (values from PyTorch 1.13)', (t) => {
  // torch.tensor([[1., 5, 2, 8], [3, 9, 4, 7]]): .flatten().var(0, correction=c), .std(1, correction=c),
  // .var(0, correction=c, keepdim=True); correction 2 used to act as 1 (libtorch's bool overload)
  const a = tensor([[1, 5, 2, 8], [3, 9, 4, 7]]);
  const expected = [
    { all: 7.359375, std1: [2.7386128902435303, 2.384848117828369], var0: [1, 4, 1, 0.25] },
    { all: 8.410714149475098, std1: [3.1622776985168457, 2.7537853717803955], var0: [2, 8, 2, 0.5] },
    { all: 9.8125, std1: [3.872983455657959, 3.3726844787597656], var0: [Infinity, Infinity, Infinity, Infinity] },
  ];
  expected.forEach((e, correction) => {
    t.true(close([a.var(null, { correction }).item()], [e.all], 1e-5), `var correction ${correction}`);
    t.true(close([a.std(null, { correction }).item()], [Math.sqrt(e.all)], 1e-5), `std correction ${correction}`);
    t.true(close(a.std(1, { correction }).toArray(), e.std1, 1e-6), `std(1) correction ${correction}`);
    const v = a.var(0, { correction, keepdim: true });
    t.deepEqual(v.shape, [1, 4]);
    t.deepEqual(v.toArray(), e.var0, `var(0) correction ${correction}`);
  });
});

test('shape and indexing ops', (t) => {
  const a = arange(24, undefined, 1, { dtype: 'float32' }).reshape([2, 3, 4]);
  t.deepEqual(a.permute([2, 0, 1]).shape, [4, 2, 3]);
  t.deepEqual(a.transpose(0, 2).shape, [4, 3, 2]);
  t.deepEqual(a.slice(2, 1, 3).shape, [2, 3, 2]);
  t.deepEqual(a.slice(1, -1).select(0, 1).toArray(), [20, 21, 22, 23]);
  t.deepEqual(a.flatten(1).shape, [2, 12]);
  t.deepEqual(a.unsqueeze(0).squeeze(0).shape, [2, 3, 4]);
  t.deepEqual(a.indexSelect(1, tensor([2, 0], { dtype: 'int64' })).select(0, 0).select(1, 0).toArray(), [8, 0]);
  t.deepEqual(tensor([[1, 2], [3, 4]]).gather(1, tensor([[1], [0]], { dtype: 'int64' })).toArray(), [2, 3]);
  t.deepEqual(cat([ones([1, 2]), zeros([2, 2])], 0).shape, [3, 2]);
  t.deepEqual(stack([ones([2]), zeros([2])], 1).toArray(), [1, 0, 1, 0]);
  t.deepEqual(a.split(1, 1).length, 3);
  t.deepEqual(a.chunk(2, 2)[1]!.shape, [2, 3, 2]);
  t.deepEqual(tensor([1, 2, 3]).flip(0).toArray(), [3, 2, 1]);
  t.deepEqual(tensor([1, 2]).expand([2, 2]).toArray(), [1, 2, 1, 2]);
  t.deepEqual(where(tensor([1, 0, 1]).bool(), 5, tensor([7, 8, 9])).toArray(), [5, 8, 5]);
  t.deepEqual(F.oneHot(tensor([2, 0], { dtype: 'int64' }), 3).toArray(), [0, 0, 1, 1, 0, 0]);
  const z = zeros([3]);
  z.indexPut_(tensor([0, 2], { dtype: 'int64' }), 4);
  t.deepEqual(z.toArray(), [4, 0, 4]);
});

test('linear algebra and nn functionals', (t) => {
  const a = tensor([[1, 2], [3, 4]]);
  t.deepEqual(a.matmul(eye(2)).toArray(), [1, 2, 3, 4]);
  t.deepEqual(einsum('ij,jk->ik', a, a).toArray(), [7, 10, 15, 22]);
  const [l] = eigh(tensor([[2, 0], [0, 3]], { dtype: 'float64' }));
  t.deepEqual(l.toArray(), [2, 3]);
  const x = ones([1, 1, 4, 4]);
  const w = ones([2, 1, 3, 3]);
  const y = F.conv2d(x, w, null, { padding: 1 });
  t.deepEqual(y.shape, [1, 2, 4, 4]);
  t.is(y.select(1, 0).select(1, 1).select(1, 1).item(), 9);
  t.deepEqual(F.interpolate(x, { size: [8, 8], mode: 'bilinear', alignCorners: false }).shape, [1, 1, 8, 8]);
  t.deepEqual(F.pad(x, [2, 2, 2, 2]).shape, [1, 1, 8, 8]);
  const g = F.groupNorm(tensor([[[[1]], [[3]]]]), 1);
  t.true(close(g.toArray(), [-1, 1], 1e-4));
  t.true(close(tensor([[1, 1]]).softmax(1).toArray(), [0.5, 0.5]));
  t.is(F.avgPool2d(x, 2).shape[2], 2);
});

test('tensors report shape/dtype/device and print', (t) => {
  const x = tensor([1, 2]);
  t.is(x.device, 'cpu');
  t.is(x.dtype, 'float32');
  t.is(x.ndim, 1);
  t.is(x.numel, 2);
  t.is(String(x), 'Tensor(shape=[2], dtype=float32, device=cpu, values=[1, 2])');
  tidy(() => {
    const h = x.half();
    t.is(h.dtype, 'float16');
    t.is((h.data() as Uint16Array)[0], 0x3c00);
    t.deepEqual(h.toFloat32Array().length, 2);
  });
});
