// Generators: seeding, PyTorch-identical streams on the CPU, state save/restore.
import test from 'ava';
import { Generator, manualSeed, randn, rand, randint, randperm, tensor, bernoulli } from '../../src/index.js';

test('manualSeed(42) gives the same normal stream as torch.manual_seed(42)', (t) => {
  manualSeed(42);
  const got = randn([3]).toArray();
  // torch.manual_seed(42); torch.randn(3)
  const want = [0.33669036626815796, 0.12880940735340118, 0.23446236550807953];
  t.true(got.every((v, i) => Math.abs(v - want[i]!) < 1e-7), String(got));
});

test('a generator state restores the exact stream', (t) => {
  const g = Generator.create('cpu', 7);
  randn([5], { generator: g });
  const state = g.getState();
  const a = rand([4], { generator: g }).toArray();
  const b = randint(0, 1000, [4], { generator: g }).toArray();
  g.setState(state);
  t.deepEqual(rand([4], { generator: g }).toArray(), a);
  t.deepEqual(randint(0, 1000, [4], { generator: g }).toArray(), b);
  t.is(state.dtype, 'uint8');
});

test('separate generators are independent; same seed, same numbers', (t) => {
  const g1 = Generator.create('cpu', 3);
  const g2 = Generator.create('cpu', 3);
  randn([10]);
  t.deepEqual(randn([3], { generator: g1 }).toArray(), randn([3], { generator: g2 }).toArray());
  t.deepEqual(randperm(5, { generator: g1.seed(1) }).toArray(), randperm(5, { generator: g2.seed(1) }).toArray());
});

test('random values have the right ranges and moments', (t) => {
  const g = Generator.create('cpu', 0);
  const u = rand([10000], { generator: g });
  t.true(u.min().item() >= 0 && u.max().item() < 1);
  t.true(Math.abs(u.mean().item() - 0.5) < 0.02);
  const n = randn([10000], { generator: g });
  t.true(Math.abs(n.std().item() - 1) < 0.03);
  const i = randint(20, 981, [5000], { generator: g });
  t.true(i.min().item() >= 20 && i.max().item() <= 980);
  t.is(i.dtype, 'int64');
  t.true(Math.abs(bernoulli(tensor([0.3]).expand([5000]).contiguous(), { generator: g }).mean().item() - 0.3) < 0.03);
  const filled = randn([3]).normal_(5, 0, g);
  t.deepEqual(filled.toArray(), [5, 5, 5]);
});
