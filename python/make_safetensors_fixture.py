"""Writes test/fixtures/python-written.safetensors with the Python safetensors library, so that
the TypeScript reader is tested against the reference writer (CI needs no Python)."""
import pathlib

import numpy as np
from safetensors.numpy import save_file

out = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "python-written.safetensors"
tensors = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5,
    "i64": np.array([0, -3, 2**40], dtype=np.int64),
    "i32": np.array([[7], [-8]], dtype=np.int32),
    "u8": np.array([0, 1, 255], dtype=np.uint8),
    "f16": np.array([1.5, -0.25, 65504.0], dtype=np.float16),
    "scalar": np.array(3.25, dtype=np.float32),
}
save_file(tensors, str(out), metadata={"format": "pt", "note": "written by python/make_safetensors_fixture.py"})
print(out, out.stat().st_size, "bytes")
