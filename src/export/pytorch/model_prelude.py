import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file, save_file


# ---- helpers: modelc's values are channels-last; PyTorch's windows read channels-first ----

def _conv2d(conv, x, pad):
    """A Conv2d over [N, H, W, C] with explicit (left, right, top, bottom) zero padding."""
    x = x.permute(0, 3, 1, 2)
    if any(pad):
        x = F.pad(x, pad)
    return conv(x).permute(0, 2, 3, 1)


def _conv2d_transpose(conv, x, start, size):
    """A ConvTranspose2d over [N, H, W, C] as Keras's: the unpadded output, rows and columns
    from `start` (top, left) cropped to `size` (zeros past its end), then the bias."""
    y = F.conv_transpose2d(x.permute(0, 3, 1, 2), conv.weight, None, conv.stride)
    (top, left), (h, w) = start, size
    y = F.pad(y, (-left, left + w - y.shape[3], -top, top + h - y.shape[2]))
    if conv.bias is not None:
        y = y + conv.bias[:, None, None]
    return y.permute(0, 2, 3, 1)


def _upsample2d(x, size, mode):
    """UpSampling2D over [N, H, W, C]: each pixel repeated, or tf.image.resize's bilinear
    (half-pixel centres, edges clamped), which is F.interpolate's without align_corners."""
    if mode == "nearest":
        return x.repeat_interleave(size[0], dim=1).repeat_interleave(size[1], dim=2)
    y = F.interpolate(x.permute(0, 3, 1, 2), scale_factor=size, mode="bilinear",
                      align_corners=False)
    return y.permute(0, 2, 3, 1)


def _conv1d(conv, x, pad):
    """A Conv1d over [N, T, C] with explicit (left, right) zero padding."""
    x = x.transpose(1, 2)
    if any(pad):
        x = F.pad(x, pad)
    return conv(x).transpose(1, 2)


def _pool(kind, x, size, stride, pad, max_pool, avg_pool):
    if kind == "max":
        if any(pad):
            x = F.pad(x, pad, value=float("-inf"))
        return max_pool(x, size, stride)
    if not any(pad):
        return avg_pool(x, size, stride)
    # Keras averages over the real pixels of a window only.
    ones = F.pad(torch.ones_like(x[:, :1]), pad)
    return avg_pool(F.pad(x, pad), size, stride) / avg_pool(ones, size, stride)


def _pool2d(kind, x, size, stride, pad):
    """A max or average pool over [N, H, W, C]; pad is (left, right, top, bottom)."""
    y = _pool(kind, x.permute(0, 3, 1, 2), size, stride, pad, F.max_pool2d, F.avg_pool2d)
    return y.permute(0, 2, 3, 1)


def _pool1d(kind, x, size, stride, pad):
    """A max or average pool over [N, T, C]; pad is (left, right)."""
    y = _pool(kind, x.transpose(1, 2), size, stride, pad, F.max_pool1d, F.avg_pool1d)
    return y.transpose(1, 2)


def _rnn(rnn, x, return_sequences, go_backwards, dropout=0.0, training=False, keep=None,
         zero_masked=False):
    """A batch-first recurrent module as Keras runs it: the last step, or every step (in the
    order run); Keras's `dropout` is one input mask per sequence, for every step. With a
    padding mask `keep` [N, T] the module runs step by step: a masked step keeps the state and
    outputs the previous output (zeros with `zero_masked`, as Keras's Bidirectional)."""
    if training and dropout > 0:
        mask = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= dropout
        x = x * mask / (1.0 - dropout)
    if go_backwards:
        x = x.flip(1)
        keep = None if keep is None else keep.flip(1)
    if keep is None:
        out, _ = rnn(x)
        return out if return_sequences else out[:, -1]
    state, outs = None, []
    for t in range(x.shape[1]):
        _, new = rnn(x[:, t:t + 1], state)
        k = keep[:, t].view(1, -1, 1)
        if state is None:
            state = tuple(torch.zeros_like(s) for s in new) if isinstance(new, tuple) else torch.zeros_like(new)
        if isinstance(new, tuple):
            state = tuple(torch.where(k, n, s) for n, s in zip(new, state))
        else:
            state = torch.where(k, new, state)
        h = (state[0] if isinstance(state, tuple) else state)[0]
        outs.append(torch.where(k[0], h, torch.zeros_like(h)) if zero_masked else h)
    return torch.stack(outs, dim=1) if return_sequences else h


def _mean_steps(x, keep=None):
    """GlobalAveragePooling1D over [N, T, C]: the mean of the kept steps (zeros when none is)."""
    if keep is None:
        return x.mean(dim=1)
    k = keep.to(x.dtype).unsqueeze(-1)
    return (x * k).sum(dim=1) / k.sum(dim=1).clamp(min=1.0)


