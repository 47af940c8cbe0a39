#!/usr/bin/env python3
"""Write a pickle of tensors laid out as an NVlabs EDM snapshot's storages are: `pickle.dump` (not
torch.save) of a dict of tensors, so every storage is a `torch.storage._load_from_bytes(<legacy
torch.save stream>)` call, as in `edm-imagenet-64x64-cond-adm.pkl`. The tensor shapes come from a JSON
file ({name: shape}); values are random. Used by `npm run bench:pkl`.

    python3 scripts/make-tensor-pkl.py shapes.json out.pkl
"""
import json
import pickle
import sys

import torch


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    shapes = json.load(open(sys.argv[1]))
    g = torch.Generator().manual_seed(0)
    state = {k: torch.randn(*s, generator=g) if s else torch.randn((), generator=g) for k, s in shapes.items()}
    with open(sys.argv[2], 'wb') as f:
        pickle.dump({'ema_state_dict': state, 'kind': 'dmd-torch bench:pkl'}, f, protocol=4)
    print(f'wrote {sys.argv[2]}: {len(state)} tensors, {sum(t.numel() for t in state.values())} values')


if __name__ == '__main__':
    main()
