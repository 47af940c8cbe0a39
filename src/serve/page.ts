// The demo page of `dmd serve`: a class picker (conditional models) or a prompt box (text-to-image
// models), seed and count, a Generate button, the images and the measured latency. The script is inlined with Function.prototype.toString,
// so it is self-contained (no imports, no outer names).
/// <reference lib="dom" />

import type { ModelInfo } from './engine.js';

export interface PageInfo extends ModelInfo {
  maxCount: number;
}

export function pageClient(info: PageInfo): void {
  const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
  const cls = $<HTMLSelectElement>('class');
  if (info.labelDim) {
    const all = document.createElement('option');
    all.value = 'all';
    all.textContent = 'all classes (one per class, cycling)';
    cls.appendChild(all);
    for (let c = 0; c < info.labelDim; c++) {
      const o = document.createElement('option');
      o.value = String(c);
      o.textContent = `class ${c}`;
      cls.appendChild(o);
    }
  } else {
    $<HTMLElement>('class-row').style.display = 'none';
  }
  const prompt = $<HTMLInputElement>('prompt');
  if (!info.textToImage) $<HTMLElement>('prompt-row').style.display = 'none';
  $<HTMLInputElement>('count').max = String(info.maxCount);
  const button = $<HTMLButtonElement>('generate');
  const status = $<HTMLElement>('status');
  const images = $<HTMLElement>('images');
  button.addEventListener('click', async () => {
    const count = Number($<HTMLInputElement>('count').value);
    const seed = Number($<HTMLInputElement>('seed').value);
    const body: Record<string, unknown> = { count, seed, format: 'json' };
    if (info.labelDim && cls.value !== 'all') body.classes = Number(cls.value);
    if (info.textToImage) body.prompt = prompt.value;
    button.disabled = true;
    status.textContent = 'generating...';
    const t0 = performance.now();
    try {
      const r = await fetch('/api/generate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const j = (await r.json()) as { error?: string; images?: string[]; classes?: number[]; prompts?: string[]; compute_ms?: number; batch_images?: number };
      if (!r.ok) {
        status.textContent = `error: ${j.error ?? r.status}`;
        status.dataset.state = 'error';
        return;
      }
      images.replaceChildren(
        ...(j.images ?? []).map((src, i) => {
          const fig = document.createElement('figure');
          const img = document.createElement('img');
          img.src = src;
          img.className = 'sample';
          if (j.classes?.length) img.dataset.class = String(j.classes[i]);
          if (j.prompts) img.dataset.prompt = j.prompts[i];
          const cap = document.createElement('figcaption');
          cap.textContent = j.classes?.length ? `class ${j.classes[i]}` : j.prompts ? `seed ${seed}, #${i}` : '';
          fig.append(img, cap);
          return fig;
        }),
      );
      const ms = performance.now() - t0;
      status.textContent = `${j.images?.length ?? 0} images in ${ms.toFixed(0)} ms (network call ${j.compute_ms?.toFixed(1)} ms for a batch of ${j.batch_images})`;
      status.dataset.state = 'done';
      status.dataset.latency = ms.toFixed(1);
    } catch (e) {
      status.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
      status.dataset.state = 'error';
    } finally {
      button.disabled = false;
    }
  });
}

export function pageHTML(info: PageInfo): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dmd-torch: one-step generation</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
label{display:inline-block;min-width:60px}.row{margin:6px 0}
#images{display:flex;flex-wrap:wrap;gap:8px;margin-top:16px}#images figure{margin:0;text-align:center;font-size:11px}
.sample{width:96px;height:96px;image-rendering:pixelated;border:1px solid #ccc}
button{font-size:15px;padding:4px 18px}
</style></head><body>
<h1>One-step generation</h1>
<p>${esc(info.model)} — ${info.oneStep ? 'one network evaluation per image' : `teacher with ${info.textToImage ? 'DDIM' : 'Heun'}, ${info.nfe} evaluations per image`}, ${info.channels}×${info.resolution}×${info.resolution}${info.textToImage ? ', text-to-image' : ''}.</p>
<div class="row" id="class-row"><label for="class">class</label> <select id="class"></select></div>
<div class="row" id="prompt-row"><label for="prompt">prompt</label> <input id="prompt" type="text" size="60" maxlength="2000" value="a photo of a cat"></div>
<div class="row"><label for="seed">seed</label> <input id="seed" type="number" min="0" value="0"></div>
<div class="row"><label for="count">count</label> <input id="count" type="number" min="1" value="8"></div>
<div class="row"><button id="generate">Generate</button> <span id="status"></span></div>
<div id="images"></div>
<script>
const __name = (f) => f; // tolerate the name-keeping helper of TypeScript runners
(${pageClient.toString()})(${JSON.stringify(info).replace(/</g, '\\u003c')});
</script>
</body></html>
`;
}
