#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's real inputs, and refreshes the committed
corpus tests/fuzz_corpus/<target>/ from a minimized fuzz corpus.

Usage (from the repository root, after `cargo build`):

    python3 fuzz/seed_corpus.py seed [target/debug/modelc]
    python3 fuzz/seed_corpus.py cap TARGET FILES   # keep the FILES inputs covering most edges
    python3 fuzz/seed_corpus.py commit TARGET...   # after `cargo +nightly fuzz cmin TARGET`

- parse, check: every .model file in the repository;
- load_plan: the inference, training and -O0 plans of the shipped and test specs, written by
  `modelc compile` (the binary given, default target/debug/modelc);
- load_weights: the interpreter fixtures' safetensors files, each behind the byte that picks
  its plan in `fuzz_entry::load_weights` (0 seed CNN, 1 Embedding + LSTM, 2 folded batch norm);
- load_source: the CSV, IDX and NPY fixtures, each behind the selector byte (and, for a labelled
  IDX/NPY pair, the 2-byte split offset) that `fuzz_entry::load_source` reads.

The committed corpus (tests/fuzz_corpus/<target>/) is copied in too, so a fuzzing run starts
from everything found before.
"""

import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
DATA = ROOT / "tests" / "fixtures" / "data"
MAX_LEN = 65536


def put(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def model_files():
    skip = {"target", "fuzz", ".git"}
    for path in sorted(ROOT.rglob("*.model")):
        if not skip & set(path.relative_to(ROOT).parts):
            yield path


def seed_specs():
    for path in model_files():
        name = "-".join(path.relative_to(ROOT).with_suffix("").parts)
        data = path.read_bytes()
        put("parse", name, data)
        put("check", name, data)


def long_texts():
    """Long and repetitive specs libFuzzer would take hours to grow (it adds a few bytes at a
    time): the inputs where a stage quadratic in line length or spec size shows as a hang."""
    layers = "".join(f"    dense({8 + i % 4}, activation: relu)\n" for i in range(1500))
    pipe = " |> ".join("relu()" for _ in range(4000))
    yield "long-line", f"model M(x: f32[N, 4]) {{\n    dense(4) |> {pipe} |> dense(2)\n}}\n"
    yield "long-layers", f"model M(x: f32[N, 4]) {{\n{layers}    dense(2)\n}}\n"
    yield "long-bidi-comment", "model M(x: f32[N, 4]) {\n    dense(2) // " + "\u202e" * 20000 + "\n}\n"
    yield "long-nul-comment", "model M(x: f32[N, 4]) {\n    dense(2) // " + "\0" * 60000 + "\n}\n"
    errors = "".join(f"    dense({i}, activaton: relu, {'x' * 40}: 1)\n" for i in range(1, 800))
    yield "long-errors", f"model M(x: f32[N, 4]) {{\n{errors}}}\n"
    lets = "".join(f"    let v{i} = v{i - 1} |> dense(4)\n" for i in range(1, 1500))
    yield "long-lets", f"model M(v0: f32[N, 4]) {{\n{lets}    v1499\n}}\n"


def seed_long_texts():
    for name, text in long_texts():
        data = text.encode()[:MAX_LEN]
        put("parse", name, data)
        put("check", name, data)


def seed_plans(modelc):
    specs = sorted((ROOT / "specs").glob("*.model"))
    specs += sorted((ROOT / "tests" / "passes").glob("*.model"))
    specs += sorted((ROOT / "tests" / "fixtures" / "train").glob("*.model"))
    out = CORPUS / "load_plan"
    out.mkdir(parents=True, exist_ok=True)
    variants = {"infer": ["--mode", "infer"], "train": ["--mode", "train"], "o0": ["-O", "0"]}
    for spec in specs:
        for tag, flags in variants.items():
            plan = out / f"{spec.stem}-{tag}"
            cmd = [modelc, "compile", str(spec), *flags, "-o", str(plan)]
            result = subprocess.run(cmd, capture_output=True, check=False)
            if result.returncode != 0:
                print(f"skipped {spec.name} {tag}: {result.stderr.decode()[:200]}")


def seed_weights():
    interp = ROOT / "tests" / "fixtures" / "interp"
    for selector, name in [(0, "cnn"), (1, "lstm")]:
        data = (interp / f"{name}.safetensors").read_bytes()
        put("load_weights", f"fixture-{name}", bytes([selector]) + data)
        # The header alone: offsets that point past the end of the file.
        header_len = struct.unpack("<Q", data[:8])[0]
        put("load_weights", f"fixture-{name}-header-only", bytes([selector]) + data[: 8 + header_len])


def selector(kind, labelled=False, classes=0, shape=False, header=False, values=False):
    return bytes(
        [
            {"csv": 0, "idx": 1, "npy": 2}[kind]
            | labelled << 2
            | classes << 3
            | shape << 5
            | header << 6
            | values << 7
        ]
    )


def pair(kind, features, labels, **options):
    """A labelled IDX/NPY input: selector, split offset, features file, labels file."""
    return selector(kind, labelled=True, **options) + struct.pack("<H", len(features)) + features + labels


def seed_sources():
    read = lambda name: (DATA / name).read_bytes()
    for path in sorted(DATA.glob("*.csv")):
        text = path.read_bytes()
        put("load_source", f"csv-{path.stem}", selector("csv", labelled=True, classes=2, header=True) + text)
        put("load_source", f"csv-{path.stem}-values", selector("csv", labelled=True, header=True, values=True) + text)
    put("load_source", "csv-points-noheader", selector("csv", labelled=True, classes=2) + read("points_noheader.csv"))
    put("load_source", "csv-points-unlabelled", selector("csv", header=True) + read("points.csv"))
    digits = b"".join((ROOT / "data" / "digits.csv").read_bytes().splitlines(keepends=True)[:60])
    put("load_source", "csv-digits-head", selector("csv", labelled=True, classes=2, header=True) + digits)
    sunspots = (ROOT / "data" / "sunspots.csv").read_bytes()
    put("load_source", "csv-sunspots", selector("csv", header=True) + sunspots)

    for images in ["images.idx", "images.idx.gz", "bad_magic.idx", "overflow.idx", "truncated.idx"]:
        put("load_source", f"idx-{images}", selector("idx", classes=2) + read(images))
    for labels in ["labels.idx", "labels4.idx", "labels_range.idx"]:
        put("load_source", f"idx-images-{labels}", pair("idx", read("images.idx"), read(labels), classes=2))
    put("load_source", "idx-gz-labels", pair("idx", read("images.idx.gz"), read("labels.idx"), classes=2))

    for path in sorted(DATA.glob("x_*.npy")):
        x = path.read_bytes()
        put("load_source", f"npy-{path.stem}", selector("npy") + x)
        put("load_source", f"npy-{path.stem}-y_3", pair("npy", x, read("y_3.npy"), classes=2))
    put("load_source", "npy-x_f4-y_i8-values", pair("npy", read("x_f4.npy"), read("y_i8.npy"), values=True))


def copy_committed():
    committed = ROOT / "tests" / "fuzz_corpus"
    if not committed.is_dir():
        return
    for folder in committed.iterdir():
        for f in folder.iterdir():
            put(folder.name, f.name, f.read_bytes())


# The seeds tests/fuzz_replay.rs expects a specific outcome of: committed name -> seed name.
NAMED = {
    "parse": {
        "seed-seed_cnn": "specs-seed_cnn",
        "seed-deep_nesting": "tests-ui-syntax-deep_nesting",
        "seed-bom": "tests-ui-syntax-bom",
        "seed-unterminated_comment": "tests-ui-syntax-unterminated_comment",
        **{f"seed-{name}": name for name, _ in long_texts()},
    },
    "check": {
        "seed-seed_cnn": "specs-seed_cnn",
        "seed-seed_rnn": "specs-seed_rnn",
        "seed-text_transformer": "specs-text_transformer",
        "seed-param_bytes_limit": "tests-ui-shapes-param_bytes_limit",
        "seed-window_too_large": "tests-ui-shapes-window_too_large",
        "seed-dim_overflow": "tests-ui-syntax-dim_overflow",
        **{f"seed-{name}": name for name, _ in long_texts()},
    },
    "load_plan": {
        "seed-seed_cnn-infer": "seed_cnn-infer",
        "seed-seed_rnn-train": "seed_rnn-train",
        "seed-residual-o0": "residual-o0",
    },
    "load_weights": {},
    "load_source": {
        "seed-csv-points": "csv-points",
        "seed-csv-ragged": "csv-ragged",
        "seed-csv-nan": "csv-nan",
        "seed-idx-images-labels": "idx-images-labels.idx",
        "seed-idx-gz-labels": "idx-gz-labels",
        "seed-idx-bad_magic": "idx-bad_magic.idx",
        "seed-idx-images-labels4": "idx-images-labels4.idx",
        "seed-npy-x_f4": "npy-x_f4",
        "seed-npy-x_fortran": "npy-x_fortran",
    },
}


def commit(target, modelc):
    """tests/fuzz_corpus/TARGET/ = its crash-* and seed-* files, the named seeds, and the
    (minimized) fuzz corpus without files over MAX_LEN or duplicates."""
    out = ROOT / "tests" / "fuzz_corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    keep = {f.name: f.read_bytes() for f in out.iterdir() if f.name.startswith(("crash-", "seed-"))}
    for f in out.iterdir():
        f.unlink()
    seeds = {
        "parse": seed_specs, "check": seed_specs, "load_plan": lambda: seed_plans(modelc),
        "load_weights": seed_weights, "load_source": seed_sources,
    }
    seeds[target]()
    for name, seed in NAMED[target].items():
        keep[name] = (CORPUS / target / seed).read_bytes()
    known = set(keep.values())
    added = 0
    for f in sorted((CORPUS / target).iterdir()):
        data = f.read_bytes()
        if len(data) > MAX_LEN or data in known or not is_hash_name(f.name):
            continue
        known.add(data)
        keep[f.name] = data
        added += 1
    for name, data in keep.items():
        (out / name).write_bytes(data)
    size = sum(len(d) for d in keep.values())
    print(f"{target}: {len(keep)} files ({added} from the fuzz corpus), {size} bytes")


def cap(target, count):
    """Keeps at most `count` inputs of fuzz/corpus/TARGET: a greedy cover of the edges the
    whole corpus reaches (largest gain first, smaller file on ties), from the per-file features
    of a libFuzzer merge (run with -use_counters=0, so features are edges). Prints the share of
    edges kept."""
    binary = ROOT / "fuzz" / "target" / "x86_64-unknown-linux-gnu" / "release" / target
    with tempfile.TemporaryDirectory() as tmp:
        control = Path(tmp) / "control"
        empty = Path(tmp) / "empty"
        empty.mkdir()
        cmd = [str(binary), "-merge=1", "-use_counters=0", "-rss_limit_mb=2048", "-timeout=10",
               f"-merge_control_file={control}", str(empty), str(CORPUS / target)]
        subprocess.run(cmd, capture_output=True, check=True)
        lines = control.read_text().splitlines()
    n = int(lines[0])
    files = [Path(f) for f in lines[2:2 + n]]
    features = {}
    for line in lines[2 + n:]:
        parts = line.split()
        if parts and parts[0] == "FT":
            features[int(parts[1])] = set(parts[2:])
    sizes = [f.stat().st_size for f in files]
    every = set().union(*features.values()) if features else set()
    left, chosen = set(every), []
    while left and len(chosen) < count:
        best = max(features, key=lambda i: (len(features[i] & left), -sizes[i]))
        if not features[best] & left:
            break
        chosen.append(best)
        left -= features[best]
    keep = {files[i].name for i in chosen}
    for f in (CORPUS / target).iterdir():
        if f.name not in keep:
            f.unlink()
    print(f"{target}: kept {len(keep)} of {n} files, {len(every) - len(left)} of {len(every)} edges")


def is_hash_name(name):
    """Files libFuzzer wrote (named by their SHA-1); the seed files themselves are re-added by
    name only when NAMED lists them."""
    return len(name) == 40 and all(c in "0123456789abcdef" for c in name)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "seed"
    modelc = str(ROOT / "target" / "debug" / "modelc")
    if mode == "commit":
        for target in sys.argv[2:]:
            commit(target, modelc)
        return
    if mode == "cap":
        cap(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 2:
        modelc = sys.argv[2]
    seed_specs()
    seed_long_texts()
    seed_plans(modelc)
    seed_weights()
    seed_sources()
    copy_committed()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        big = [f.name for f in files if f.stat().st_size > MAX_LEN]
        print(f"{folder.name}: {len(files)} files" + (f" (longer than {MAX_LEN}: {big})" if big else ""))


if __name__ == "__main__":
    main()
