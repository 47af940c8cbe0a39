// The bundled assets: the default Fashion-MNIST teacher makes recognisable class-conditional images
// (the bundled evaluation classifier recognises the requested classes), and both files load.
import test from 'ava';
import { defaultTeacherPath, loadEDM, sampleEDM, randn, F, arange, noGrad, FeatureClassifier, Generator, tidy } from '../../src/index.js';
import { defaultClassifierPath } from '../../src/metrics/default-classifier.js';

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
