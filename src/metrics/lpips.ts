// LPIPS (v0.1, VGG16 backbone) as DMD's regression loss: native network, weights from the files their
// authors publish (torchvision's VGG16 `features.*` and the lpips package's `lin{k}.model.1.weight`, both
// legacy torch.save files, read without Python) or the single safetensors file convert-lpips.py writes.
import { N } from '../native.js';
import { Module } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Device } from '../tensor/device.js';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { readSafetensors } from '../io/safetensors.js';
import { readTorchSave, torchFileKind } from '../io/torchsave.js';
import { dispose } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';

export class LPIPSError extends Error {
  readonly code = 'ERR_LPIPS';
}

export interface LPIPSOptions {
  /** bilinear resize to resize x resize before the network (DMD used 224); 0 = none */
  resize?: number;
  dtype?: 'float32' | 'bfloat16' | 'float16';
}

export class LPIPS extends Module {
  private constructor() {
    super(N.lpipsCreate());
  }

  /** An LPIPS network with zero weights (fill with loadStateDict). */
  static empty(): LPIPS {
    return new LPIPS();
  }

  /**
   * Loads LPIPS weights, frozen, in eval mode: the original files as their authors publish them (torchvision's
   * VGG16 `vgg16-397923af.pth` and the lpips package's v0.1 `vgg.pth`: a directory holding both, or the
   * two paths joined by a comma), or the single .safetensors that scripts/convert-lpips.py writes.
   */
  static load(source: string, o: { device?: Device } = {}): LPIPS {
    const m = new LPIPS();
    let tensors: Map<string, Tensor>;
    try {
      tensors = lpipsWeights(source);
    } catch (e) {
      m.dispose();
      throw e;
    }
    try {
      const missing = m.stateNames().filter((k) => !tensors.has(k));
      if (missing.length) throw new LPIPSError(`${source}: not LPIPS VGG weights (missing ${missing.slice(0, 3).join(', ')}); pass torchvision's vgg16 .pth and LPIPS v0.1 vgg.pth, or a file from scripts/convert-lpips.py`);
      const names = new Set(m.stateNames());
      noGrad(() => m.loadStateDict(new Map([...tensors].filter(([k]) => names.has(k)))));
    } catch (e) {
      m.dispose();
      throw e;
    } finally {
      dispose(tensors);
    }
    m.eval().requiresGrad_(false);
    if (o.device && o.device !== 'cpu') m.to({ device: o.device });
    return m;
  }

  /** Per-image distances [N] between x0 and x1 (images in [-1, 1], [N, 3, H, W]; 1-channel inputs are repeated). Differentiable. */
  distance(x0: Tensor, x1: Tensor, o: LPIPSOptions = {}): Tensor {
    const rgb = (x: Tensor) => (x.shape[1] === 1 ? x.repeat([1, 3, 1, 1]) : x);
    const a = rgb(x0);
    const b = rgb(x1);
    try {
      return new Tensor(N.lpipsForward(this.handle, a.handle, b.handle, o.resize ?? 0, o.dtype ? dtypeCode(o.dtype) : null));
    } finally {
      if (a !== x0) a.dispose();
      if (b !== x1) b.dispose();
    }
  }
}

/** The tensors of a state dict read from a torch.save file (a `module.` prefix, as DataParallel writes, removed). */
function stateDictOf(file: string): Map<string, Tensor> {
  let v;
  try {
    v = readTorchSave(file);
  } catch (e) {
    throw new LPIPSError(`LPIPS weights: ${e instanceof Error ? e.message : String(e)}`);
  }
  const out = new Map<string, Tensor>();
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Tensor || v instanceof Uint8Array || v instanceof Map) {
    dispose(v);
    throw new LPIPSError(`${file}: not a state dict (expected torchvision's vgg16 .pth or LPIPS's vgg.pth)`);
  }
  for (const [k, t] of Object.entries(v)) if (t instanceof Tensor) out.set(k.startsWith('module.') ? k.slice(7) : k, t);
  return out;
}

/** LPIPS weights by key, from a .safetensors file, a directory of the two .pth files, or "vgg16.pth,vgg.pth". */
function lpipsWeights(source: string): Map<string, Tensor> {
  let files: string[];
  if (source.includes(',')) files = source.split(',').map((f) => f.trim()).filter(Boolean);
  else if (existsSync(source) && statSync(source).isDirectory()) {
    files = readdirSync(source).filter((f) => /\.(pth|pt)$/i.test(f)).map((f) => path.join(source, f));
    if (!files.length) throw new LPIPSError(`--lpips ${source}: the directory holds no .pth files (put torchvision's vgg16-397923af.pth and LPIPS v0.1 vgg.pth there)`);
  } else files = [source];
  const all = new Map<string, Tensor>();
  for (const f of files) {
    let part: Map<string, Tensor>;
    if (detectSafetensors(f)) {
      try {
        part = readSafetensors(f).tensors;
      } catch (e) {
        throw new LPIPSError(`LPIPS weights: ${e instanceof Error ? e.message : String(e)}`);
      }
    } else part = stateDictOf(f);
    for (const [k, t] of part) {
      if (k.startsWith('classifier.') || all.has(k)) t.dispose();
      else all.set(k, t);
    }
  }
  return all;
}

function detectSafetensors(file: string): boolean {
  if (!existsSync(file)) throw new LPIPSError(`LPIPS weights: ${file}: file not found`);
  if (file.endsWith('.safetensors')) return true;
  try {
    return torchFileKind(file) === null;
  } catch {
    return false;
  }
}
