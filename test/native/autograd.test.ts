// Autograd: requires_grad, backward with and without a gradient, accumulation, noGrad,
// autograd.grad (with create_graph for second derivatives).
import test from 'ava';
import { tensor, noGrad, enableGrad, autograd, isGradEnabled, ones } from '../../src/index.js';

test('backward accumulates d(sum x^2)/dx = 2x', (t) => {
  const x = tensor([1, -2, 3]).requiresGrad_();
  x.mul(x).sum().backward();
  t.deepEqual(x.grad!.toArray(), [2, -4, 6]);
  x.mul(x).sum().backward();
  t.deepEqual(x.grad!.toArray(), [4, -8, 12]);
  x.grad = null;
  t.is(x.grad, null);
});

test('backward with an explicit gradient, retainGraph', (t) => {
  const x = tensor([1, 2]).requiresGrad_();
  const y = x.mul(3);
  y.backward(tensor([1, 10]), { retainGraph: true });
  t.deepEqual(x.grad!.toArray(), [3, 30]);
  y.backward(tensor([1, 1]));
  t.deepEqual(x.grad!.toArray(), [6, 33]);
});

test('noGrad stops recording; enableGrad restores inside it', (t) => {
  const x = tensor([1]).requiresGrad_();
  const y = noGrad(() => x.mul(2));
  t.false(y.requiresGrad);
  t.true(isGradEnabled());
  const z = noGrad(() => enableGrad(() => x.mul(2)));
  t.true(z.requiresGrad);
  t.throws(() => y.sum().backward(), { message: /does not require grad/ });
});

test('detach cuts the graph; leaves and non-leaves', (t) => {
  const x = tensor([1, 2]).requiresGrad_();
  const y = x.mul(2);
  t.true(x.isLeaf);
  t.false(y.isLeaf);
  t.false(y.detach().requiresGrad);
});

test('autograd.grad, including a second derivative via createGraph', (t) => {
  const x = tensor([2]).requiresGrad_();
  const y = x.pow(3).sum();
  const [g] = autograd.grad(y, x, { createGraph: true });
  t.is(g!.item(), 12);
  const [g2] = autograd.grad(g!.sum(), x);
  t.is(g2!.item(), 12);
  const u = tensor([1]).requiresGrad_();
  const r = autograd.grad(x.mul(2).sum(), [x, u], { allowUnused: true });
  t.is(r[1], null);
});

test('backward of a non-scalar without a gradient says what to do', (t) => {
  const x = ones([3]).requiresGrad_();
  t.throws(() => x.mul(2).backward(), { instanceOf: TypeError, message: /pass grad/ });
});
