"""Prints the largest difference between two modelc weights files with the same tensors."""
import sys

import numpy as np
from safetensors.numpy import load_file

a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
print(max(float(np.abs(a[k] - b[k]).max()) for k in a))
