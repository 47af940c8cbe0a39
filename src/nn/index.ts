export { Module, type LoadStateOptions } from './module.js';
export { AdamW, type AdamWOptions, type AdamWState } from './optim.js';
export { warmup, edmRampup, type Schedule } from './schedule.js';
export { EMA, edmEmaBeta } from './ema.js';
export * as F from './functional.js';
