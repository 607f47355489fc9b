"""Writes the seed corpus of fuzz_safetensors: tiny valid safetensors files of every
dtype attn converts, written from the format's description with struct, json and
numpy (not with attn, and not with the safetensors package). Run with /usr/bin/python3
from the repository root: python3 fuzz/make_safetensors_corpus.py
"""

import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "safetensors")


def bf16(values):
    """bfloat16 bits: the upper halves of the float32s (these values are exact)."""
    return (np.array(values, dtype="<f4").view("<u4") >> 16).astype("<u2")


def safetensors(tensors, metadata=None, compact=True, sort=True, pad=b" "):
    """tensors: name -> (dtype name, numpy array of the right element type)."""
    header, blobs, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in sorted(tensors) if sort else tensors:
        dtype, array = tensors[name]
        blob = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":") if compact else None, ensure_ascii=False).encode("utf-8")
    text += pad * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


SEEDS = {
    "f32_metadata": safetensors({"weight": ("F32", np.arange(6, dtype="<f4").reshape(2, 3) / 4)},
                                metadata={"format": "pt"}),
    "floats": safetensors({
        "f16": ("F16", np.array([1, 6e-8, 6.1e-5, 65504, np.inf, -np.inf, np.nan, -0.0], dtype="<f2")),
        "bf16": ("BF16", bf16([1, -2, 3.5, np.inf, np.nan])),
        "f64": ("F64", np.array([[0.1, -2.0], [1e300, 5e-324]], dtype="<f8")),
    }),
    "integers": safetensors({
        "b": ("BOOL", np.array([True, False, True])),
        "u8": ("U8", np.array([0, 255], dtype="u1")),
        "i8": ("I8", np.array([-128, 127], dtype="i1")),
        "u16": ("U16", np.array([65535], dtype="<u2")),
        "i16": ("I16", np.arange(-4, 4, dtype="<i2").reshape(2, 2, 2)),
        "u32": ("U32", np.array([2**32 - 1], dtype="<u4")),
        "i32": ("I32", np.array([-2**31], dtype="<i4")),
        "u64": ("U64", np.array([2**64 - 1], dtype="<u8")),
        "i64": ("I64", np.array([-1, 0, 2**63 - 1], dtype="<i8")),
    }),
    "scalar_and_empty": safetensors({"scalar": ("F32", np.array(3.0, dtype="<f4")),
                                     "empty": ("F32", np.zeros((0, 4), dtype="<f4")),
                                     "also_empty": ("U8", np.zeros((2, 0), dtype="u1"))}),
    "no_tensors": safetensors({}),
    "spaced_unsorted": safetensors({"z": ("F32", np.ones(2, dtype="<f4")), "a": ("I64", np.array([7], dtype="<i8"))},
                                   metadata={"caf\u00e9": "tab\there \"quoted\""}, compact=False, sort=False,
                                   pad=b"\n"),
    "torch_mha": safetensors({
        "in_proj_weight": ("F32", (np.arange(48, dtype="<f4").reshape(12, 4) - 24) / 16),
        "in_proj_bias": ("F32", np.linspace(-1, 1, 12, dtype="<f4")),
        "out_proj.weight": ("F32", np.eye(4, dtype="<f4")),
        "out_proj.bias": ("F32", np.zeros(4, dtype="<f4")),
    }, metadata={"embed_dim": "4", "num_heads": "2"}),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
