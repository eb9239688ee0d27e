import csv
import gzip
import math
import os
import struct

import numpy as np
import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- modelc's random streams: ChaCha8 keyed by (seed, purpose, epoch), one stream per index ----

_M32 = 0xFFFFFFFF
PURPOSE_SPLIT, PURPOSE_SHUFFLE, PURPOSE_AUGMENT = 2, 3, 4  # data::rng::Purpose


def _rotl(v, c):
    return ((v << c) & _M32) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & _M32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & _M32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & _M32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & _M32
    s[b] = _rotl(s[b] ^ s[c], 7)


def _double_round(x):
    """One ChaCha double round (the columns, then the diagonals) on the 16 words of `x`,
    Python ints or numpy uint32 lanes alike; ChaCha8 is four of them."""
    _quarter(x, 0, 4, 8, 12)
    _quarter(x, 1, 5, 9, 13)
    _quarter(x, 2, 6, 10, 14)
    _quarter(x, 3, 7, 11, 15)
    _quarter(x, 0, 5, 10, 15)
    _quarter(x, 1, 6, 11, 12)
    _quarter(x, 2, 7, 8, 13)
    _quarter(x, 3, 4, 9, 14)


class Stream:
    """modelc's `data::rng::Stream`: the same 64-bit words, uniforms and permutations."""

    def __init__(self, seed, purpose, epoch, index):
        self.key = list(struct.unpack("<8I", struct.pack("<4Q", seed, purpose, epoch, 0)))
        self.stream = index
        self.counter = 0
        self.words = []
        self.spare = None

    def _block(self):
        s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + self.key + [
            self.counter & _M32, self.counter >> 32, self.stream & _M32, self.stream >> 32]
        x = list(s)
        for _ in range(4):
            _double_round(x)
        self.counter += 1
        out = [(a + b) & _M32 for a, b in zip(x, s)]
        self.words = [out[i] | (out[i + 1] << 32) for i in range(14, -2, -2)]

    def next_u64(self):
        if not self.words:
            self._block()
        return self.words.pop()

    def uniform(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def range(self, lo, hi):
        return lo + (hi - lo) * self.uniform()

    def below(self, n):
        if n <= 1:
            return 0
        top = (1 << 64) - 1
        zone = top - (top % n) - 1
        while True:
            v = self.next_u64()
            if v <= zone:
                return v % n

    @classmethod
    def started(cls, seed, purpose, epoch, index, first):
        """The stream with its first block's words already computed (`first_blocks`)."""
        st = cls(seed, purpose, epoch, index)
        st.counter, st.words = 1, first
        return st

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        r = math.sqrt(-2.0 * math.log(1.0 - self.uniform()))
        theta = 2.0 * math.pi * self.uniform()
        self.spare = r * math.sin(theta)
        return r * math.cos(theta)

    def permutation(self, n):
        p = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            p[i], p[j] = p[j], p[i]
        return p


def first_blocks(seed, purpose, epoch, n):
    """The first block of streams 0..n-1 at once (numpy uint32 lanes, the same rounds as
    `Stream._block`): per stream its words in `Stream.words` order."""
    key = struct.unpack("<8I", struct.pack("<4Q", seed, purpose, epoch, 0))
    index = np.arange(n, dtype=np.uint64)
    s = [np.full(n, v, dtype=np.uint32) for v in (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574) + key]
    s += [np.zeros(n, np.uint32), np.zeros(n, np.uint32),
          (index & np.uint64(_M32)).astype(np.uint32), (index >> np.uint64(32)).astype(np.uint32)]
    x = [v.copy() for v in s]
    for _ in range(4):
        _double_round(x)
    out = [(a + b).astype(np.uint64) for a, b in zip(x, s)]
    words = np.stack([out[i] | (out[i + 1] << np.uint64(32)) for i in range(14, -2, -2)], axis=1)
    return words.tolist()


def split_rows(n, split, ordered, strata=None):
    """modelc's `data::split`: (train, validation, test) sorted rows. round(n * validation)
    validation and round(n * test) test rows; a series keeps time order (train, validation, test);
    otherwise one seeded permutation dealt out validation first, then test, the rest training,
    class by class with `stratify` (largest remainders first, ties to the smaller class id)."""
    if split is None:
        return list(range(n)), [], []
    validation, test, stratify, seed = split
    n_val = min(int(math.floor(n * validation + 0.5)), n)
    n_test = min(int(math.floor(n * test + 0.5)), n - n_val)
    if ordered:
        n_train = n - n_val - n_test
        return list(range(n_train)), list(range(n_train, n_train + n_val)), list(range(n_train + n_val, n))
    perm = Stream(seed, PURPOSE_SPLIT, 0, n).permutation(n)
    if stratify and strata is not None and len(strata) == n:
        val, tst, train = _stratified(perm, strata, validation, test, n_val, n_test)
    else:
        val, tst, train = perm[:n_val], perm[n_val:n_val + n_test], perm[n_val + n_test:]
    return sorted(train), sorted(val), sorted(tst)


def _stratified(perm, strata, validation, test, n_val, n_test):
    classes = {}
    for row in perm:
        classes.setdefault(int(strata[row]), []).append(row)
    rows = [classes[k] for k in sorted(classes)]
    sizes = [len(r) for r in rows]
    val_q = _quotas(sizes, validation, n_val, sizes)
    test_q = _quotas(sizes, test, n_test, [s - q for s, q in zip(sizes, val_q)])
    val, tst, train = [], [], []
    for r, v, t in zip(rows, val_q, test_q):
        val += r[:v]
        tst += r[v:v + t]
        train += r[v + t:]
    return val, tst, train


def _quotas(sizes, fraction, total, room):
    exact = [s * fraction for s in sizes]
    q = [min(int(math.floor(e)), r) for e, r in zip(exact, room)]
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - math.floor(exact[i])), i))
    left = max(total - sum(q), 0)
    while left > 0:
        gave = False
        for i in order:
            if left == 0:
                break
            if q[i] < room[i]:
                q[i] += 1
                left -= 1
                gave = True
        if not gave:
            break
    return q


