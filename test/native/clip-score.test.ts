// The CLIP score's networks against openai/CLIP's own code (test/fixtures/clip, made by
// scripts/make-clip-fixture.py from clip/model.py with random weights): image and text embeddings and
// their cosine, from the same weights as an openai/open_clip state dict (.safetensors, torch.save) and
// under Hugging Face CLIPModel names, and from a TorchScript archive like openai's released files;
// CLIP's preprocessing; and files that are not CLIP checkpoints named.
import test from 'ava';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { readSafetensors, writeSafetensors, writeTorchSave, tidy, full, type Tensor, type PickleValue } from '../../src/index.js';
import { CLIPScorer, CLIPScoreError } from '../../src/metrics/clip-score.js';
import { tempDir } from '../helpers/tmp.js';
import { ROOT } from '../helpers/cli.js';
import { torchPython, runPython } from '../helpers/python.js';

const dir = tempDir();
const fixture = readSafetensors(path.join(ROOT, 'test/fixtures/clip/clip-vit-tiny.safetensors')).tensors;
const weights = new Map([...fixture].filter(([k]) => k.startsWith('weights/')).map(([k, v]) => [k.slice('weights/'.length), v] as const));
const openaiFile = path.join(dir, 'openai.safetensors');
writeSafetensors(openaiFile, weights);

/** max|got - want| relative to max|want| (the fixtures' criterion, as in test/fixtures/reference). */
function relErr(got: Tensor, want: Tensor): number {
  return tidy(() => got.to('float64').sub(want.to('float64')).abs().max().item() / want.abs().max().item());
}

function checkParity(t: import('ava').ExecutionContext, file: string, what: string): void {
  const s = CLIPScorer.load(file);
  try {
    tidy(() => {
      const img = s.encodePixels(fixture.get('input/images')!);
      const txt = s.encodeTokens(fixture.get('input/tokens')!);
      const cos = img.mul(txt).sum([1]).div(img.square().sum([1]).sqrt().mul(txt.square().sum([1]).sqrt()));
      const e = [relErr(img, fixture.get('expected/image_features')!), relErr(txt, fixture.get('expected/text_features')!), relErr(cos, fixture.get('expected/cosine')!)];
      t.log(`${what}: image ${e[0]!.toExponential(1)}, text ${e[1]!.toExponential(1)}, cosine ${e[2]!.toExponential(1)}`);
      for (const x of e) t.true(x <= 1e-4, `${what}: relative error ${x}`);
    });
  } finally {
    s.dispose();
  }
}

test('image and text embeddings match openai/CLIP for an openai-named state dict (.safetensors and torch.save)', (t) => {
  checkParity(t, openaiFile, 'safetensors');
  const pt = path.join(dir, 'open_clip.pt');
  const sd: { [k: string]: PickleValue } = {};
  for (const [k, v] of weights) sd[k] = v;
  writeTorchSave(pt, { state_dict: sd });
  checkParity(t, pt, 'torch.save');
});

test('the same weights under Hugging Face CLIPModel names give the same embeddings', (t) => {
  const hf = new Map<string, Tensor>();
  tidy(() => {
    const block = (from: string, to: string) => {
      for (const [k, v] of weights) {
        const m = new RegExp(`^${from.replace(/\./g, '\\.')}(\\d+)\\.(.+)$`).exec(k);
        if (!m) continue;
        const b = `${to}${m[1]}.`;
        const rest = m[2]!;
        if (rest.startsWith('attn.in_proj_')) {
          const kind = rest.endsWith('weight') ? 'weight' : 'bias';
          v.chunk(3, 0).forEach((c, i) => hf.set(`${b}self_attn.${['q', 'k', 'v'][i]}_proj.${kind}`, c.contiguous().keep()));
        } else {
          const name = rest.replace('attn.out_proj', 'self_attn.out_proj').replace('ln_1', 'layer_norm1').replace('ln_2', 'layer_norm2').replace('mlp.c_fc', 'mlp.fc1').replace('mlp.c_proj', 'mlp.fc2');
          hf.set(b + name, v);
        }
      }
    };
    const w = (k: string) => weights.get(k)!;
    hf.set('vision_model.embeddings.patch_embedding.weight', w('visual.conv1.weight'));
    hf.set('vision_model.embeddings.class_embedding', w('visual.class_embedding'));
    hf.set('vision_model.embeddings.position_embedding.weight', w('visual.positional_embedding'));
    for (const x of ['weight', 'bias']) {
      hf.set(`vision_model.pre_layrnorm.${x}`, w(`visual.ln_pre.${x}`));
      hf.set(`vision_model.post_layernorm.${x}`, w(`visual.ln_post.${x}`));
      hf.set(`text_model.final_layer_norm.${x}`, w(`ln_final.${x}`));
    }
    block('visual.transformer.resblocks.', 'vision_model.encoder.layers.');
    block('transformer.resblocks.', 'text_model.encoder.layers.');
    hf.set('text_model.embeddings.token_embedding.weight', w('token_embedding.weight'));
    hf.set('text_model.embeddings.position_embedding.weight', w('positional_embedding'));
    hf.set('visual_projection.weight', w('visual.proj').t().contiguous().keep());
    hf.set('text_projection.weight', w('text_projection').t().contiguous().keep());
  });
  const file = path.join(dir, 'hf.safetensors');
  writeSafetensors(file, hf);
  checkParity(t, file, 'Hugging Face names');
});

