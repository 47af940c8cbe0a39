// One process of a multi-process test (started with torchrun's environment by test/native/distributed.test.ts):
//   tsx dist-worker.ts collectives OUT_DIR       (collectives, then the job joined a second time)
//   tsx dist-worker.ts train OUT_DIR '<DMDTrainer settings as JSON>' [iterations]
// It writes OUT_DIR/rank<R>.json with what the test checks.
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Distributed } from '../../src/distributed/context.js';
import { DMDTrainer, tensor, arange, tidy } from '../../src/index.js';

const [mode, out, json, iterations] = process.argv.slice(2) as [string, string, string | undefined, string | undefined];
const rank = Number(process.env.RANK ?? 0);
const write = (v: unknown) => writeFileSync(path.join(out, `rank${rank}.json`), JSON.stringify(v));

if (mode === 'collectives') {
  const { dist } = Distributed.forCommand({ device: 'cpu', distTimeout: 30 });
  const b = tensor([rank + 1, rank + 2, rank + 3]);
  dist.allgather(tensor([0])); // a first collective: every rank has joined
  const bc = tensor([10 * (rank + 1), 0]);
  dist.broadcastModules([]);
  const g = dist.allgather(arange(0, 4).add(rank * 10));
  dist.sum(b);
  // broadcast from rank 1 through the raw group
  dist.processGroup!.broadcast([bc], 1);
  dist.barrier();
  dist.destroy();
  // joining the job again in the same process (dmd-train's --pairs auto step, then its training)
  const { dist: again } = Distributed.forCommand({ device: 'cpu', distTimeout: 30 });
  const c = tensor([rank + 100]);
  again.sum(c);
  again.barrier();
  write({ rank, size: dist.size, backend: dist.backend, sum: b.toArray(), gathered: g.map((t) => t.toArray()), broadcast: bc.toArray(), secondSum: c.toArray() });
  again.destroy();
} else if (mode === 'train') {
  const cfg = JSON.parse(json!) as Record<string, unknown>;
  const tr = new DMDTrainer(cfg, () => {});
  const digest = () =>
    Object.fromEntries(
      ([['G', tr.G], ['fake', tr.critic?.fake], ['head', tr.critic?.head], ['ema', tr.ema]] as const)
        .filter(([, m]) => m)
        .map(([k, m]) => {
          const h = createHash('sha256');
          tidy(() => { for (const [name, t] of m!.stateDict()) h.update(name).update(t.bytes()); });
          return [k, h.digest('hex')];
        }),
    );
  if (iterations) {
    tr.dist.broadcastModules([tr.G, tr.critic?.fake ?? null, tr.critic?.head ?? null, tr.ema]);
    for (let i = 0; i < Number(iterations); i++) tr.iteration();
  } else {
    await tr.train(() => {}, { progress: false });
  }
  const g = tidy(() => [...tr.G.parameters()].slice(0, 4).map((p) => Array.from(p.flatten().narrow(0, 0, Math.min(64, p.numel)).toFloat64Array())));
  write({ rank, step: tr.step, digest: digest(), gSample: g });
  tr.dispose();
}
