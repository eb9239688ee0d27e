"""PyTorch eager peers of the recurrent layers of the layer issue, side by side with `modelc bench`:
`bidirectional(lstm(32))` (specs/text_bilstm.model) and `gru(64)` (benches/peers/text_gru.model).

The same networks: Embedding(1000, 32) over 60 token ids, then either a bidirectional LSTM(32)
whose two final states are concatenated (Keras's Bidirectional, merge concat) or a GRU(64)
(PyTorch's nn.GRU is Keras's `reset_after: true`, the default), then Linear(·, 10) and softmax.
The BiLSTM spec's `dropout: 0.1` (Keras's input dropout, one mask per sequence) is an
nn.Dropout(0.1) on the embeddings in training. Inference: forward under `inference_mode`;
training: one Adam step on cross-entropy (zero_grad, forward, backward, step). 2 threads
(BENCH_THREADS), batch 64, random token ids.

Rounds alternate modelc and PyTorch (these machines are noisy) and the medians of the rounds
are compared. Run from the project root after `cargo build --release`:

    ~/.cache/modelc-peers/bin/python benches/peers/recurrent_torch.py side-by-side target/release/modelc 5

Prints one JSON object: medians in samples/s and the ratios modelc / PyTorch per model and mode.
"""
import json
import os
import statistics
import subprocess
import sys
import time

T = int(os.environ.get("BENCH_THREADS", "2"))
os.environ["OMP_NUM_THREADS"] = str(T)
BATCH, LENGTH, VOCAB, CLASSES = 64, 60, 1000, 10
SPECS = {"bilstm": "specs/text_bilstm.model", "gru": "benches/peers/text_gru.model"}


def best_rate(fn, samples, reps=5, min_s=0.3):
    fn(); fn()
    rates = []
    for _ in range(reps):
        n = 0; t = time.perf_counter()
        while time.perf_counter() - t < min_s:
            fn(); n += 1
        rates.append(samples * n / (time.perf_counter() - t))
    rates.sort(); return rates[len(rates) // 2]


def peer(name, mode):
    import torch, torch.nn as nn
    torch.set_num_threads(T); torch.set_num_interop_threads(1); torch.manual_seed(0)

    class BiLstm(nn.Module):
        def __init__(s):
            super().__init__()
            s.e = nn.Embedding(VOCAB, 32); s.drop = nn.Dropout(0.1)
            s.rnn = nn.LSTM(32, 32, batch_first=True, bidirectional=True); s.f = nn.Linear(64, CLASSES)

        def forward(s, ids):
            _, (h, _) = s.rnn(s.drop(s.e(ids)))
            return s.f(torch.cat([h[0], h[1]], dim=-1))

    class Gru(nn.Module):
        def __init__(s):
            super().__init__()
            s.e = nn.Embedding(VOCAB, 32); s.rnn = nn.GRU(32, 64, batch_first=True); s.f = nn.Linear(64, CLASSES)

        def forward(s, ids):
            _, h = s.rnn(s.e(ids))
            return s.f(h[0])

    m = BiLstm() if name == "bilstm" else Gru()
    x = torch.randint(0, VOCAB, (BATCH, LENGTH))
    if mode == "infer":
        m.eval()
        with torch.inference_mode():
            return best_rate(lambda: torch.softmax(m(x), -1), BATCH)
    m.train()
    opt = torch.optim.Adam(m.parameters(), 1e-2); lf = nn.CrossEntropyLoss()
    y = torch.randint(0, CLASSES, (BATCH,))

    def step():
        opt.zero_grad(set_to_none=True); lf(m(x), y).backward(); opt.step()
    return best_rate(step, BATCH, reps=3, min_s=0.5)


def side_by_side(modelc, rounds):
    here = os.path.abspath(__file__)
    env = dict(os.environ, BENCH_THREADS=str(T), OMP_NUM_THREADS=str(T))

    def mc(name, mode):
        out = subprocess.run([modelc, "bench", SPECS[name], "--batch", str(BATCH), "--mode", mode,
                              "--threads", str(T), "--format", "json"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["samples_per_sec"]

    def torch_peer(name, mode):
        out = subprocess.run([sys.executable, here, name, mode], capture_output=True, text=True,
                             check=True, env=env).stdout
        return json.loads(out.strip().splitlines()[-1])["samples_per_sec"]

    s = {}
    for _ in range(rounds):
        for name in SPECS:
            for mode in ("infer", "train"):
                s.setdefault(f"modelc_{name}_{mode}", []).append(mc(name, mode))
                s.setdefault(f"torch_{name}_{mode}", []).append(torch_peer(name, mode))
    m = {k: round(statistics.median(v), 1) for k, v in s.items()}
    r = {f"{name}_{mode}_vs_torch": round(m[f"modelc_{name}_{mode}"] / m[f"torch_{name}_{mode}"], 2)
         for name in SPECS for mode in ("infer", "train")}
    return {"medians": m, "ratios": r, "rounds": rounds, "threads": T, "batch": BATCH}


if __name__ == "__main__":
    if sys.argv[1] == "side-by-side":
        print(json.dumps(side_by_side(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps({"samples_per_sec": peer(sys.argv[1], sys.argv[2])}))
