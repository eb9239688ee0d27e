"""ONNX Runtime throughput of two exported seed CNNs side by side (ours and a peer's), batch 64,
2 intra-op threads, alternating the two in rounds so both see the same machine load.

Usage: python ort_speed.py OURS.onnx PEER.onnx [BATCH] [THREADS]
Prints one JSON object: samples/s (median of rounds) for each file and their ratio.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

ours, peer = sys.argv[1], sys.argv[2]
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    x = np.random.default_rng(0).random((batch, 28, 28, 1), dtype=np.float32)
    return lambda: s.run(None, {i.name: x})


def rate(fn, seconds=0.5):
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        fn()
        n += 1
    return batch * n / (time.perf_counter() - t)


runs = {"ours": session(ours), "peer": session(peer)}
for fn in runs.values():
    fn(), fn()
rates = {k: [] for k in runs}
for _ in range(7):
    for k, fn in runs.items():
        rates[k].append(rate(fn))
median = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
print(json.dumps({
    "batch": batch,
    "threads": threads,
    "onnxruntime": ort.__version__,
    "ours_sps": round(median["ours"]),
    "peer_sps": round(median["peer"]),
    "ours_over_peer": round(median["ours"] / median["peer"], 3),
}))