def strata_of(y):
    """Each row's class for `stratify`: the class id, or the first largest entry of its row."""
    if y is None:
        return None
    if np.issubdtype(y.dtype, np.integer):
        return [int(v) for v in y.reshape(len(y), -1)[:, 0]] if y.ndim > 1 else [int(v) for v in y]
    rows = y.reshape(len(y), -1)
    out = []
    for row in rows:
        best = 0
        for i, v in enumerate(row):
            if v > row[best]:
                best = i
        out.append(best)
    return out


# ---- sources ----------------------------------------------------------------------------------

def read_csv(path, label, label_class, features, header):
    """Rows of a CSV file: features as f32, the label as a class id or a value (or None)."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    names = rows[0] if header else []
    rows = rows[1:] if header else rows

    def column(ref):
        return names.index(ref) if isinstance(ref, str) else ref

    lab = None if label is None else column(label)
    if features is None:
        cols = [i for i in range(len(rows[0])) if i != lab]
    else:
        cols = [column(c) for c in features]
    x = np.array([[float(r[i]) for i in cols] for r in rows], dtype=np.float32)
    if lab is None:
        return x, None
    if label_class:
        return x, np.array([int(float(r[lab])) for r in rows], dtype=np.int64)
    return x, np.array([[float(r[lab])] for r in rows], dtype=np.float32)


def read_idx(path):
    """An IDX file (gzipped or not) as an array."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    kind, rank = data[2], data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[kind]
    return np.frombuffer(data[4 + 4 * rank:], dtype=dtype).reshape(dims)


# ---- map steps (whole data set, before batching) ---------------------------------------------

def _axis_weights(src, dst):
    scale = src / dst
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    floor = np.floor(pos)
    lo = np.minimum(np.maximum(floor, 0), src - 1).astype(np.int64)
    hi = np.minimum(np.maximum(np.ceil(pos), 0), src - 1).astype(np.int64)
    return lo, hi, (pos - floor).astype(np.float32)


