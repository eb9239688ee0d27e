"""PyTorch eager peer of `specs/text_transformer.model` (2 threads unless BENCH_THREADS says
otherwise): the same two-block post-norm encoder (embedding 1000 x 64 + a learned position
table, per block nn.MultiheadAttention(64, 4 heads) + residual + LayerNorm(eps 1e-3), Linear
64->128 relu -> 64 + residual + LayerNorm, then flatten and Linear(4096, 10)) on batches of 64
sequences of 64 token ids.

    python benches/peers/text_transformer_torch.py infer|train
        one JSON object of samples/s (median of 5 timed runs of >= 0.3 s after warm-up), as
        ../shared/peers/quick_peers.py measures the seed models;
    python benches/peers/text_transformer_torch.py side-by-side MODELC ROUNDS
        (from the project root, after `cargo build --release`) alternates `modelc bench
        specs/text_transformer.model --batch 64 --threads 2 --mode infer|train` with this peer
        ROUNDS times and prints the medians and the ratios modelc / PyTorch as JSON.
"""
import json, os, statistics, subprocess, sys, time

T = int(os.environ.get("BENCH_THREADS", "2"))
os.environ["OMP_NUM_THREADS"] = str(T)
BATCH, LENGTH, VOCAB, WIDTH, HEADS, FF, CLASSES = 64, 64, 1000, 64, 4, 128, 10


def best_rate(fn, samples, reps=5, min_s=0.3):
    fn(); fn()
    rates = []
    for _ in range(reps):
        n = 0; t = time.perf_counter()
        while time.perf_counter() - t < min_s:
            fn(); n += 1
        rates.append(samples * n / (time.perf_counter() - t))
    rates.sort(); return rates[len(rates) // 2]


def peer(what):
    import torch, torch.nn as nn
    torch.set_num_threads(T); torch.set_num_interop_threads(1); torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(s):
            super().__init__()
            s.attn = nn.MultiheadAttention(WIDTH, HEADS, batch_first=True)
            s.n1 = nn.LayerNorm(WIDTH, eps=1e-3); s.n2 = nn.LayerNorm(WIDTH, eps=1e-3)
            s.f1 = nn.Linear(WIDTH, FF); s.f2 = nn.Linear(FF, WIDTH)

        def forward(s, x):
            a, _ = s.attn(x, x, x, need_weights=False)
            x = s.n1(x + a)
            return s.n2(x + s.f2(torch.relu(s.f1(x))))

    class Encoder(nn.Module):
        def __init__(s):
            super().__init__()
            s.e = nn.Embedding(VOCAB, WIDTH); s.pos = nn.Parameter(torch.randn(LENGTH, WIDTH) * 0.05)
            s.b1 = Block(); s.b2 = Block(); s.out = nn.Linear(LENGTH * WIDTH, CLASSES)

        def forward(s, ids):
            x = s.b2(s.b1(s.e(ids) + s.pos))
            return s.out(x.flatten(1))

    m = Encoder()
    x = torch.randint(0, VOCAB, (BATCH, LENGTH))
    if what == "infer":
        m.eval()
        with torch.inference_mode():
            return {"transformer_b64_sps": best_rate(lambda: torch.softmax(m(x), -1), BATCH)}
    opt = torch.optim.Adam(m.parameters(), 1e-3); lf = nn.CrossEntropyLoss()
    y = torch.randint(0, CLASSES, (BATCH,))

    def step():
        opt.zero_grad(set_to_none=True); lf(m(x), y).backward(); opt.step()
    return {"transformer_train_sps": best_rate(step, BATCH, reps=3, min_s=0.5)}


def side_by_side(modelc, rounds):
    here = os.path.abspath(__file__)
    env = dict(os.environ, BENCH_THREADS=str(T), OMP_NUM_THREADS=str(T))
    def mc(mode):
        out = subprocess.run([modelc, "bench", "specs/text_transformer.model", "--batch", str(BATCH),
                              "--mode", mode, "--threads", str(T), "--format", "json"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])["samples_per_sec"]
    def torch_peer(mode):
        out = subprocess.run([sys.executable, here, mode], capture_output=True, text=True,
                             check=True, env=env).stdout
        return next(iter(json.loads(out.strip().splitlines()[-1]).values()))
    s = {}
    for _ in range(rounds):
        for mode in ("infer", "train"):
            s.setdefault(f"modelc_{mode}", []).append(mc(mode))
            s.setdefault(f"torch_{mode}", []).append(torch_peer(mode))
    m = {k: round(statistics.median(v), 1) for k, v in s.items()}
    r = {f"{mode}_vs_torch": round(m[f"modelc_{mode}"] / m[f"torch_{mode}"], 2) for mode in ("infer", "train")}
    return {"medians": m, "ratios": r, "rounds": rounds, "threads": T}


if __name__ == "__main__":
    if sys.argv[1] == "side-by-side":
        print(json.dumps(side_by_side(sys.argv[2], int(sys.argv[3]))))
    else:
        print(json.dumps(peer(sys.argv[1])))
