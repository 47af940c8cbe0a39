// NVlabs EDM network snapshots (`network-snapshot-*.pkl`, the published `edm-*.pkl`) read without
// Python: the pickle is read by the safe unpickler (io/), the network is found at `ema` (then `G_ema`,
// `net`), its class and constructor arguments come from what EDM's persistence module recorded
// (`_init_args`/`_init_kwargs`; the recorded Python source is never looked at), and its weights from
// the `_parameters`/`_buffers` of the module tree, named as state_dict() names them.
import { Tensor } from '../tensor/tensor.js';
import { dispose } from '../tensor/scope.js';
import { readPythonFile, TorchSaveError } from '../io/torchsave.js';
import { PyDict, PyObject, PySet, describe, type PyValue } from '../io/pickle.js';
import { NumpyArray } from '../io/torch-pickle.js';
import { type EDMConfig, parseEDMConfig, EDMConfigError } from './config.js';

export class SnapshotError extends Error {
  readonly code = 'ERR_CHECKPOINT';
}

/** Where the network is looked for in a snapshot dict, in this order. */
export const SNAPSHOT_KEYS = ['ema', 'G_ema', 'net'] as const;

const KNOWN = new Set([
  'img_resolution', 'img_channels', 'label_dim', 'use_fp16', 'sigma_min', 'sigma_max', 'sigma_data', 'model_type', 'augment_dim',
  'model_channels', 'channel_mult', 'channel_mult_emb', 'channel_mult_noise', 'num_blocks', 'attn_resolutions', 'dropout',
  'label_dropout', 'embedding_type', 'encoder_type', 'decoder_type', 'resample_filter',
]);
const BASELINES: Record<string, string> = {
  VPPrecond: "EDM's VP baseline preconditioning (DDPM++ trained with the VP formulation)",
  VEPrecond: "EDM's VE baseline preconditioning (NCSN++ trained with the VE formulation)",
  iDDPMPrecond: "EDM's iDDPM baseline preconditioning (ADM trained with discrete timesteps)",
};

export interface SnapshotInfo {
  /** the key the network was found under */
  key: string;
  /** the network's class (EDMPrecond) and its inner UNet's (SongUNet / DhariwalUNet) */
  className: string;
  innerClass: string | null;
  config: EDMConfig;
  parameterCount: number;
  /** the snapshot's other entries, e.g. loss_fn: EDMLoss, augment_pipe: None, dataset_kwargs: dict */
  entries: Record<string, string>;
}

/** Every tensor in a value (each once), for disposing what a reader does not keep. */
export function tensorsIn(root: PyValue): Tensor[] {
  const out: Tensor[] = [];
  const seen = new Set<object>();
  const stack: PyValue[] = [root];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Tensor) out.push(v);
    else if (Array.isArray(v)) stack.push(...v);
    else if (v instanceof PyDict) stack.push(...v.map.values());
    else if (v instanceof PySet) stack.push(...v.items);
    else if (v instanceof PyObject) stack.push(...v.args, v.state);
  }
  return out;
}

/** JSON-friendly constructor arguments: tuples -> arrays, NumPy scalars -> numbers, inf -> null (EDM's "no limit"). */
function plainArg(v: PyValue, name: string): unknown {
  if (Array.isArray(v)) return v.map((x) => plainArg(x, name));
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (v instanceof PyDict) return Object.fromEntries([...v.map].map(([k, x]) => [String(k), plainArg(x, name)]));
  if (v instanceof NumpyArray) return Array.from(v.toTensor().toFloat64Array());
  throw new SnapshotError(`constructor argument ${name} is a ${describe(v)}, which an EDM config cannot hold`);
}

function stateOf(o: PyObject, what: string): PyDict {
  const d = o.dict;
  if (!d) throw new SnapshotError(`${what} (${o.className}) has no recorded state; not a network pickled by EDM's persistence module`);
  return d;
}

/** The network's state_dict(): parameters and persistent buffers of the module tree, dot-joined names. */
function stateDict(root: PyObject, what: string): { state: Map<string, Tensor>; parameters: number } {
  const out = new Map<string, Tensor>();
  let parameters = 0;
  const visit = (m: PyObject, prefix: string, depth: number) => {
    if (depth > 64) throw new SnapshotError(`${what}: modules nested deeper than 64 levels`);
    const s = stateOf(m, `${what} module '${prefix || '<root>'}'`);
    const nonPersistent = s.get('_non_persistent_buffers_set');
    const skip = new Set(nonPersistent instanceof PySet ? nonPersistent.items.map(String) : []);
    for (const field of ['_parameters', '_buffers'] as const) {
      const d = s.get(field);
      if (d === undefined || d === null) continue;
      if (!(d instanceof PyDict)) throw new SnapshotError(`${what}: ${field} of '${prefix || '<root>'}' is a ${describe(d)}`);
      for (const [k, t] of d.map) {
        if (t === null || (field === '_buffers' && skip.has(String(k)))) continue;
        if (!(t instanceof Tensor)) throw new SnapshotError(`${what}: ${prefix}${String(k)} is a ${describe(t)}, not a tensor`);
        out.set(`${prefix}${String(k)}`, t);
        if (field === '_parameters') parameters += t.numel;
      }
    }
    const mods = s.get('_modules');
    if (mods instanceof PyDict)
      for (const [k, child] of mods.map) {
        if (child === null) continue;
        if (!(child instanceof PyObject)) throw new SnapshotError(`${what}: submodule ${prefix}${String(k)} is a ${describe(child)}`);
        visit(child, `${prefix}${String(k)}.`, depth + 1);
      }
  };
  visit(root, '', 0);
  return { state: out, parameters };
}

function configOf(net: PyObject, what: string): { config: EDMConfig; innerClass: string | null } {
  const s = stateOf(net, what);
  const args = s.get('_init_args');
  const kwargs = s.get('_init_kwargs');
  if (!(kwargs instanceof PyDict)) throw new SnapshotError(`${what}: the network has no recorded constructor arguments (_init_kwargs); it was not pickled by EDM's persistence module`);
  if (Array.isArray(args) && args.length) throw new SnapshotError(`${what}: the network was constructed with positional arguments; EDM constructs it with keywords only`);
  const raw: Record<string, unknown> = {};
  for (const [k, v] of kwargs.map) raw[String(k)] = plainArg(v, String(k));
  const unknown = Object.keys(raw).filter((k) => !KNOWN.has(k)).sort();
  if (unknown.length) throw new SnapshotError(`${what}: unknown constructor argument(s) ${unknown.join(', ')}; EDMPrecond with SongUNet/DhariwalUNet arguments is what is read`);
  const mods = s.get('_modules');
  const model = mods instanceof PyDict ? mods.get('model') : undefined;
  try {
    return { config: parseEDMConfig(raw, `${what}: constructor arguments`), innerClass: model instanceof PyObject ? model.className : null };
  } catch (e) {
    if (e instanceof EDMConfigError) throw new SnapshotError(e.message);
    throw e;
  }
}

function findNetwork(root: PyValue, path: string): { key: string; net: PyObject; entries: Record<string, string> } {
  if (!(root instanceof PyDict))
    throw new SnapshotError(`${path}: holds a ${describe(root)}, not an EDM snapshot dict (expected keys ${SNAPSHOT_KEYS.join(' / ')})`);
  const entries: Record<string, string> = {};
  for (const [k, v] of root.map) entries[String(k)] = v instanceof PyObject ? v.className : describe(v);
  const key = SNAPSHOT_KEYS.find((k) => root.has(k));
  if (!key) throw new SnapshotError(`${path}: no network under ${SNAPSHOT_KEYS.join(', ')} (the file holds ${Object.keys(entries).join(', ') || 'nothing'}); not an EDM network snapshot`);
  const net = root.get(key)!;
  if (!(net instanceof PyObject)) throw new SnapshotError(`${path}: '${key}' is a ${describe(net)}, not a network`);
  const cls = net.className.split('.').pop()!;
  if (BASELINES[cls]) throw new SnapshotError(`${path}: '${key}' is a ${cls}, ${BASELINES[cls]}; dmd-torch distils EDMPrecond networks (EDM's own preconditioning) only`);
  if (cls !== 'EDMPrecond') throw new SnapshotError(`${path}: '${key}' is a ${net.className}, not an EDMPrecond network (a snapshot of another architecture?)`);
  delete entries[key];
  return { key, net, entries };
}

export interface Snapshot {
  config: EDMConfig;
  state: Map<string, Tensor>;
  info: SnapshotInfo;
}

/** Reads an EDM snapshot: the network's config and state dict (the caller disposes the tensors), and what else the file holds. */
export function readEDMSnapshot(path: string): Snapshot {
  let root: PyValue;
  try {
    root = readPythonFile(path);
  } catch (e) {
    if (e instanceof TorchSaveError) throw new SnapshotError(e.message);
    throw e;
  }
  const all = tensorsIn(root);
  try {
    const { key, net, entries } = findNetwork(root, path);
    const { config, innerClass } = configOf(net, `${path}: '${key}'`);
    const { state, parameters: parameterCount } = stateDict(net, `${path}: '${key}'`);
    const keep = new Set(state.values());
    dispose(all.filter((t) => !keep.has(t)));
    return { config, state, info: { key, className: net.className, innerClass, config, parameterCount, entries } };
  } catch (e) {
    dispose(all);
    throw e;
  }
}
