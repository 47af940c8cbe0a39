import { command } from '../common.js';
import { EvalConfigSchema, evaluate } from '../../metrics/evaluate.js';
import { ClassifierConfigSchema, trainClassifier } from '../../metrics/classifier.js';
import { reportHooks } from '../../report/report.js';

export const evalCommand = command({
  name: 'eval',
  describe: 'generate class-balanced samples and report FD-<classifier>, FID (with an Inception TorchScript), class balance',
  schema: EvalConfigSchema,
  async run(cfg) {
    await evaluate(cfg);
  },
});

export const classifierCommand = command({
  name: 'classifier',
  describe: 'train the evaluation classifier whose features give FD-<name> (an offline stand-in for Inception)',
  schema: ClassifierConfigSchema,
  async run(cfg) {
    const r = await trainClassifier(cfg, console.log, { hooks: reportHooks(cfg.out) });
    if (r.status === 'interrupted') console.log('stopped; continue with --resume');
  },
});
