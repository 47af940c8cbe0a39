"""A stand-in for an NVlabs EDM snapshot, for testing scripts/convert-edm.py without the EDM
repository: an object of a class named EDMPrecond with EDM's `init_kwargs` and a `state_dict()`.
Usage: python3 edm_standin.py FIXTURE.safetensors CONFIG_JSON OUT.pkl  (this file's folder must be on
PYTHONPATH when the pickle is read, as the EDM repository must be for real snapshots)."""
import json
import pickle
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch


class EDMPrecond:
    def __init__(self, init_kwargs, state):
        self.init_kwargs = init_kwargs
        self.init_args = ()
        self._state = state

    def state_dict(self):
        return self._state


def read_weights(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = OrderedDict()
    for k, v in header.items():
        if not k.startswith('weights/'):
            continue
        s, e = v['data_offsets']
        arr = np.frombuffer(b[8 + n + s:8 + n + e], dtype=np.float32).copy().reshape(v['shape'])
        out[k[len('weights/'):]] = torch.from_numpy(arr)
    return out


if __name__ == '__main__':
    import edm_standin  # pickle the class under its importable module name
    fixture, config, out = sys.argv[1:4]
    kwargs = json.loads(config)
    kwargs['sigma_max'] = float('inf')
    net = edm_standin.EDMPrecond(kwargs, read_weights(fixture))
    with open(out, 'wb') as f:
        pickle.dump({'ema': net, 'augment_pipe': None}, f)
