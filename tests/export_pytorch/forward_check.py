"""Opt-in check of an exported package: Keras-initialized weights saved by `save_weights`, the
module's outputs on random inputs written next to them (argv: package dir, work dir)."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
import model as M  # noqa: E402

cls = next(v for v in vars(M).values()
           if isinstance(v, type) and issubclass(v, torch.nn.Module) and getattr(v, "PARAMS", None))
m = cls()
m.keras_init(1)
# Keras's biases start at zero: move every trainable tensor a little so that a bias or table
# that lands in the wrong place shows.
with torch.no_grad():
    g = torch.Generator().manual_seed(2)
    for t in m.parameters():
        if t.requires_grad:
            t += 0.1 * torch.randn(t.shape, generator=g)
work = sys.argv[2]
m.save_weights(os.path.join(work, "w.safetensors"))
m2 = cls()
m2.load_weights(os.path.join(work, "w.safetensors"))
m2.eval()
rng = np.random.default_rng(0)
_, dtype, shape = m.INPUTS[0]
if dtype == "f32":
    x = rng.uniform(-1, 1, (3, *shape)).astype(np.float32)
else:
    ids = [e.num_embeddings for e in m.modules() if isinstance(e, torch.nn.Embedding)]
    x = rng.integers(1, min(ids or [50]), (3, *shape)).astype(np.int32)
    # padding (id 0): a tail of zeros of each row but the first, and a few zeros inside
    for row, length in zip(x[1:], rng.integers(1, shape[0], 2)):
        row[length:] = 0
    x[rng.random(x.shape) < 0.1] = 0
np.save(os.path.join(work, "x.npy"), x)
with torch.no_grad():
    np.save(os.path.join(work, "y_torch.npy"), m2(torch.from_numpy(x)).numpy())
