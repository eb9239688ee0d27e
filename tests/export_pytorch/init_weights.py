"""Writes Keras-initialized weights of an exported package's model (argv: package dir, output)."""
import sys

import torch

sys.path.insert(0, sys.argv[1])
import model as M  # noqa: E402

cls = next(v for v in vars(M).values()
           if isinstance(v, type) and issubclass(v, torch.nn.Module) and getattr(v, "PARAMS", None))
m = cls()
m.keras_init(5)
m.save_weights(sys.argv[2])
