// The error boundary: bad calls become JS errors with libtorch's message (no C++ backtrace) and a
// code; argument errors are TypeError/RangeError; the process survives every one.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  tensor, zeros, ones, randn, randint, arange, linspace, fromArray, fromBytes, cat, F, Generator, EDMNetwork, foreach, readSafetensors,
  readTorchSave, noGrad, type Tensor,
} from '../../src/index.js';
import { N } from '../../src/native.js';
import { tempDir } from '../helpers/tmp.js';

const dir = tempDir();
const disposed = (): Tensor => {
  const x = ones([2]);
  x.dispose();
  return x;
};
const edm = () => EDMNetwork.create({ model_type: 'SongUNet', img_resolution: 8, img_channels: 1, model_channels: 8, channel_mult: [1], num_blocks: 1, attn_resolutions: [] });
const stFile = (name: string, header: string, data = 0, len?: bigint) => {
  const p = path.join(dir, name);
  const h = Buffer.from(header);
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(len ?? BigInt(h.length));
  writeFileSync(p, Buffer.concat([l, h, Buffer.alloc(data)]));
  return p;
};

type Case = [string, () => unknown, RegExp, (new (...a: never[]) => Error)?];
const cases: Case[] = [
  ['broadcast shape mismatch', () => ones([2]).add(ones([3])), /size of tensor a \(2\) must match/],
  ['matmul shape mismatch', () => ones([2, 3]).matmul(ones([2, 3])), /cannot be multiplied|shapes/],
  ['conv2d on an int tensor', () => F.conv2d(zeros([1, 1, 4, 4], { dtype: 'int64' }), ones([1, 1, 3, 3])), /./],
  ['conv2d with the wrong channel count', () => F.conv2d(ones([1, 2, 4, 4]), ones([1, 3, 3, 3])), /channels|expected/],
  ['oneHot of float indices', () => F.oneHot(ones([2]), 3), /indices must be int64/, TypeError],
  ['method on a disposed tensor', () => disposed().exp(), /was disposed/, TypeError],
  ['disposed tensor as an argument', () => ones([2]).add(disposed()), /was disposed/, TypeError],
  ['disposed handle straight into the addon', () => { const x = ones([1]); const h = x.handle; x.dispose(); return N.unary(0, h); }, /was disposed/, TypeError],
  ['negative size', () => zeros([-1, 2]), /negative/, RangeError],
  ['absurd size', () => zeros([2 ** 40, 2 ** 20]), /absurdly large/, RangeError],
  ['absurd random size', () => randn([2 ** 30, 2 ** 30]), /absurdly large/, RangeError],
  ['huge allocation the allocator refuses', () => zeros([2 ** 46]), /memory|allocate/],
  ['fractional size', () => zeros([1.5]), /must be an integer/, TypeError],
  ['shape is not an array', () => zeros(3 as unknown as number[]), /must be an array/, TypeError],
  ['reshape to the wrong element count', () => ones([6]).reshape([4, 2]), /invalid for input of size 6/],
  ['permute with wrong dims', () => ones([2, 3]).permute([0]), /dims|number of dimensions/],
  ['select out of range', () => ones([2, 3]).select(0, 5), /out of range/],
  ['indexSelect out of range', () => ones([3]).indexSelect(0, tensor([7], { dtype: 'int64' })), /out of range|index/],
  ['cat of mismatched shapes', () => cat([ones([2, 2]), ones([2, 3])], 0), /Sizes of tensors must match/],
  ['unknown dtype', () => ones([1]).to('float8' as never), /neither a dtype nor a device/, TypeError],
  ['bad device string', () => zeros([1], { device: 'gpu:0' as never }), /'cpu', 'cuda' or 'cuda:N'/, TypeError],
  ['CUDA when there is none (or a device index past the last)', () => ones([1]).to('cuda:99'), /./],
  ['item() of many elements', () => ones([3]).item(), /needs exactly one/, RangeError],
  ['backward without grad', () => ones([1]).backward(), /does not require grad/, TypeError],
  ['requiresGrad on an int tensor', () => arange(3).requiresGrad_(), /floating-point/, TypeError],
  ['fromArray with the wrong shape', () => fromArray(new Float32Array(4), [3]), /holds 3 elements but the array has 4/, RangeError],
  ['fromBytes with the wrong length', () => fromBytes(new Uint8Array(5), [2], 'float32'), /needs 8/, RangeError],
  ['randint with an empty range', () => randint(5, 5, [2]), /must be greater than low/, RangeError],
  ['linspace with negative steps', () => linspace(0, 1, -3), /steps/, RangeError],
  ['arange with step 0', () => arange(0, 5, 0), /step must be non-zero/, RangeError],
  ['generator state of the wrong kind', () => Generator.create('cpu', 0).setState(ones([4])), /uint8/, TypeError],
  ['negative seed', () => Generator.create('cpu', -1), /non-negative/, RangeError],
  ['EDM forward with the wrong input shape', () => { const n = edm(); try { return n.forward(ones([1, 3, 8, 8]), 1); } finally { n.dispose(); } }, /x must have shape \[N, 1, 8, 8\]/],
  ['EDM forward with labels on an unconditional net', () => { const n = edm(); try { return n.forward(ones([1, 1, 8, 8]), 1, { labels: ones([1, 10]) }); } finally { n.dispose(); } }, /unconditional/, TypeError],
  ['EDM forward with NaN-free but mis-sized sigma', () => { const n = edm(); try { return n.forward(ones([2, 1, 8, 8]), ones([3])); } finally { n.dispose(); } }, /sigma must have 1 or N=2/],
  ['raw native EDM create with a bad model type', () => N.edmCreate({ model_type: 'Transformer' }), /unknown model_type/, TypeError],
  ['loading a mis-shaped state dict', () => { const n = edm(); try { return noGrad(() => n.loadStateDict({ 'model.map_layer0.weight': ones([1, 1]) }, { strict: false })); } finally { n.dispose(); } }, /'model\.map_layer0\.weight' has shape \[1, 1\]/, RangeError],
  ['foreach lists of different lengths', () => foreach.add_([ones([1])], [ones([1]), ones([1])]), /differ in length/, RangeError],
  ['interpolate with an unknown mode', () => F.interpolate(ones([1, 1, 2, 2]), { size: [4, 4], mode: 'cubic' as never }), /mode must be/, TypeError],
  ['pad with an unknown mode', () => F.pad(ones([1, 1, 2, 2]), [1, 1], 'mirror' as never), /mode must be/, TypeError],
  ['clamp without bounds', () => ones([1]).clamp(), /give min, max or both/, TypeError],
  ['dropout with p > 1', () => F.dropout(ones([2]), 2), /p must be in \[0, 1\]/, RangeError],
  ['wrong argument types into the addon', () => N.shape(123 as never), /must be a Tensor/, TypeError],
  ['truncated safetensors file', () => readSafetensors(stFile('trunc.safetensors', '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', 4)), /truncated/],
  ['safetensors header longer than the file', () => readSafetensors(stFile('lie.safetensors', '{}', 0, 1n << 40n)), /exceeds the file/],
  ['missing safetensors file', () => readSafetensors(path.join(dir, 'nope.safetensors')), /file not found/],
  ['garbage torch.save file', () => { const p = path.join(dir, 'g.pt'); writeFileSync(p, 'PK garbage'); return readTorchSave(p); }, /damaged or not a torch\.save file/],
];

test(`the process survives ${cases.length} bad calls, each a clear JS error`, (t) => {
  t.true(cases.length >= 30);
  for (const [what, fn, re, cls] of cases) {
    let err: unknown;
    try {
      fn();
    } catch (e) {
      err = e;
    }
    t.true(err instanceof Error, `${what}: expected an error`);
    if (!(err instanceof Error)) continue;
    t.regex(err.message, re, what);
    if (cls) t.true(err instanceof cls, `${what}: expected ${cls.name}, got ${err.constructor.name}`);
    t.notRegex(err.message, /Exception raised from|frame #\d/, `${what}: C++ backtrace leaked`);
    if (/libtorch: /.test(err.message)) t.regex(String((err as { code?: string }).code), /^ERR_TORCH/, what);
  }
  t.deepEqual(ones([2]).add(1).toArray(), [2, 2]);
});
