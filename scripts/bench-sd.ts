// npm run bench:sd [-- --size 512 --runs 1 --device cpu --ldm ~/stable-diffusion --clip ~/CLIP]
// One Stable Diffusion v1.5-sized 512x512 generation step, part by part, with random weights (SD v1.5's
// architecture: 860M UNet, 123M text encoder, 84M VAE): text encoding of the prompt and the empty prompt
// (batch 2), one UNet evaluation with classifier-free guidance (batch 2 at 64x64 latents), one VAE decode;
// seconds per part and the process's peak RSS. With --ldm (a CompVis/stable-diffusion checkout) and
// --clip (an openai/CLIP checkout), the same computation runs in PyTorch (Debian's python3-torch running
// the reference code, float32, grad off) in its own process, alternated with ours, and the ratios are
// printed. The reference code imports einops, PIL and omegaconf, which Debian 12's python3-torch does not
// bring: a minimal einops (the rearrange patterns those modules use), empty PIL modules and omegaconf's
// ListConfig are put on its path.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (n: string, d?: string) => { const i = process.argv.indexOf(`--${n}`); return i >= 0 ? process.argv[i + 1]! : d; };
const size = Number(arg('size', '512'));
const runs = Number(arg('runs', '1'));
const device = arg('device', 'cpu')!;
const py = process.env.DMD_TORCH_PYTHON ?? '/usr/bin/python3';

interface Figures { text: number; unet: number; vae: number; maxRssMiB: number; params: { unet: number; text: number; vae: number } }

if (process.argv.includes('--child')) {
  const { StableDiffusion } = await import('../src/sd/pipeline.js');
  const { noGrad, tidy, randn, full, cuda } = await import('../src/index.js');
  const sync = () => { if (device !== 'cpu') cuda.synchronize(); };
  const sd = StableDiffusion.create({}, { seed: 0, device: device as 'cpu' });
  const lat = size / 8;
  const time = (fn: () => void) => { fn(); sync(); const t0 = performance.now(); fn(); sync(); return (performance.now() - t0) / 1000; };
  const once = (fn: () => void) => { const t0 = performance.now(); fn(); sync(); return (performance.now() - t0) / 1000; };
  const f: Figures = { text: 0, unet: 0, vae: 0, maxRssMiB: 0, params: { unet: sd.unet.parameterCount(), text: sd.text.parameterCount(), vae: sd.vae.parameterCount() } };
  noGrad(() => {
    const tokens = sd.tokenizer.batch(['', 'a photograph of an astronaut riding a horse']).to(device as 'cpu');
    f.text = time(() => tidy(() => { sd.text.forward(tokens); }));
    const ctx = sd.text.forward(tokens);
    const x = randn([2, 4, lat, lat]).to(device as 'cpu');
    const t = full([2], 999, { dtype: 'int64', device: device as 'cpu' });
    f.unet = once(() => tidy(() => { sd.unet.forward(x, t, ctx); }));
    const z = randn([1, 4, lat, lat]).to(device as 'cpu');
    f.vae = once(() => tidy(() => { sd.vae.decode(z); }));
  });
  f.maxRssMiB = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify(f));
  process.exit(0);
}

const PY = `
import sys, os, time, json, resource, importlib.util, torch
sys.path[:0] = sys.argv[1:3]
size = int(sys.argv[4])
# openai CLIP's model.py alone (its package __init__ pulls in torchvision, PIL, ...)
spec = importlib.util.spec_from_file_location('clip_model', os.path.join(sys.argv[3], 'clip', 'model.py'))
clip_model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(clip_model)
Transformer, LayerNorm = clip_model.Transformer, clip_model.LayerNorm
from ldm.modules.diffusionmodules.openaimodel import UNetModel
from ldm.modules.diffusionmodules.model import Encoder, Decoder
torch.manual_seed(0)
torch.set_grad_enabled(False)
unet = UNetModel(image_size=32, in_channels=4, out_channels=4, model_channels=320, attention_resolutions=[4, 2, 1], num_res_blocks=2,
                 channel_mult=[1, 2, 4, 4], num_heads=8, use_spatial_transformer=True, transformer_depth=1, context_dim=768,
                 use_checkpoint=False, legacy=False).eval()
dd = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4, 4], num_res_blocks=2,
          attn_resolutions=[], dropout=0.0)
encoder = Encoder(**dd).eval()
decoder = Decoder(**dd).eval()
quant_conv = torch.nn.Conv2d(8, 8, 1)
post_quant_conv = torch.nn.Conv2d(4, 4, 1)
tok = torch.nn.Embedding(49408, 768)
pos = torch.nn.Parameter(torch.randn(77, 768) * 0.01)
mask = torch.empty(77, 77).fill_(float('-inf')).triu_(1)
tr = Transformer(768, 12, 12, attn_mask=mask).eval()
ln = LayerNorm(768)
params = dict(unet=sum(p.numel() for p in unet.parameters()), text=sum(p.numel() for p in [*tok.parameters(), pos, *tr.parameters(), *ln.parameters()]),
              vae=sum(p.numel() for m in [encoder, decoder, quant_conv, post_quant_conv] for p in m.parameters()))
tokens = torch.randint(0, 49408, (2, 77))
def text():
    x = tok(tokens) + pos
    x = tr(x.permute(1, 0, 2)).permute(1, 0, 2)
    return ln(x)
def timed(fn, warm):
    if warm: fn()
    t0 = time.time(); fn(); return time.time() - t0
t_text = timed(text, True)
ctx = text()
lat = size // 8
x = torch.randn(2, 4, lat, lat)
t = torch.full((2,), 999, dtype=torch.long)
t_unet = timed(lambda: unet(x, t, context=ctx), False)
z = torch.randn(1, 4, lat, lat)
t_vae = timed(lambda: decoder(post_quant_conv(z)), False)
print(json.dumps(dict(text=t_text, unet=t_unet, vae=t_vae, maxRssMiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, params=params)))
`;