def resize(x, height, width):
    """Bilinear resize of [n, h, w, c] images, half-pixel centres (modelc's `resize`)."""
    y0, y1, fy = _axis_weights(x.shape[1], height)
    x0, x1, fx = _axis_weights(x.shape[2], width)
    fx = fx[None, None, :, None]
    fy = fy[None, :, None, None]
    top = x[:, y0][:, :, x0] + (x[:, y0][:, :, x1] - x[:, y0][:, :, x0]) * fx
    bottom = x[:, y1][:, :, x0] + (x[:, y1][:, :, x1] - x[:, y1][:, :, x0]) * fx
    return (top + (bottom - top) * fy).astype(np.float32)


def fit(x, rows, standardize):
    """Per-last-axis statistics over the training rows (f64 sums), as modelc fits them."""
    a = x[rows].astype(np.float64).reshape(-1, x.shape[-1])
    if standardize:
        shift = a.mean(axis=0) if len(a) else np.zeros(x.shape[-1])
        scale = np.sqrt(((a - shift) ** 2).mean(axis=0)) if len(a) else np.ones(x.shape[-1])
    else:
        shift = a.min(axis=0)
        scale = a.max(axis=0) - shift
    scale = np.where(scale > 0, scale, 1.0)
    return shift.astype(np.float32), scale.astype(np.float32)


def apply_map(steps, x, y, train_rows_of):
    """The `map` steps in order; `standardize`/`normalize` fitted on the training rows
    (`train_rows_of(n)`: the split of the samples as they are at that step)."""
    fitted = []
    for step in steps:
        kind = step[0]
        if kind == "moving_average":  # centred over consecutive samples, shorter at the ends
            before, after, n = (step[1] - 1) // 2, step[1] // 2, len(x)
            x = np.stack([x[max(t - before, 0):min(t + after, n - 1) + 1].sum(axis=0, dtype=np.float32)
                          / np.float32(min(t + after, n - 1) + 1 - max(t - before, 0))
                          for t in range(n)]).astype(np.float32)
        elif kind == "window":  # (size consecutive samples, the one horizon steps after them)
            size, horizon = step[1], step[2]
            flat = x.reshape(len(x), -1)
            m = len(x) + 1 - size - horizon
            x = np.stack([flat[t:t + size] for t in range(m)])
            y = np.stack([flat[t + size + horizon - 1] for t in range(m)])
        elif kind == "reshape":
            x = x.reshape((x.shape[0],) + tuple(step[1]))
        elif kind == "scale":
            x = (x * np.float32(step[1]) + np.float32(step[2])).astype(np.float32)
        elif kind == "resize":
            x = resize(x, step[1], step[2])
        elif kind in ("standardize", "normalize"):
            shift, scale = step[1] or fit(x, train_rows_of(len(x)), kind == "standardize")
            fitted.append((kind, shift, scale))
            x = ((x - shift) / scale).astype(np.float32)
        elif kind == "one_hot":
            y = np.eye(step[1] or int(y.max()) + 1, dtype=np.float32)[y]
        elif kind == "pad":
            out = np.full((x.shape[0], step[1]), step[2], dtype=x.dtype)
            keep = min(step[1], x.shape[1])
            out[:, :keep] = x[:, :keep]
            x = out
        else:
            raise ValueError(f"unknown map step {kind}")
    return x, y, fitted


# ---- augment steps (training samples, one random stream per sample and epoch) ---------------

def _sample(img, sy, sx):
    """Bilinear samples of [h, w, c] at float32 positions, 0 outside (read from the image with a
    border of zeros: every position outside lands on the border)."""
    h, w = img.shape[0], img.shape[1]
    y0f, x0f = np.floor(sy), np.floor(sx)
    fy, fx = (sy - y0f)[..., None], (sx - x0f)[..., None]
    y0 = np.clip(y0f, -1, h).astype(np.int64) + 1
    x0 = np.clip(x0f, -1, w).astype(np.int64) + 1
    y1 = np.clip(y0f + 1, -1, h).astype(np.int64) + 1
    x1 = np.clip(x0f + 1, -1, w).astype(np.int64) + 1
    framed = np.zeros((h + 2, w + 2) + img.shape[2:], dtype=img.dtype)
    framed[1:h + 1, 1:w + 1] = img
    one = np.float32(1)
    return (framed[y0, x0] * ((one - fy) * (one - fx)) + framed[y0, x1] * ((one - fy) * fx)
            + framed[y1, x0] * (fy * (one - fx)) + framed[y1, x1] * (fy * fx))


