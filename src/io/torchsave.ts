// torch.save files through libtorch's pickler (torch::pickle_load / pickle_save): plain dicts of
// tensors, nested dicts, lists, numbers and strings.
import { readFileSync, writeFileSync, renameSync, statSync } from 'node:fs';
import { N } from '../native.js';
import { Tensor } from '../tensor/tensor.js';
import { ZipReader, ZipError } from '../data/zip.js';

export type PickleValue = null | boolean | number | string | Tensor | PickleValue[] | { [key: string]: PickleValue };

export class TorchSaveError extends Error {
  readonly code = 'ERR_TORCH_SAVE';
}

function adopt(v: unknown): PickleValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (N.isTensor(v)) return new Tensor(v);
  if (Array.isArray(v)) return v.map(adopt);
  if (typeof v === 'object') {
    const o: { [k: string]: PickleValue } = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) o[k] = adopt(x);
    return o;
  }
  throw new TorchSaveError(`unexpected value of type ${typeof v} from the unpickler`);
}

/** Reads a torch.save file whose content is a plain dict/list of tensors, numbers and strings. */
export function readTorchSave(path: string): PickleValue {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new TorchSaveError(`${path}: file not found`);
  }
  if (st.isDirectory()) throw new TorchSaveError(`${path}: is a directory, expected a torch.save (.pt) file`);
  if (!st.isFile()) throw new TorchSaveError(`${path}: is not a regular file`);
  // libtorch's reader does not check the archive's CRCs: a damaged file would load silently
  let zip: ZipReader | null = null;
  try {
    zip = new ZipReader(path);
    zip.verify();
  } catch (e) {
    if (e instanceof ZipError) throw new TorchSaveError(`${path}: damaged or not a torch.save file (${e.message.replace(`${path}: `, '')}); re-copy or re-create it (EDM snapshots convert with scripts/convert-edm.py)`);
    throw e;
  } finally {
    zip?.close();
  }
  const bytes = readFileSync(path);
  try {
    return adopt(N.pickleLoad(bytes));
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new TorchSaveError(
      `${path}: libtorch could not read this torch.save file (${msg}). dmd-torch reads plain dicts of tensors, numbers, strings ` +
        `and lists saved by torch.save; an OrderedDict state_dict() or a pickled nn.Module does not load in libtorch: convert it with ` +
        `scripts/convert-edm.py, or re-save with torch.save({k: v.detach().cpu() for k, v in sd.items()}, path)`,
    );
  }
}

/** Writes a value as a torch.save file readable by torch.load (atomically: temp file + rename). */
export function writeTorchSave(path: string, value: PickleValue): void {
  const toNative = (v: PickleValue): unknown => {
    if (v instanceof Tensor) return v.handle;
    if (Array.isArray(v)) return v.map(toNative);
    if (v !== null && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) o[k] = toNative(x);
      return o;
    }
    return v;
  };
  const bytes = N.pickleSave(toNative(value));
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
