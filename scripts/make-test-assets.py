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
