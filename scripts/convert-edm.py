#!/usr/bin/env python3
"""Convert an NVlabs EDM network snapshot into a dmd-torch teacher file.

    PYTHONPATH=/path/to/edm python3 scripts/convert-edm.py network-snapshot.pkl edm.pt
    PYTHONPATH=/path/to/edm python3 scripts/convert-edm.py network-snapshot.pkl edm.safetensors

The snapshot is the pickle EDM's training loop writes (and the pretrained `edm-*.pkl` files); the
network under the key `ema` (change with --key) must be an EDMPrecond. Its constructor arguments
(EDM records them as `init_kwargs`) become the config; its state_dict is copied unchanged, so the keys
are EDM's. Output formats:

  .pt           torch.save({"config": <JSON string>, "state_dict": {key: tensor}}) -- a plain dict, the
                only kind of torch.save content libtorch's unpickler reads
  .safetensors  the same tensors; the config JSON in __metadata__["config"]

Only PyTorch is needed (plus the EDM repository on PYTHONPATH so that the pickle can be loaded).
"""
import argparse
import json
import math
import os
import pickle
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _safetensors import write_safetensors  # noqa: E402

KNOWN = {
    'img_resolution', 'img_channels', 'label_dim', 'use_fp16', 'sigma_min', 'sigma_max', 'sigma_data', 'model_type',
    'augment_dim', 'model_channels', 'channel_mult', 'channel_mult_emb', 'channel_mult_noise', 'num_blocks',
    'attn_resolutions', 'dropout', 'label_dropout', 'embedding_type', 'encoder_type', 'decoder_type', 'resample_filter',
}


def fail(msg):
    print(f'convert-edm: {msg}', file=sys.stderr)
    sys.exit(1)


def plain(v):
    """JSON-friendly copies of constructor arguments (tuples -> lists, inf -> None)."""
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, float) and math.isinf(v):
        return None
    if hasattr(v, 'item') and callable(v.item):
        return v.item()
    return v


def edm_config(net):
    if type(net).__name__ != 'EDMPrecond':
        fail(f'the network is a {type(net).__name__}; dmd-torch distills EDMPrecond networks (VP/VE/iDDPM preconditioning is not supported)')
    kwargs = getattr(net, 'init_kwargs', None)
    if kwargs is None:
        fail('the network has no init_kwargs (it was not pickled by EDM\'s persistence module); cannot recover its configuration')
    if getattr(net, 'init_args', ()):
        fail('the network was constructed with positional arguments; expected EDM\'s keyword-only construction')
    config = {k: plain(v) for k, v in dict(kwargs).items()}
    config.setdefault('model_type', 'DhariwalUNet')
    unknown = sorted(set(config) - KNOWN)
    if unknown:
        fail(f'unknown constructor argument(s) {unknown}; this converter knows EDM\'s EDMPrecond/SongUNet/DhariwalUNet arguments')
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('src', help='EDM network snapshot (.pkl)')
    ap.add_argument('dst', help='output teacher file (.pt or .safetensors)')
    ap.add_argument('--key', default='ema', help='entry of the snapshot holding the network (default: ema)')
    a = ap.parse_args()
    if not os.path.isfile(a.src):
        fail(f'{a.src}: no such file')
    try:
        with open(a.src, 'rb') as f:
            data = pickle.load(f)
    except ModuleNotFoundError as e:
        fail(f'{a.src}: unpickling needs the EDM repository on PYTHONPATH ({e})')
    net = data.get(a.key) if isinstance(data, dict) else None
    if net is None:
        keys = list(data) if isinstance(data, dict) else type(data).__name__
        fail(f'{a.src}: no network under key {a.key!r} (found {keys})')
    config = edm_config(net)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    bad = [k for k, v in state.items() if not v.is_floating_point()]
    if bad:
        fail(f'{bad[0]} is not a floating-point tensor')
    if a.dst.endswith('.safetensors'):
        write_safetensors(a.dst, state, {'config': json.dumps(config), 'format': 'dmd-torch/edm'})
    else:
        tmp = a.dst + '.tmp'
        torch.save({'config': json.dumps(config), 'state_dict': dict(state)}, tmp)
        os.replace(tmp, a.dst)
    n = sum(t.numel() for t in state.values())
    print(f'wrote {a.dst}: {config["model_type"]}, {len(state)} tensors, {n} values')


if __name__ == '__main__':
    main()