class _Bidirectional(nn.Module):
    """Keras's Bidirectional: the layer forwards and (go_backwards flipped) backwards, each with
    its own weights and dropout mask, the backward outputs back in time order, then merged."""

    def __init__(self, forward_rnn, backward_rnn, merge, go_backwards):
        super().__init__()
        self.forward_rnn, self.backward_rnn = forward_rnn, backward_rnn
        self.merge, self.go_backwards = merge, go_backwards

    def forward(self, x, return_sequences, dropout, keep=None):
        f = _rnn(self.forward_rnn, x, return_sequences, self.go_backwards, dropout, self.training,
                 keep, True)
        b = _rnn(self.backward_rnn, x, return_sequences, not self.go_backwards, dropout,
                 self.training, keep, True)
        if return_sequences:
            b = b.flip(1)
        if self.merge == "concat":
            return torch.cat([f, b], dim=-1)
        if self.merge == "sum":
            return f + b
        if self.merge == "mul":
            return f * b
        return (f + b) / 2


class _EinsumDense(nn.Module):
    """One projection of Keras's MultiHeadAttention, its kernel and bias in Keras's layouts:
    `equation` maps the input and kernel to the output, the bias has the output's last axes."""

    def __init__(self, equation, kernel_shape, bias_shape):
        super().__init__()
        self.equation = equation
        self.kernel = nn.Parameter(torch.zeros(kernel_shape))
        self.bias = nn.Parameter(torch.zeros(bias_shape))

    def forward(self, x):
        return torch.einsum(self.equation, x, self.kernel) + self.bias


class _MultiHeadAttention(nn.Module):
    """Keras 3's MultiHeadAttention: query, key and value projected to heads
    ([d, heads, size] kernels), the query scaled by 1/sqrt(key_dim), scores softmaxed over the
    value positions (-1e9 added above the diagonal when causal, as Keras's masked softmax),
    dropout on the probabilities in training only, the heads projected back
    ([heads, value_dim, d] kernel)."""

    def __init__(self, dq, dk, dv, heads, key_dim, value_dim, dropout, causal):
        super().__init__()
        self.query = _EinsumDense("btd,dhk->bthk", (dq, heads, key_dim), (heads, key_dim))
        self.key = _EinsumDense("btd,dhk->bthk", (dk, heads, key_dim), (heads, key_dim))
        self.value = _EinsumDense("btd,dhk->bthk", (dv, heads, value_dim), (heads, value_dim))
        self.attention_output = _EinsumDense("bthk,hkd->btd", (heads, value_dim, dq), (dq,))
        self.scale = 1.0 / float(np.sqrt(key_dim))
        self.dropout, self.causal = dropout, causal

    def forward(self, query, value, key):
        q = self.query(query) * self.scale
        k, v = self.key(key), self.value(value)
        scores = torch.einsum("bqhk,bvhk->bhqv", q, k)
        if self.causal:
            tq, tv = scores.shape[-2], scores.shape[-1]
            future = torch.ones(tq, tv, dtype=torch.bool, device=scores.device).triu(1)
            scores = scores + future.to(scores.dtype) * -1e9
        p = torch.softmax(scores, dim=-1)
        p = F.dropout(p, self.dropout, self.training)
        return self.attention_output(torch.einsum("bhqv,bvhk->bqhk", p, v))


class _PositionEmbedding(nn.Module):
    """Keras-hub's PositionEmbedding added to its input: row t of `embeddings` to position t."""

    def __init__(self, max_length, d):
        super().__init__()
        self.embeddings = nn.Parameter(torch.zeros(max_length, d))

    def forward(self, x):
        return x + self.embeddings[: x.shape[1]]


def _last_axis_norm(norm, x):
    """A normalization over the last axis, every other axis folded into rows."""
    return norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


# ---- weights: modelc's safetensors (LAYER.PARAM, Keras layouts) <-> this module's ----------

def _gru_to_torch(a, axis):
    z, r, h = np.split(a, 3, axis=axis)  # Keras: update, reset, candidate
    return np.concatenate([r, z, h], axis=axis)  # PyTorch: reset, update, new


def _gru_from_torch(a, axis):
    r, z, n = np.split(a, 3, axis=axis)
    return np.concatenate([z, r, n], axis=axis)


