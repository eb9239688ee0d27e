"""PyTorch eager peer of specs/sunspots_conv1d.model (issue 15), side by side with `modelc bench`.

The same network: three causal Conv1d(16, k=3) with dilations 1, 2, 4 (left zero padding of
2·dilation, as Keras's `padding="causal"`), ELU after each, flatten, Linear(256, 1); input
[N, 16, 1] (PyTorch's [N, 1, 16]). Inference: forward under `inference_mode`; training: one Adam
step on mse (zero_grad, forward, backward, step). 2 threads (BENCH_THREADS), synthetic data.

Rounds alternate modelc and PyTorch (these machines are noisy) and the medians of the rounds are
compared. Run from the project root after `cargo build --release`:

    ~/.cache/modelc-peers/bin/python benches/peers/sunspots_conv1d.py target/release/modelc 5 32

(arguments: the modelc binary, rounds, batch). Prints one JSON object: medians in samples/s
and the ratios modelc / PyTorch.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

THREADS = int(os.environ.get("BENCH_THREADS", 2))
SPEC = "specs/sunspots_conv1d.model"


class CausalConv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.dilations = (1, 2, 4)
        self.convs = nn.ModuleList(
            nn.Conv1d(c, 16, 3, dilation=d) for c, d in ((1, 1), (16, 2), (16, 4)))
        self.out = nn.Linear(16 * 16, 1)

    def forward(self, x):  # x: [N, 16, 1], channels last as in the spec
        h = x.transpose(1, 2)
        for conv, d in zip(self.convs, self.dilations):
            h = F.elu(conv(F.pad(h, (2 * d, 0))))
        return self.out(h.flatten(1))


def rate(fn, batch, reps=7, min_s=0.25):
    """Median samples/s over `reps` repeats of enough calls to last `min_s`, after a warm-up."""
    for _ in range(5):
        fn()
    t = time.perf_counter()
    fn()
    inner = max(1, int(min_s / max(time.perf_counter() - t, 1e-7)))
    per_call = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        per_call.append((time.perf_counter() - t) / inner)
    return batch / statistics.median(per_call)


def torch_rates(batch):
    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1) if not getattr(torch_rates, "set", False) else None
    torch_rates.set = True
    torch.manual_seed(0)
    model = CausalConv1dNet()
    x, y = torch.randn(batch, 16, 1), torch.randn(batch, 1)
    with torch.inference_mode():
        model.eval()
        infer = rate(lambda: model(x), batch)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-2)

    def step():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(x), y).backward()
        opt.step()

    return infer, rate(step, batch, reps=5, min_s=0.5)


def modelc_rate(binary, batch, mode):
    out = subprocess.run(
        [binary, "bench", SPEC, "--batch", str(batch), "--mode", mode, "--threads",
         str(THREADS), "--iterations", "200", "--format", "json"],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["samples_per_sec"]


def main():
    binary, rounds = sys.argv[1], int(sys.argv[2])
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 32
    runs = {k: [] for k in ("modelc_infer", "torch_infer", "modelc_train", "torch_train")}
    for _ in range(rounds):
        runs["modelc_infer"].append(modelc_rate(binary, batch, "infer"))
        runs["modelc_train"].append(modelc_rate(binary, batch, "train"))
        infer, train = torch_rates(batch)
        runs["torch_infer"].append(infer)
        runs["torch_train"].append(train)
    med = {k: round(statistics.median(v), 1) for k, v in runs.items()}
    ratios = {
        "infer_vs_torch": round(med["modelc_infer"] / med["torch_infer"], 2),
        "train_vs_torch": round(med["modelc_train"] / med["torch_train"], 2),
    }
    print(json.dumps({"batch": batch, "threads": THREADS, "medians": med, "ratios": ratios}))


if __name__ == "__main__":
    main()
