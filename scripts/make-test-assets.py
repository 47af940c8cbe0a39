#!/usr/bin/env python3
"""Writes the small torch.save files the test suite reads (test/assets/). Run with a Python that has
PyTorch (Debian: /usr/bin/python3 with python3-torch):  /usr/bin/python3 scripts/make-test-assets.py"""
import json
import os

import torch

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'assets')
os.makedirs(here, exist_ok=True)

# A plain dict as torch.save writes it: tensors of several dtypes, nested dicts, lists, numbers, strings.
torch.manual_seed(0)
value = {
    'weights': {
        'f32': torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4,
        'f64': torch.tensor([1.5, -2.25], dtype=torch.float64),
        'f16': torch.tensor([0.5, 2.0], dtype=torch.float16),
        'bf16': torch.tensor([1.0, -3.0], dtype=torch.bfloat16),
        'i64': torch.tensor([1, 2, 3], dtype=torch.int64),
        'u8': torch.tensor([0, 255], dtype=torch.uint8),
        'b': torch.tensor([True, False]),
    },
    'config': json.dumps({'model_type': 'SongUNet', 'attn_resolutions': [16]}),
    'step': 1234,
    'lr': 0.5,
    'name': 'plain',
    'shape': [2, 3],
}
torch.save(value, os.path.join(here, 'plain-dict.pt'))
print('wrote', os.path.join(here, 'plain-dict.pt'))


# A tiny TorchScript "detector" with the interface of the Inception-v3 FID network:
# forward(img uint8 [N, 3, H, W], return_features: bool) -> [N, 8] features (or [N] scores).
class TinyDetector(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.proj = torch.nn.Parameter(torch.randn(3 * 4, 8, generator=g))

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = img.to(torch.float32) / 255
        x = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)
        f = torch.tanh(x @ self.proj)
        if return_features:
            return f
        return f.sum(1)


det = torch.jit.script(TinyDetector())
det.save(os.path.join(here, 'tiny-detector.pt'))
probe = (torch.arange(2 * 3 * 8 * 8) % 256).to(torch.uint8).reshape(2, 3, 8, 8)
with open(os.path.join(here, 'tiny-detector-expected.json'), 'w') as f:
    json.dump({'input': 'arange(2*3*8*8) % 256 as uint8, shape [2, 3, 8, 8]', 'features': det(probe, return_features=True).tolist()}, f)

# EDM fid-refs style statistics, stored and compressed.
import numpy as np  # noqa: E402
mu = np.linspace(-1, 1, 6)
sigma = np.diag(np.arange(1, 7, dtype=np.float64)) + 0.1
np.savez(os.path.join(here, 'refs.npz'), mu=mu, sigma=sigma)
np.savez_compressed(os.path.join(here, 'refs-compressed.npz'), mu=mu.astype(np.float32), sigma=sigma)
print('wrote tiny-detector.pt, tiny-detector-expected.json, refs.npz, refs-compressed.npz')
