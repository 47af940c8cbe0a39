// npm run bench:sample — images/s of EDM's Heun sampler (18 steps, NFE 35) and of one network call,
// on the CPU and on CUDA when present. One line per figure.
import { EDMNetwork, cuda, randn, tidy, noGrad, sampleEDM, getNumThreads, buildInfo, F, type Device } from '../src/index.js';
import { PRESETS, type PresetName } from '../src/edm/presets.js';

const plan: [PresetName, Device, number][] = [['fmnist-small', 'cpu', 16], ['fmnist', 'cpu', 16]];
if (cuda.isAvailable()) plan.push(['fmnist', 'cuda', 512], ['cifar10-ddpmpp', 'cuda', 256]);
const sync = (d: Device) => { if (d !== 'cpu') cuda.synchronize(); };
console.log(`bench:sample libtorch ${buildInfo().torchVersion}, ${getNumThreads()} CPU threads${cuda.isAvailable() ? ', CUDA' : ', no CUDA'}`);
for (const [name, device, batch] of plan) {
  const net = EDMNetwork.create(PRESETS[name], { seed: 0, device });
  net.eval();
  const c = net.config;
  const z = randn([batch, c.img_channels, c.img_resolution, c.img_resolution], { device }).keep();
  const labels = F.cycledOneHot(batch, c.label_dim, device)?.keep() ?? null;
  const once = () => noGrad(() => tidy(() => { net.forward(z.mul(10), 10, { labels }); }));
  once();
  sync(device);
  let t0 = performance.now();
  const reps = device === 'cpu' ? 3 : 20;
  for (let i = 0; i < reps; i++) once();
  sync(device);
  const call = (performance.now() - t0) / 1000 / reps;
  t0 = performance.now();
  noGrad(() => tidy(() => { sampleEDM(net, z, labels, { numSteps: 18 }); }));
  sync(device);
  const heun = (performance.now() - t0) / 1000;
  console.log(`sample ${name} ${device} batch=${batch}: one network call ${(batch / call).toFixed(1)} img/s; Heun 18 steps (NFE 35) ${(batch / heun).toFixed(2)} img/s`);
  net.dispose();
  z.dispose();
  labels?.dispose();
}