def _to_torch(layout, a):
    """One modelc tensor as the module tensors it becomes."""
    if layout == "same":
        return [a]
    if layout in ("dense_kernel", "rnn_kernel"):
        return [a.T]
    if layout == "conv2d_kernel":  # [kh, kw, in, out] -> [out, in, kh, kw]
        return [a.transpose(3, 2, 0, 1)]
    if layout == "conv1d_kernel":  # [k, in, out] -> [out, in, k]
        return [a.transpose(2, 1, 0)]
    if layout == "depthwise_kernel":  # [kh, kw, C, M] -> [C*M, 1, kh, kw]
        kh, kw = a.shape[:2]
        return [a.reshape(kh, kw, 1, -1).transpose(3, 2, 0, 1)]
    if layout == "gru_kernel":
        return [_gru_to_torch(a, 1).T]
    if layout == "rnn_bias":  # one Keras bias: the input bias, the recurrent bias zero
        return [a, np.zeros_like(a)]
    if layout == "gru_bias":  # [2, 3U]: input and recurrent biases
        return [_gru_to_torch(a[0], 0), _gru_to_torch(a[1], 0)]
    raise ValueError(f"unknown layout {layout}")


def _from_torch(layout, ts, shape):
    """The module tensors `ts` as the one modelc tensor (of Keras shape `shape`) they came from."""
    if layout == "same":
        return ts[0]
    if layout in ("dense_kernel", "rnn_kernel"):
        return ts[0].T
    if layout == "conv2d_kernel":
        return ts[0].transpose(2, 3, 1, 0)
    if layout == "conv1d_kernel":
        return ts[0].transpose(2, 1, 0)
    if layout == "depthwise_kernel":
        return ts[0].transpose(2, 3, 1, 0).reshape(shape)
    if layout == "gru_kernel":
        return _gru_from_torch(ts[0].T, 1)
    if layout == "rnn_bias":
        return ts[0] + ts[1]
    if layout == "gru_bias":
        return np.stack([_gru_from_torch(ts[0], 0), _gru_from_torch(ts[1], 0)])
    raise ValueError(f"unknown layout {layout}")


class _ModelcWeights:
    """load_weights / save_weights over the class's PARAMS table."""

    PARAMS = []

    def load_weights(self, path):
        """Reads modelc's weights (safetensors, LAYER.PARAM, Keras layouts)."""
        tensors = load_file(path)
        state = self.state_dict()
        for name, module, targets, layout, _ in self.PARAMS:
            if name not in tensors:
                raise KeyError(f"{path} has no tensor `{name}`")
            for target, value in zip(targets, _to_torch(layout, tensors[name])):
                key = f"{module}.{target}"
                if tuple(state[key].shape) != tuple(value.shape):
                    raise ValueError(
                        f"`{name}` is {list(tensors[name].shape)} in {path}; "
                        f"{key} needs {list(state[key].shape)}"
                    )
                state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        self.load_state_dict(state)

    def save_weights(self, path):
        """Writes modelc's weights: `modelc run`, `eval` and `export` read them as they are."""
        state = self.state_dict()
        out = {}
        for name, module, targets, layout, (_, shape) in self.PARAMS:
            ts = [state[f"{module}.{t}"].detach().cpu().numpy() for t in targets]
            out[name] = np.ascontiguousarray(_from_torch(layout, ts, shape), dtype=np.float32)
        save_file(out, path)

    def keras_init(self, seed):
        """Keras's initializers (Glorot uniform kernels, orthogonal recurrent kernels, zero
        biases), drawn from numpy with `seed`: the same distributions as modelc, not its numbers."""
        rng = np.random.default_rng(seed)
        state = self.state_dict()
        for _, module, targets, layout, (init, shape) in self.PARAMS:
            for target, value in zip(targets, _to_torch(layout, _keras_init(init, shape, rng))):
                state[f"{module}.{target}"] = torch.from_numpy(np.ascontiguousarray(value))
        self.load_state_dict(state)


def _keras_init(init, shape, rng):
    """Keras's default initializer of a parameter, in its Keras layout."""
    shape = tuple(shape)
    if init == "zeros":
        return np.zeros(shape, np.float32)
    if init == "ones":
        return np.ones(shape, np.float32)
    if init.startswith("uniform:"):
        limit = float(init.split(":")[1])
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    if init == "unit_forget_bias":  # LSTM: the forget gate's slice (the second quarter) is one
        b = np.zeros(shape, np.float32)
        u = shape[-1] // 4
        b[..., u:2 * u] = 1.0
        return b
    if init == "orthogonal":
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
        q = q * np.sign(np.diag(r))
        q = q if rows >= cols else q.T
        return q[:rows, :cols].reshape(shape).astype(np.float32)
    # glorot_uniform: fans as Keras counts them (receptive field times the last two axes)
    field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * field, shape[-1] * field
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)
