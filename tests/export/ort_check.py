"""ONNX's checker and ONNX Runtime on an exported model, against modelc's outputs.

Usage: python ort_check.py MODEL.onnx X.npy Y.npy
X is the input batch (floats; cast to the model's input dtype), Y modelc's output. Exits 1 when
the checker refuses the model or ONNX Runtime's output differs by more than 1e-4 (relative).
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort

path, x_path, y_path = sys.argv[1:4]
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
dtype = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}[inp.type]
x = np.load(x_path).astype(dtype)
want = np.load(y_path)
got = session.run(None, {inp.name: x})[0]
err = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
print(f"{path}: check_model(full_check=True) ok; onnxruntime {ort.__version__} max relative error {err:.3e}")
sys.exit(0 if got.shape == want.shape and err <= 1e-4 else 1)
