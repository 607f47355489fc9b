"""The safetensors format written and read by the tests themselves, from the format's
specification, independently of attn: an 8-byte little-endian header length, the JSON
header, the tensors' bytes back to back."""

import json
import struct

import numpy as np
import torch


def tensor_bytes(t, dtype):
    t = t.detach().contiguous().cpu()
    if dtype == "BF16":  # numpy has no bfloat16: its bits, through torch
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype({"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]).tobytes()


def write_safetensors(path, tensors, metadata, dtype="F32"):
    """8-byte little-endian header length, the JSON header, the data back to back."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        blob = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """The F32 tensors and the metadata of a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info)
        begin, end = info["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata
