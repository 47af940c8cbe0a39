// Teacher files: `edm.pt` (a torch.save dict {config: JSON string, state_dict: {key: tensor}}, zip or
// legacy format), `.safetensors` (the same tensors, config JSON in __metadata__.config), and NVlabs EDM
// snapshots (`.pkl`, read without Python: edm/snapshot.ts). Everything is validated before use; errors
// name the file, the key or the field, and the fix.
import { openSync, readSync, closeSync, statSync, lstatSync } from 'node:fs';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, SafetensorsError } from '../io/safetensors.js';
import { readTorchSave, writeTorchSave, torchFileKind, type PickleValue, type TorchValue, TorchSaveError } from '../io/torchsave.js';
import { Tensor } from '../tensor/tensor.js';
import { isFloating } from '../tensor/dtype.js';
import { foreach } from '../tensor/foreach.js';
import { type Device } from '../tensor/device.js';
import { noGrad } from '../tensor/autograd.js';
import { dispose, tidy } from '../tensor/scope.js';
import { type EDMConfig, parseEDMConfig, configJSON } from './config.js';
import { EDMNetwork } from './network.js';
import { readEDMSnapshot, SnapshotError, type SnapshotInfo } from './snapshot.js';

export class CheckpointError extends Error {
  readonly code = 'ERR_CHECKPOINT';
}

export type TeacherFormat = 'pt' | 'safetensors' | 'pkl';

