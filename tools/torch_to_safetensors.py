#!/usr/bin/env python3
"""Converts a PyTorch state_dict into modelc's weights (safetensors, LAYER.PARAM, Keras layouts).

    python3 tools/torch_to_safetensors.py model.pt --spec specs/my.model -o model.safetensors

Input: a file written by `torch.save(model.state_dict(), "model.pt")` (also a checkpoint dict
holding "state_dict" or "model_state_dict", or a whole pickled module), and the spec whose
parameter list (`modelc inspect SPEC --format json`) names the tensors. The state_dict's tensors
are taken in their order (PyTorch's registration order, which must follow the spec's layers),
`num_batches_tracked` skipped, and each converted to Keras's layout:

- Linear `weight` [out, in] -> `kernel` [in, out]; Conv1d [out, in, k] -> [k, in, out];
  Conv2d [out, in, kh, kw] -> [kh, kw, in, out] (ConvTranspose2d [in, out, kh, kw] ->
  [kh, kw, out, in], depthwise [c*m, 1, kh, kw] -> [kh, kw, c, m]); `bias` as it is;
- BatchNorm/LayerNorm `weight`, `bias`, `running_mean`, `running_var` -> `gamma`, `beta`,
  `moving_mean`, `moving_variance`; Embedding `weight` -> `embeddings`;
- LSTM/GRU/RNN `weight_ih_l0`, `weight_hh_l0` -> `kernel`, `recurrent_kernel` (transposed; a
  GRU's gates reordered from PyTorch's r, z, n to Keras's z, r, h); `bias_ih_l0` + `bias_hh_l0`
  -> `bias` (added for LSTM and RNN; stacked [2, 3u] for a GRU); `*_reverse` tensors feed a
  bidirectional layer's `backward` half.

Every converted tensor must have the spec's shape; anything else (a layer the spec does not
have, nn.MultiheadAttention's packed projections, more than one recurrent layer per module) is
refused with the names of both tensors. Needs torch and numpy.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modelc_safetensors import (  # noqa: E402
    ConversionError,
    add_common_arguments,
    check_shape,
    run,
    spec_params,
    write_safetensors,
)


def load_state_dict(path: str) -> list:
    """The (key, numpy array) pairs of the file's state_dict, in order."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # an older file or a pickled module: only for files the user trusts
        obj = torch.load(path, map_location="cpu", weights_only=False)
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ConversionError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    return [
        (k, v.detach().cpu().numpy())
        for k, v in obj.items()
        if hasattr(v, "detach") and not k.endswith("num_batches_tracked")
    ]


def gru_gates(a: np.ndarray, axis: int) -> np.ndarray:
    """PyTorch's GRU gate blocks (r, z, n) along `axis` in Keras's order (z, r, h)."""
    r, z, n = np.split(a, 3, axis=axis)
    return np.concatenate([z, r, n], axis=axis)


def convert_weight(name: str, value: np.ndarray, shape: tuple) -> np.ndarray:
    """A Linear/Conv/Embedding/norm `weight` in the layout of the spec's `name`."""
    if name.endswith(".kernel"):
        if value.ndim == 2:
            return value.T
        if value.ndim == 3:
            return value.transpose(2, 1, 0)
        if value.ndim == 4:
            out = value.transpose(2, 3, 1, 0)
            if out.shape != shape and out.size == int(np.prod(shape)) and out.shape[2] == 1:
                out = out.reshape(shape)  # depthwise: [kh, kw, 1, c*m] -> [kh, kw, c, m]
            return out
    return value


class Tensors:
    """The state_dict's tensors, taken in order."""

    def __init__(self, items: list):
        self.items = items
        self.at = 0

    def take(self, wanted: str) -> tuple:
        if self.at >= len(self.items):
            raise ConversionError(f"the state_dict has no tensor left for `{wanted}`")
        item = self.items[self.at]
        self.at += 1
        return item


def convert(params: list, items: list) -> dict:
    """The spec's tensors, by name, from the state_dict's `items`."""
    shapes = dict(params)
    tensors = Tensors(items)
    out = {}
    for name, shape in params:
        key, value = tensors.take(name)
        leaf = key.rsplit(".", 1)[-1]
        if leaf.startswith(("weight_ih", "weight_hh")):
            if gate_count(name, shapes) == 3:
                value = gru_gates(value, axis=0)
            value = value.T
        elif leaf.startswith("bias_ih"):
            key_hh, value_hh = tensors.take(name)
            key = f"{key} + {key_hh}"
            if gate_count(name, shapes) == 3:
                value = np.stack([gru_gates(value, 0), gru_gates(value_hh, 0)])
            else:
                value = value + value_hh
        elif leaf == "weight":
            value = convert_weight(name, value, shape)
        elif leaf not in ("bias", "running_mean", "running_var"):
            raise ConversionError(f"`{key}` has no modelc counterpart (for `{name}`)")
        out[name] = check_shape(name, value, shape, key)
    if tensors.at < len(items):
        extra = ", ".join(k for k, _ in items[tensors.at :])
        raise ConversionError(f"the state_dict has tensors the spec does not: {extra}")
    return out


def gate_count(name: str, shapes: dict) -> int:
    """The gates of the recurrent layer `name` belongs to (4 LSTM, 3 GRU, 1 simple RNN), from
    its recurrent kernel's shape [u, G*u] in the spec."""
    layer = name.rsplit(".", 1)[0]
    units, width = shapes.get(f"{layer}.recurrent_kernel", (1, 1))
    return width // units if units else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dict", help="the torch.save file (.pt, .pth, .bin)")
    add_common_arguments(parser)
    args = parser.parse_args()
    params = spec_params(args)
    items = load_state_dict(args.state_dict)
    write_safetensors(args.output, convert(params, items))
    print(f"wrote {len(params)} tensors to {args.output}")


if __name__ == "__main__":
    run(main)
