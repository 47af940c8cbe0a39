// The bundled assets: the default Fashion-MNIST teacher makes recognisable class-conditional images
// (the bundled evaluation classifier recognises the requested classes), the text-to-image teacher draws
// the class of phrasings it never saw, and the files load.
import test from 'ava';
import { defaultTeacherPath, loadEDM, sampleEDM, randn, F, arange, noGrad, FeatureClassifier, Generator, tidy } from '../../src/index.js';
import { defaultClassifierPath } from '../../src/metrics/default-classifier.js';
import { readSafetensorsHeader } from '../../src/io/safetensors.js';
import { StableDiffusion } from '../../src/sd/pipeline.js';
import { readPromptRecords } from '../../src/sd/prompts.js';
import { BUNDLED_T2I_TEACHER_URL } from '../../src/sd/bundled-teacher.js';
import { fileURLToPath } from 'node:url';

test('the bundled teacher samples the requested classes with CFG w=2 (checked by the bundled classifier)', (t) => {
  const teacher = loadEDM(defaultTeacherPath());
  t.is(teacher.config.model_type, 'SongUNet');
  t.deepEqual([teacher.config.img_resolution, teacher.config.img_channels, teacher.config.label_dim], [32, 1, 10]);
  const cls = FeatureClassifier.load(defaultClassifierPath());
  t.is(cls.spec.name, 'fmnist');
  const n = 20;
  const classes = arange(0, n).remainder(10);
  const acc = noGrad(() => tidy(() => {
    const x = sampleEDM(teacher, randn([n, 1, 32, 32], { generator: Generator.create('cpu', 0) }), F.oneHot(classes, 10), { numSteps: 18, guidance: 2 }).x.to('float32').clamp(-1, 1);
    return cls.logits(x).argmax(1).eq(classes).to('float32').mean().item();
  }));
  t.log(`classifier accuracy on 20 teacher samples: ${acc}`);
  t.true(acc >= 0.7, `accuracy ${acc}`);
  teacher.dispose();
  cls.dispose();
});

test('the bundled text-to-image teacher draws the class its held-out phrasing names (DDIM 10, guidance 3, checked by the bundled classifier)', (t) => {
  const file = fileURLToPath(BUNDLED_T2I_TEACHER_URL);
  t.is(readSafetensorsHeader(file).metadata.text_encoder, 'trained');
  const sd = StableDiffusion.load(file);
  t.deepEqual([sd.config.vae.ddconfig.in_channels, sd.config.vae.ddconfig.resolution], [1, 32]);
  const cls = FeatureClassifier.load(defaultClassifierPath());
  const held = readPromptRecords(fileURLToPath(new URL('../../assets/fmnist-prompts-heldout.jsonl', import.meta.url)));
  const acc = noGrad(() => tidy(() => {
    const x = sd.sample(held.map((r) => r.text), { steps: 10, guidance: 3, seed: 0 }).clamp(-1, 1);
    const pred = Array.from(cls.logits(x).argmax(1).toFloat64Array());
    return pred.filter((p, i) => p === held[i]!.class).length / held.length;
  }));
  t.log(`classifier accuracy on ${held.length} samples of held-out phrasings: ${acc}`);
  t.true(acc >= 0.7, `accuracy ${acc}`);
  sd.dispose();
  cls.dispose();
});
