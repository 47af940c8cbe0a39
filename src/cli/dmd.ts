#!/usr/bin/env node
// dmd: teacher training, ODE pairs, sampling, evaluation and the evaluation classifier.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { reportAndExit } from './common.js';
import { teacherCommand } from './commands/teacher.js';
import { pairsCommand } from './commands/pairs.js';
import { sampleCommand } from './commands/sample.js';
import { evalCommand, classifierCommand } from './commands/eval.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('dmd')
    .command(teacherCommand)
    .command(pairsCommand)
    .command(sampleCommand)
    .command(evalCommand)
    .command(classifierCommand)
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .fail((msg, err) => reportAndExit(err ?? new Error(msg)))
    .help()
    .parseAsync();
} catch (e) {
  reportAndExit(e);
}
