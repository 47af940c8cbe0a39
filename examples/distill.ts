// A scripted DMD run with the TypeScript API: distill a teacher for a few iterations, then make
// one-step samples. CI runs it with DMD_EXAMPLE_STEPS=4 on a small random teacher.
//   npx tsx examples/distill.ts [teacher.safetensors]
import { DMDTrainer, generate, randn, tensor, noGrad, loadEDM, saveGrid, F } from 'dmd-torch';

const teacher = process.argv[2]; // default: the bundled Fashion-MNIST teacher
const steps = Number(process.env.DMD_EXAMPLE_STEPS ?? 200);
const trainer = await DMDTrainer.create({ teacher, out: 'runs/example', steps, batchSize: 16, fakeUpdatesPerGen: 5, sampleEvery: 100, resume: true, finalEval: 0 });
const { generator } = await trainer.train();
trainer.dispose();

if (generator) {
  const G = loadEDM(generator);
  const labels = F.oneHot(tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { dtype: 'int64' }), G.labelDim);
  const images = noGrad(() => generate(G, randn([10, G.imgChannels, G.imgResolution, G.imgResolution]), labels));
  saveGrid(images.clamp(-1, 1), 'runs/example/one-step.png', 10);
  console.log('one-step samples: runs/example/one-step.png');
  G.dispose();
}