const EINOPS = `
import re
def _parse(side):
    out = []
    for m in re.finditer(r'\\(([^)]*)\\)|(\\S+)', side):
        out.append(m.group(1).split() if m.group(1) is not None else [m.group(2)])
    return out
def rearrange(x, pattern, **sizes):
    left, right = [s.strip() for s in pattern.split('->')]
    lg, rg = _parse(left), _parse(right)
    known = dict(sizes)
    for dim, g in zip(x.shape, lg):
        unknown = [a for a in g if a not in known]
        prod = 1
        for a in g:
            if a in known: prod *= known[a]
        if len(unknown) == 1: known[unknown[0]] = dim // prod
    flat = [a for g in lg for a in g]
    x = x.reshape([known[a] for a in flat])
    order = [a for g in rg for a in g]
    x = x.permute([flat.index(a) for a in order])
    shape = []
    for g in rg:
        p = 1
        for a in g: p *= known[a]
        shape.append(p)
    return x.reshape(shape)
def repeat(x, pattern, **sizes):
    raise NotImplementedError('repeat is not needed by the benchmarked modules')
`;

function pythonSide(ldm: string, clip: string): Figures {
  const shim = mkdtempSync(path.join(tmpdir(), 'dmd-bench-sd-'));
  try {
    writeFileSync(path.join(shim, 'einops.py'), EINOPS);
    mkdirSync(path.join(shim, 'PIL'));
    for (const m of ['__init__', 'Image', 'ImageDraw', 'ImageFont']) writeFileSync(path.join(shim, 'PIL', `${m}.py`), '');
    // UNetModel checks whether context_dim is an omegaconf ListConfig
    mkdirSync(path.join(shim, 'omegaconf'));
    writeFileSync(path.join(shim, 'omegaconf', '__init__.py'), '');
    writeFileSync(path.join(shim, 'omegaconf', 'listconfig.py'), 'class ListConfig(list):\n    pass\n');
    const r = spawnSync(py, ['-c', PY, shim, ldm, clip, String(size)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`the PyTorch side failed: ${r.stderr.slice(-2000)}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
  } finally {
    rmSync(shim, { recursive: true, force: true });
  }
}

function ourSide(): Figures {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--size', String(size), '--device', device], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`dmd-torch side failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
}

const ldm = arg('ldm');
const clip = arg('clip');
const { buildInfo, getNumThreads } = await import('../src/index.js');
console.log(`bench:sd ${size}x${size}, libtorch ${buildInfo().torchVersion}, ${getNumThreads()} threads, ${device}; SD v1.5 architecture, random weights, float32`);
const line = (who: string, f: Figures) =>
  console.log(`${who.padEnd(9)} text ${f.text.toFixed(3)} s, UNet with CFG (batch 2) ${f.unet.toFixed(2)} s, VAE decode ${f.vae.toFixed(2)} s, peak RSS ${f.maxRssMiB.toFixed(0)} MiB (UNet ${(f.params.unet / 1e6).toFixed(1)}M, text ${(f.params.text / 1e6).toFixed(1)}M, VAE ${(f.params.vae / 1e6).toFixed(1)}M params)`);
const ours: Figures[] = [];
const theirs: Figures[] = [];
for (let i = 0; i < runs; i++) {
  ours.push(ourSide());
  line('dmd-torch', ours.at(-1)!);
  if (ldm && clip) {
    theirs.push(pythonSide(ldm, clip));
    line('PyTorch', theirs.at(-1)!);
  }
}
if (theirs.length) {
  const med = (fs: Figures[], k: 'text' | 'unet' | 'vae' | 'maxRssMiB') => { const v = fs.map((f) => f[k]).sort((a, b) => a - b); return v[v.length >> 1]!; };
  const r = (k: 'text' | 'unet' | 'vae' | 'maxRssMiB') => (med(ours, k) / med(theirs, k)).toFixed(2);
  console.log(`ratio dmd-torch / PyTorch (medians of ${runs}): text ${r('text')}x, UNet ${r('unet')}x, VAE decode ${r('vae')}x, peak RSS ${r('maxRssMiB')}x (targets: <= 1.1x time, <= 1.2x memory)`);
} else {
  console.log('(pass --ldm <CompVis/stable-diffusion checkout> --clip <openai/CLIP checkout> to time the same computation in PyTorch)');
}