def _affine(img, a):
    h, w = img.shape[0], img.shape[1]
    cy, cx = np.float32((h - 1) / 2), np.float32((w - 1) / 2)
    dy = (np.arange(h, dtype=np.float32) - cy)[:, None]
    dx = (np.arange(w, dtype=np.float32) - cx)[None, :]
    a = [np.float32(v) for v in a]
    return _sample(img, cy + a[0] * dy + a[1] * dx, cx + a[2] * dy + a[3] * dx).astype(np.float32)


def augment(steps, img, rng):
    """modelc's `augment` steps on one [h, w, c] sample with its stream."""
    for step in steps:
        kind = step[0]
        if kind == "flip":
            _, horizontal, vertical, p = step
            if horizontal and rng.uniform() < p:
                img = img[:, ::-1]
            if vertical and rng.uniform() < p:
                img = img[::-1]
        elif kind == "rotate":
            angle = np.float32(math.radians(rng.range(-step[1], step[1])))
            s, c = np.sin(angle), np.cos(angle)
            img = _affine(img, [c, s, -s, c])
        elif kind == "zoom":
            inv = np.float32(1) / np.float32(rng.range(1.0 - step[1], 1.0 + step[1]))
            img = _affine(img, [inv, 0, 0, inv])
        elif kind == "crop":
            _, size, pad = step
            h, w = img.shape[0], img.shape[1]
            top = rng.below(max(h + 2 * pad + 1 - size, 0))
            left = rng.below(max(w + 2 * pad + 1 - size, 0))
            padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
            img = padded[top:top + size, left:left + size]
        elif kind == "noise":
            flat = img.reshape(-1).copy()
            for i in range(flat.size):
                flat[i] += np.float32(step[1] * rng.normal())
            img = flat.reshape(img.shape)
        else:
            raise ValueError(f"unknown augment step {kind}")
    return np.ascontiguousarray(img, dtype=np.float32)


# ---- the data set and its sampler ------------------------------------------------------------

class Split(Dataset):
    """One split of the pipeline: samples (after `map`), augmented per epoch when training."""

    def __init__(self, x, y, augment_steps, seed, rows=None):
        self.x, self.y = x, y
        self.rows = rows  # the samples' rows in the data set (after `map`), as modelc splits it
        self.augment_steps = augment_steps
        self.seed = seed
        self.epoch = 0
        self.first = None  # the epoch's augmentation streams' first blocks, made at first use

    def set_epoch(self, epoch):
        if epoch != self.epoch:
            self.first = None
        self.epoch = epoch

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i]
        if self.augment_steps:
            if self.first is None:
                self.first = first_blocks(self.seed, PURPOSE_AUGMENT, self.epoch, len(self.x))
            stream = Stream.started(self.seed, PURPOSE_AUGMENT, self.epoch, i, list(self.first[i]))
            x = augment(self.augment_steps, x, stream)
        x = torch.from_numpy(np.ascontiguousarray(x))
        return (x, torch.from_numpy(np.asarray(self.y[i]))) if self.y is not None else (x,)


class EpochSampler(DistributedSampler):
    """modelc's epoch order (`shuffle seed:`), then this process's share (DistributedSampler's
    rank::world interleave, padded so every process takes the same number of batches)."""

    def __init__(self, dataset, shuffle_seed, num_replicas=1, rank=0):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.shuffle_seed = shuffle_seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle_seed is None:
            order = list(range(n))
        else:
            order = Stream(self.shuffle_seed, PURPOSE_SHUFFLE, self.epoch, 0).permutation(n)
        order += order[:self.total_size - n]
        return iter(order[self.rank:self.total_size:self.num_replicas])
