// Where in the generator's weights the DM and regression gradients meet: for one checkpoint of a
// fmnist-budget run (EDM teacher), the two gradients on 64 probe pairs (levels drawn as in training),
// their overall cosine and norm ratio, and the parameters that carry most of their inner product, with
// each parameter's own cosine; plus the mean level of G's output and of the teacher's on the probe.
//
//   npx tsx scripts/experiments/dm-layers.ts runs/budget/dmd-1/run/checkpoints/checkpoint-00000150.safetensors [--lambda-reg 0.25]
import { DMDTrainer, noGrad, autograd, randint, randn, Generator, type Tensor } from '../../src/index.js';
import { CheckpointStore } from '../../src/train/checkpoints.js';
import { EDMScoreModel } from '../../src/dmd/models/edm.js';
import { dmGradient, dmSurrogateLoss } from '../../src/dmd/losses.js';
import { regressionLoss } from '../../src/dmd/regression/losses.js';

const argv = process.argv.slice(2);
const file = argv[0];
const i = argv.indexOf('--lambda-reg');
const lambdaReg = i >= 0 ? Number(argv[i + 1]) : 0.25;
if (!file) {
  console.error('usage: dm-layers.ts CHECKPOINT [--lambda-reg 0.25]');
  process.exit(2);
}
const tr = await DMDTrainer.create({ pairs: 'auto', fakeUpdatesPerGen: 1, out: '/tmp/dm-layers', steps: 1e9, device: 'cpu', finalEval: 0, emaDecay: 0.99 }, () => {});
const ck = CheckpointStore.load<{ values?: Record<string, unknown> }>(file);
tr.state.restore(ck);
for (const t of ck.tensors.values()) t.dispose();
if (!(tr.G instanceof EDMScoreModel)) throw new Error('an EDM teacher is needed');
const names = [...tr.G.net.namedParameters().keys()];
const params = tr.generator.parameters();
const rng = Generator.create('cpu', 1234);
const pb = tr.regression!.pairs.batch(64, Generator.create('cpu', 1234), 'cpu');
const cond = tr.G.conditionsOf(pb.index);
const x = tr.generator.forward(pb.z, cond);
const critic = tr.critic!;
const T = tr.schedule.numLevels;
const tIndex = randint(Math.floor(0.02 * T), Math.floor(0.98 * T) + 1, [64], { generator: rng });
const noise = randn(x.shape, { generator: rng });
const g = noGrad(() => {
  const { noisy, level } = tr.schedule.addNoise(x.detach(), tIndex, noise);
  return dmGradient(x, critic.realScore(noisy, level, cond), critic.fakeScore!(noisy, level, cond));
});
const gd = autograd.grad(dmSurrogateLoss(x, g), params, { retainGraph: true, allowUnused: true });
const gr = autograd.grad(regressionLoss('pseudo-huber', x, pb.y).mul(lambdaReg), params, { allowUnused: true });
const sum = (t: Tensor | null | undefined) => (t ? t.sum().item() : 0);
const rows = params.map((_, k) => ({ name: names[k] ?? String(k), dot: sum(gd[k]?.mul(gr[k]!)), nd: sum(gd[k]?.square()), nr: sum(gr[k]?.square()) }));
const tot = rows.reduce((a, r) => ({ dot: a.dot + r.dot, nd: a.nd + r.nd, nr: a.nr + r.nr }), { dot: 0, nd: 0, nr: 0 });
console.log(`weights: cosine ${(tot.dot / Math.sqrt(tot.nd * tot.nr)).toFixed(3)}, |DM| / |regression| ${Math.sqrt(tot.nd / tot.nr).toFixed(3)}`);
console.log('parameters carrying most of the inner product (share of |DM|^2, of |regression|^2, own cosine):');
for (const r of [...rows].sort((a, b) => Math.abs(b.dot) - Math.abs(a.dot)).slice(0, 8))
  console.log(`  ${r.name.padEnd(36)} ${(r.nd / tot.nd).toFixed(3)} ${(r.nr / tot.nr).toFixed(3)} ${(r.dot / Math.sqrt(r.nd * r.nr)).toFixed(3)}`);
console.log(`mean level of the probe: G's output ${x.mean().item().toFixed(4)}, the teacher's ODE output ${pb.y.mean().item().toFixed(4)}`);
tr.dispose();
