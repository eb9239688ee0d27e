"""What the converters in tools/ share: modelc's parameter list for a spec, and a safetensors
writer (modelc's weights format: one little-endian float32 tensor per stored parameter, named
LAYER.PARAM, in Keras layouts).

Input: a spec (asked through `modelc inspect SPEC --format json`) or that command's saved
output. Output: the parameters a weights file for the spec must hold, in the plan's order
(layer by layer, each layer's tensors in Keras's order), and the written file. Only numpy is
needed here; the file is written atomically (temporary file in the same folder, then rename).
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np


class ConversionError(Exception):
    """A problem the user can fix; printed as `error: ...`, exit status 1."""


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every converter takes: where the parameter list comes from, the output."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="the .model spec the weights are for")
    source.add_argument(
        "--params",
        help="the output of `modelc inspect SPEC.model --format json`, saved to a file",
    )
    parser.add_argument("--model", help="the model of the spec, when it defines several")
    parser.add_argument(
        "--modelc", default="modelc", help="the modelc binary (default: modelc on PATH)"
    )
    parser.add_argument("-o", "--output", required=True, help="the .safetensors file to write")


def spec_params(args: argparse.Namespace) -> list:
    """The stored parameters, as (name, shape) pairs in the plan's order."""
    if args.params:
        with open(args.params, encoding="utf-8") as f:
            plan = json.load(f)
    else:
        command = [args.modelc, "inspect", args.spec, "--format", "json"]
        if args.model:
            command += ["--model", args.model]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as e:
            raise ConversionError(f"cannot run {args.modelc}: {e} (pass --modelc PATH)") from e
        if done.returncode != 0:
            raise ConversionError(
                f"`{' '.join(command)}` failed:\n{done.stderr or done.stdout}".rstrip()
            )
        plan = json.loads(done.stdout)
    return [
        (p["name"], tuple(p["shape"])) for p in plan["params"] if p.get("kind") != "derived"
    ]


def write_safetensors(path: str, tensors: dict) -> None:
    """Writes `tensors` (name -> array) as float32 safetensors, sorted by name, atomically."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4")
        if not np.isfinite(data).all():
            raise ConversionError(f"tensor `{name}` holds NaN or infinite values")
        raw = data.tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(data.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for raw in blobs:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_shape(name: str, value: np.ndarray, shape: tuple, source: str) -> np.ndarray:
    """`value` as float32 when its shape is modelc's `shape`, else a ConversionError."""
    if tuple(value.shape) != tuple(shape):
        raise ConversionError(
            f"`{source}` becomes `{name}` with shape {list(value.shape)}, but the spec's "
            f"`{name}` has shape {list(shape)}: the model and the spec differ here"
        )
    return value.astype(np.float32)


def run(main) -> None:
    """Runs a converter's `main`, turning a ConversionError into `error: ...` and status 1."""
    try:
        main()
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
