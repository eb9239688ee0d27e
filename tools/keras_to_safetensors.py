#!/usr/bin/env python3
"""Converts Keras weights (.h5 or .keras) into modelc's weights (safetensors, LAYER.PARAM).

    python3 tools/keras_to_safetensors.py model.keras --spec specs/my.model -o model.safetensors

Input: a Keras file and the spec whose parameter list (`modelc inspect SPEC --format json`)
names the tensors. Keras and modelc share layouts (conv kernels [kh, kw, in, out], dense
[in, out], recurrent kernels with Keras's gate order, batch norm's gamma, beta, moving_mean,
moving_variance), so no tensor changes: the layers' weights are taken in the model's order and
named after the spec's parameters in order, and each must have the spec's shape. Read:

- HDF5 in the Keras 2 / tf.keras layout (`model.save_weights("w.h5")`, or `model.save("m.h5")`,
  whose weights are under `model_weights`): the `layer_names` and `weight_names` attributes
  give the order;
- a Keras 3 archive (`model.save("m.keras")`): `config.json` gives the layers' order, and
  `model.weights.h5` holds each layer's `vars` under the name Keras 3 saves it by (the class
  name in snake case, numbered from the second of a class: `dense`, `dense_1`);
- a Keras 3 `.weights.h5` alone, when its groups were written in creation order.

Needs h5py and numpy.
"""

import argparse
import io
import json
import re
import sys
import zipfile
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


def text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def legacy_weights(group) -> list:
    """(name, array) in order from a Keras 2 HDF5 group with `layer_names`."""
    out = []
    for layer in group.attrs["layer_names"]:
        g = group[text(layer)]
        for weight in g.attrs.get("weight_names", []):
            out.append((f"{text(layer)}/{text(weight)}", np.asarray(g[text(weight)])))
    return out


def snake_case(name: str) -> str:
    """Keras 3's `to_snake_case`: `Conv2D` -> `conv2d`, `BatchNormalization` -> `batch_normalization`."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_vars(group) -> list:
    """(path, array) of a Keras 3 layer group's `vars`, numbered 0, 1, ..."""
    out = []
    if "vars" in group:
        v = group["vars"]
        for i in sorted(v.keys(), key=int):
            out.append((f"{group.name}/vars/{i}", np.asarray(v[i])))
    return out


def archive_weights(h5, config: dict) -> list:
    """(path, array) in the order of `config.json`'s layers, from a Keras 3 weights file."""
    layers = config.get("config", {}).get("layers", [])
    used = {}
    out = []
    root = h5["layers"] if "layers" in h5 else h5
    for layer in layers:
        base = snake_case(layer.get("class_name", ""))
        n = used.get(base)
        used[base] = 0 if n is None else n + 1
        saved = base if n is None else f"{base}_{n + 1}"
        name = layer.get("config", {}).get("name", saved)
        group = root.get(saved) or root.get(name)
        if group is None:
            if layer.get("class_name") in ("InputLayer",):
                continue
            raise ConversionError(f"no weights for layer `{name}` (looked for `layers/{saved}`)")
        out += layer_vars(group)
    return out


def creation_order_weights(h5) -> list:
    """(path, array) from a bare Keras 3 weights file whose groups keep their creation order."""
    root = h5["layers"] if "layers" in h5 else h5
    import h5py

    names = []
    try:
        root.id.links.iterate(
            lambda n: names.append(n.decode("utf-8")) or None,
            idx_type=h5py.h5.INDEX_CRT_ORDER,
        )
    except Exception as e:
        raise ConversionError(
            "this .weights.h5 does not record its layers' order; convert the .keras "
            "archive (model.save('m.keras')) instead"
        ) from e
    out = []
    for n in names:
        out += layer_vars(root[n])
    return out


def keras_weights(path: str) -> list:
    """(path, array) of every weight of the Keras file, in the model's order."""
    import h5py

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            data = z.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as h5:
            return archive_weights(h5, config)
    with h5py.File(path, "r") as h5:
        group = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" in group.attrs:
            return legacy_weights(group)
        return creation_order_weights(h5)


def convert(params: list, weights: list) -> dict:
    """The spec's tensors by name: the Keras weights in order, each checked against its shape."""
    if len(weights) != len(params):
        raise ConversionError(
            f"the Keras file holds {len(weights)} weights, the spec {len(params)} parameters "
            f"({', '.join(n for n, _ in params)})"
        )
    return {
        name: check_shape(name, value, shape, source)
        for (name, shape), (source, value) in zip(params, weights)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keras_file", help="the .h5 or .keras file")
    add_common_arguments(parser)
    args = parser.parse_args()
    params = spec_params(args)
    tensors = convert(params, keras_weights(args.keras_file))
    write_safetensors(args.output, tensors)
    print(f"wrote {len(tensors)} tensors to {args.output}")


if __name__ == "__main__":
    run(main)
