#!/usr/bin/env python3
"""Write dmd-torch's LPIPS weights file from user-supplied weights (nothing is downloaded):

    python3 scripts/convert-lpips.py vgg16-397923af.pth vgg.pth lpips-vgg.safetensors

  vgg16-397923af.pth  torchvision's VGG16 ImageNet weights (a state dict with features.N.weight/bias)
  vgg.pth             the lpips package's linear heads for VGG, v0.1 (lpips/weights/v0.1/vgg.pth:
                      lin0.model.1.weight ... lin4.model.1.weight)

The output holds the 13 convolutions of `features` (indices 0..28, torchvision key names) and the
five linear heads (the lpips package's key names). Only PyTorch is needed."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _safetensors import write_safetensors  # noqa: E402

CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
CHANNELS = [64, 128, 256, 512, 512]


def fail(msg):
    print(f'convert-lpips: {msg}', file=sys.stderr)
    sys.exit(1)


def load(path):
    if not os.path.isfile(path):
        fail(f'{path}: no such file')
    sd = torch.load(path, map_location='cpu')
    if hasattr(sd, 'state_dict'):
        sd = sd.state_dict()
    if not isinstance(sd, dict):
        fail(f'{path}: expected a state dict, got {type(sd).__name__}')
    return {k.replace('module.', '', 1) if k.startswith('module.') else k: v for k, v in sd.items()}


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    vgg, lin = load(sys.argv[1]), load(sys.argv[2])
    out = {}
    for i in CONVS:
        for part in ('weight', 'bias'):
            k = f'features.{i}.{part}'
            if k not in vgg:
                fail(f'{sys.argv[1]}: missing {k} (is this torchvision\'s vgg16 state dict?)')
            out[k] = vgg[k].float()
    for k, c in enumerate(CHANNELS):
        key = f'lin{k}.model.1.weight'
        if key not in lin:
            fail(f'{sys.argv[2]}: missing {key} (is this the lpips package\'s v0.1 vgg.pth?)')
        if tuple(lin[key].shape) != (1, c, 1, 1):
            fail(f'{sys.argv[2]}: {key} has shape {tuple(lin[key].shape)}, expected (1, {c}, 1, 1)')
        out[key] = lin[key].float()
    write_safetensors(sys.argv[3], out, {'kind': 'lpips-vgg-v0.1'})
    print(f'wrote {sys.argv[3]}: {len(out)} tensors')


if __name__ == '__main__':
    main()