(torchPython() ? test : test.skip)(`a TorchScript archive (as openai releases its weights) is read through its parameters${torchPython() ? '' : ' [skipped: no python3 with torch]'}`, (t) => {
  const script = path.join(dir, 'ViT-tiny.pt');
  // a scripted module tree holding the same parameters under the same dotted names
  runPython(`
import sys, torch
from safetensors_reader import load
`.replace('from safetensors_reader import load', `
import json, struct
def load(p):
    f = open(p, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']
        dt = {'F32': torch.float32, 'I64': torch.int64}[v['dtype']]
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=dt).reshape(v['shape'])
    return out
class Node(torch.nn.Module):
    pass
root = Node()
for k, v in load(sys.argv[1]).items():
    *path, leaf = k.split('.')
    m = root
    for p in path:
        if not hasattr(m, p): m.add_module(p, Node())
        m = getattr(m, p)
    m.register_parameter(leaf, torch.nn.Parameter(v.to(torch.float16 if v.dim() > 1 else torch.float32), requires_grad=False))
torch.jit.save(torch.jit.script(root), sys.argv[2])
`), [openaiFile, script]);
  const s = CLIPScorer.load(script);
  // stored in float16 as openai's files are: the embeddings agree to float16 precision
  const err = tidy(() => relErr(s.encodePixels(fixture.get('input/images')!), fixture.get('expected/image_features')!));
  t.log(`TorchScript (float16 weights): image embeddings relative error ${err.toExponential(1)}`);
  t.true(err < 5e-3, String(err));
  s.dispose();
});

test('preprocessing: gray or RGB images of any size become CLIP-normalised pixels at the model size; scores are 100 * max(cos, 0)', (t) => {
  const s = CLIPScorer.load(openaiFile);
  tidy(() => {
    const black = full([2, 1, 16, 16], -1);
    const p = s.preprocess(black);
    t.deepEqual(p.shape, [2, 3, 32, 32]);
    const want = [0.48145466, 0.4578275, 0.40821073].map((m, i) => -m / [0.26862954, 0.26130258, 0.27577711][i]!);
    for (let c = 0; c < 3; c++) t.true(Math.abs(p.select(1, c).mean().item() - want[c]!) < 1e-5);
    t.deepEqual(s.preprocess(full([1, 3, 48, 64], 0.2)).shape, [1, 3, 32, 32]);
  });
  t.throws(() => s.scores(full([2, 3, 32, 32], 0), ['a']), { message: /2 images for 1 prompts/ });
  s.dispose();
});

test('files that are not CLIP ViT checkpoints are named', (t) => {
  t.throws(() => CLIPScorer.load(path.join(dir, 'missing.pt')), { instanceOf: CLIPScoreError, message: /no such file/ });
  const other = path.join(dir, 'other.safetensors');
  tidy(() => writeSafetensors(other, { 'foo.weight': full([2], 1) }));
  t.throws(() => CLIPScorer.load(other), { instanceOf: CLIPScoreError, message: /neither openai\/open_clip names .* nor Hugging Face CLIPModel names/ });
  const junk = path.join(dir, 'junk.pt');
  writeFileSync(junk, 'not a checkpoint');
  t.throws(() => CLIPScorer.load(junk), { instanceOf: CLIPScoreError });
});
