// yargs through its CommonJS build: that build lays out --help with cliui + wrap-ansi, which wraps on
// word boundaries; the ES-module build cuts lines at the column width in the middle of words.
import { createRequire } from 'node:module';
import type yargsFactory from 'yargs';
import type * as helpers from 'yargs/helpers';

const require = createRequire(import.meta.url);
export const yargs = require('yargs') as typeof yargsFactory;
export const hideBin = (require('yargs/helpers') as typeof helpers).hideBin;
