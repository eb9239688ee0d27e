"""NumPy reference for `cargo bench --bench train -- regression`: 1000 full-batch gradient-descent
steps of linear regression (mse, lr 0.1) on 10,000 x 16 float32 data; prints the best of 5 runs.

Run beside the benchmark, in the same minute (these machines are noisy), with the thread count
the benchmark uses:  OMP_NUM_THREADS=2 python3 benches/peers/regression_numpy.py
"""
import time

import numpy as np

rng = np.random.default_rng(0)
X = rng.standard_normal((10_000, 16)).astype(np.float32)
w_true = rng.standard_normal(16).astype(np.float32)
y = X @ w_true + 0.1 * rng.standard_normal(10_000).astype(np.float32)

best = float("inf")
for _ in range(5):
    w = np.zeros(16, np.float32)
    b = np.float32(0)
    lr = np.float32(0.1)
    start = time.perf_counter()
    for _ in range(1000):
        e = X @ w + b - y
        w -= lr * (np.float32(2 / len(y)) * (X.T @ e))
        b -= lr * np.float32(2) * e.mean()
    best = min(best, time.perf_counter() - start)
print(f"numpy 1000 gd steps: {best * 1e3:.1f} ms")