/** Detects the format from the first bytes (zip or legacy stream = torch.save, another pickle = EDM snapshot, else safetensors), not the extension. */
export function detectFormat(path: string): TeacherFormat {
  let st;
  try {
    st = statSync(path);
  } catch {
    let dangling = false;
    try {
      dangling = lstatSync(path).isSymbolicLink();
    } catch {
      /* nothing there at all */
    }
    throw new CheckpointError(
      `${path}: ${dangling ? 'is a dangling symbolic link' : 'file not found'} (pass an EDM teacher: an NVlabs EDM snapshot .pkl, a .pt or .safetensors written by dmd teacher or scripts/convert-edm.py)`,
    );
  }
  if (st.isDirectory()) throw new CheckpointError(`${path}: is a directory, expected a teacher file (.pkl, .pt or .safetensors)`);
  if (!st.isFile()) throw new CheckpointError(`${path}: is not a regular file (a device, pipe or socket)`);
  if (st.size < 8) throw new CheckpointError(`${path}: only ${st.size} bytes, too short to be a teacher file (truncated?)`);
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(9);
  try {
    readSync(fd, head, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return 'pt'; // 'PK': torch.save zip archive
  // safetensors: an 8-byte little-endian header length, then the JSON header's '{' (the length's low
  // byte may be anything, 0x80 included)
  if (head[8] === 0x7b) return 'safetensors';
  // a pickle (the PROTO opcode and a protocol number): torch.save's legacy stream, or an EDM snapshot
  if (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return torchFileKind(path) === 'legacy' ? 'pt' : 'pkl';
  if (/\.(pt|pth|pkl)$/i.test(path))
    throw new CheckpointError(`${path}: is named like a torch.save or pickle file but is neither a zip archive nor a pickle (damaged or truncated?); re-copy it, or re-create it with dmd teacher --format pt`);
  return 'safetensors';
}

interface RawTeacher {
  config: EDMConfig;
  state: Map<string, Tensor>;
  /** string entries besides the config (safetensors __metadata__, top-level strings of a .pt dict) */
  metadata: Record<string, string>;
}

function readPt(path: string): RawTeacher {
  let root: TorchValue;
  try {
    root = readTorchSave(path);
  } catch (e) {
    if (e instanceof TorchSaveError) throw new CheckpointError(e.message);
    throw e;
  }
  const fail = (msg: string): never => {
    dispose(root);
    throw new CheckpointError(`${path}: ${msg}`);
  };
  if (root === null || typeof root !== 'object' || Array.isArray(root) || root instanceof Tensor || root instanceof Map || root instanceof Uint8Array || '__class__' in root)
    return fail('expected a dict {"config": <JSON string>, "state_dict": {key: tensor}} (an EDM snapshot .pkl is read as it is)');
  const cfgRaw = root.config;
  const sd = root.state_dict;
  const values = Object.values(root);
  if (cfgRaw === undefined && values.length && values.every((v) => v instanceof Tensor))
    return fail(`holds a bare state dict (${values.length} tensors) without the EDM config; pass the EDM snapshot (.pkl) itself, or save {"config": <JSON of the EDMPrecond arguments>, "state_dict": sd}`);
  if (cfgRaw === undefined) return fail('has no "config" entry (expected {"config": <JSON string>, "state_dict": {...}})');
  if (sd === undefined) return fail('has no "state_dict" entry (expected {"config": <JSON string>, "state_dict": {...}})');
  if (sd === null || typeof sd !== 'object' || Array.isArray(sd) || sd instanceof Tensor || sd instanceof Map || sd instanceof Uint8Array || '__class__' in sd) return fail('"state_dict" must be a dict of tensors');
  const state = new Map<string, Tensor>();
  for (const [k, v] of Object.entries(sd)) {
    if (!(v instanceof Tensor)) return fail(`state_dict['${k}'] is not a tensor`);
    state.set(k, v);
  }
  let config: EDMConfig;
  try {
    config = parseEDMConfig(typeof cfgRaw === 'string' ? cfgRaw : cfgRaw, `${path}: config`);
  } catch (e) {
    dispose(root);
    throw e;
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(root)) {
    if (k !== 'state_dict' && k !== 'config' && typeof v === 'string') metadata[k] = v;
    if (k !== 'state_dict') dispose(v);
  }
  return { config, state, metadata };
}

function readPkl(path: string): RawTeacher & { snapshot: SnapshotInfo } {
  try {
    const snap = readEDMSnapshot(path);
    return { config: snap.config, state: snap.state, metadata: {}, snapshot: snap.info };
  } catch (e) {
    if (e instanceof SnapshotError) throw new CheckpointError(e.message);
    throw e;
  }
}

function readRaw(path: string, format: TeacherFormat): RawTeacher & { snapshot?: SnapshotInfo } {
  return format === 'pt' ? readPt(path) : format === 'pkl' ? readPkl(path) : readSt(path);
}

function readSt(path: string): RawTeacher {
  let file;
  try {
    file = readSafetensors(path);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
    throw e;
  }
  const cfg = file.metadata.config;
  if (cfg === undefined) {
    dispose(file.tensors);
    throw new CheckpointError(`${path}: has no __metadata__.config (the EDMPrecond arguments as JSON); write it with saveEDM or scripts/convert-edm.py`);
  }
  try {
    const { config: _c, ...metadata } = file.metadata;
    return { config: parseEDMConfig(cfg, `${path}: config`), state: file.tensors, metadata };
  } catch (e) {
    dispose(file.tensors);
    throw e;
  }
}

/** Checks a state dict against a network built from its config: keys, shapes, dtypes, finiteness. */
function validateState(path: string, net: EDMNetwork, state: Map<string, Tensor>): void {
  const expected = new Map<string, number[]>();
  for (const [k, t] of net.stateDict()) {
    expected.set(k, t.shape);
    t.dispose();
  }
  const missing = [...expected.keys()].filter((k) => !state.has(k));
  const extra = [...state.keys()].filter((k) => !expected.has(k));
  const hint = 'the config does not match the tensors (check model_type, model_channels, channel_mult, num_blocks, attn_resolutions, label_dim, augment_dim, embedding_type, encoder/decoder_type)';
  if (missing.length || extra.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`${missing.length} missing key(s): ${missing.slice(0, 3).map((k) => `'${k}'`).join(', ')}${missing.length > 3 ? ', ...' : ''}`);
    if (extra.length) parts.push(`${extra.length} unexpected key(s): ${extra.slice(0, 3).map((k) => `'${k}'`).join(', ')}${extra.length > 3 ? ', ...' : ''}`);
    throw new CheckpointError(`${path}: ${parts.join('; ')}; ${hint}`);
  }
  for (const [k, t] of state) {
    const want = expected.get(k)!;
    const got = t.shape;
    if (got.length !== want.length || got.some((d, i) => d !== want[i]))
      throw new CheckpointError(`${path}: '${k}' has shape [${got.join(', ')}] but the config implies [${want.join(', ')}]; ${hint}`);
    if (!isFloating(t.dtype)) throw new CheckpointError(`${path}: '${k}' has dtype ${t.dtype}; EDM weights must be floating point`);
  }
  const tensors = [...state.values()];
  if (!foreach.allFinite(tensors)) {
    const bad = [...state.entries()].find(([, t]) => !t.isfinite().all().item());
    throw new CheckpointError(`${path}: '${bad?.[0] ?? '?'}' contains NaN or Inf values; the file is corrupt or the training diverged`);
  }
}

export interface LoadOptions {
  device?: Device;
}

/** Loads an EDM teacher (.pkl snapshot, .pt or .safetensors): config validated, weights checked, network in eval mode. */
export function loadEDM(path: string, o: LoadOptions = {}): EDMNetwork {
  const raw = readRaw(path, detectFormat(path));
  let net: EDMNetwork | null = null;
  try {
    net = EDMNetwork.create(raw.config);
    validateState(path, net, raw.state);
    noGrad(() => net!.loadStateDict(raw.state));
    if (o.device && o.device !== 'cpu') net.to({ device: o.device });
    net.eval();
    return net;
  } catch (e) {
    net?.dispose();
    throw e;
  } finally {
    dispose(raw.state);
  }
}

/** Reads only the config of a teacher file. */
export function readEDMConfig(path: string): EDMConfig {
  return readEDMInfo(path).config;
}

/** What a network file is: written by `dmd teacher` / converted (teacher) or by `dmd-train` (one-step generator). */
export type EDMRole = 'teacher' | 'generator';

export interface EDMFileInfo {
  config: EDMConfig;
  metadata: Record<string, string>;
  role: EDMRole;
  /** for an NVlabs snapshot (.pkl): where the network was, its classes, parameter count and the other entries */
  snapshot?: SnapshotInfo;
}

function roleOf(metadata: Record<string, string>): EDMRole {
  return metadata.role === 'generator' || metadata.generator_sigma !== undefined ? 'generator' : 'teacher';
}

/** snapshot infos already read in this process, by path, size and modification time (a .pkl is read whole) */
const pklInfo = new Map<string, EDMFileInfo>();

/**
 * The config, metadata and role of a network file (a .safetensors is read from its header only; a .pkl
 * snapshot is read once per process).
 */
export function readEDMInfo(path: string): EDMFileInfo {
  const format = detectFormat(path);
  if (format === 'pkl') {
    const st = statSync(path);
    const key = `${path}:${st.size}:${st.mtimeMs}`;
    const known = pklInfo.get(key);
    if (known) return known;
    const raw = readPkl(path);
    dispose(raw.state);
    const info: EDMFileInfo = { config: raw.config, metadata: {}, role: 'teacher', snapshot: raw.snapshot };
    pklInfo.set(key, info);
    return info;
  }
  if (format === 'safetensors') {
    let header;
    try {
      header = readSafetensorsHeader(path);
    } catch (e) {
      if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
      throw e;
    }
    const { config: cfg, ...metadata } = header.metadata;
    if (cfg === undefined) throw new CheckpointError(`${path}: has no __metadata__.config (the EDMPrecond arguments as JSON); write it with saveEDM or scripts/convert-edm.py`);
    return { config: parseEDMConfig(cfg, `${path}: config`), metadata, role: roleOf(metadata) };
  }
  const raw = readPt(path);
  dispose(raw.state);
  return { config: raw.config, metadata: raw.metadata, role: roleOf(raw.metadata) };
}

/**
 * Saves a network as a teacher-format file; the format follows the extension (.safetensors, else
 * torch.save). `role` records what it is (a one-step generator is refused where a teacher is expected).
 */
export function saveEDM(net: EDMNetwork, path: string, extraMetadata: Record<string, string> = {}, role: EDMRole = 'teacher'): void {
  tidy(() => {
    const cpu = new Map<string, Tensor>();
    for (const [k, t] of net.stateDict()) cpu.set(k, t.to({ device: 'cpu', dtype: 'float32' }).contiguous());
    if (path.endsWith('.safetensors')) {
      writeSafetensors(path, cpu, { ...extraMetadata, config: configJSON(net.config), format: 'dmd-torch/edm', role }, role);
    } else {
      const sd: { [k: string]: PickleValue } = {};
      for (const [k, t] of cpu) sd[k] = t;
      writeTorchSave(path, { config: configJSON(net.config), state_dict: sd, ...extraMetadata, role }, role);
    }
  });
}
