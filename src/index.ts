// dmd-torch: one-step image generation by Distribution Matching Distillation of EDM teachers, in
// TypeScript over libtorch.
export * from './tensor/index.js';
export { Module, AdamW, EMA, edmEmaBeta, warmup, edmRampup, F } from './nn/index.js';
export type { AdamWOptions, AdamWState, Schedule, LoadStateOptions } from './nn/index.js';
export { readSafetensors, readSafetensorsHeader, writeSafetensors, SafetensorsError } from './io/safetensors.js';
export { readTorchSave, writeTorchSave, TorchSaveError, type PickleValue } from './io/torchsave.js';
export { EDMNetwork, type ExecutionDType, type ForwardOptions } from './edm/network.js';
export { parseEDMConfig, EDMConfigSchema, EDMConfigError, type EDMConfig, type EDMConfigInput } from './edm/config.js';
export { loadEDM, saveEDM, readEDMConfig, detectFormat, CheckpointError } from './edm/checkpoint.js';
