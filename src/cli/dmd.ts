#!/usr/bin/env node
// dmd: teacher training, ODE pairs, sampling, evaluation and the evaluation classifier.
import { main } from './common.js';
import { teacherCommand } from './commands/teacher.js';
import { autoencoderCommand } from './commands/autoencoder.js';
import { latentsCommand } from './commands/latents.js';
import { pairsCommand } from './commands/pairs.js';
import { sampleCommand } from './commands/sample.js';
import { evalCommand, classifierCommand } from './commands/eval.js';
import { reportCommand } from './commands/report.js';
import { serveCommand } from './commands/serve.js';

await main({ name: 'dmd', commands: [teacherCommand, autoencoderCommand, pairsCommand, latentsCommand, sampleCommand, evalCommand, classifierCommand, reportCommand, serveCommand] });
