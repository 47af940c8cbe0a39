// Stores a safetensors checkpoint with its float32 tensors in float16 (metadata and other dtypes kept),
// e.g. an SD single file before it is bundled: half the bytes, loaded back as float32 by every loader.
// Refuses a tensor whose values float16 cannot hold (beyond +-65504).
//   npx tsx scripts/half-checkpoint.ts in.safetensors out.safetensors
import { readSafetensors, writeSafetensors, tidy, type Tensor } from '../src/index.js';

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: tsx scripts/half-checkpoint.ts in.safetensors out.safetensors');
  process.exit(2);
}
const f = readSafetensors(input);
tidy(() => {
  const out = new Map<string, Tensor>();
  for (const [k, t] of f.tensors) {
    if (t.dtype !== 'float32') { out.set(k, t); continue; }
    const big = t.abs().max().item();
    if (big > 65504) throw new RangeError(`${k}: |value| up to ${big}, beyond float16`);
    out.set(k, t.to('float16'));
  }
  writeSafetensors(output, out, { ...f.metadata, stored_dtype: 'float16' }, 'checkpoint');
});
console.log(`wrote ${output} (${f.tensors.size} tensors, float32 stored as float16)`);
