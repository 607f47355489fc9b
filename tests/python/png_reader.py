"""A PNG reader in the standard library only (the tests run without Pillow): checks
the signature, every chunk's CRC, IHDR and the IDAT stream, and undoes the five PNG
row filters, for the 8-bit RGB and RGBA pictures that cairo writes.
"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
BYTES_PER_PIXEL = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples at bit depth 8


class Png:
    def __init__(self, width, height, channels, rows):
        self.width = width
        self.height = height
        self.channels = channels
        self._rows = rows  # height bytearrays of width * channels samples

    def rgb(self, x, y):
        """The (r, g, b) of pixel (x, y), x from the left, y from the top."""
        i = x * self.channels
        row = self._rows[y]
        if self.channels < 3:
            return (row[i],) * 3
        return tuple(row[i:i + 3])


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(data, width, height, bpp):
    stride = width * bpp
    assert len(data) == height * (1 + stride), "IDAT holds the wrong number of bytes"
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (1 + stride)
        kind, line = data[start], bytearray(data[start + 1:start + 1 + stride])
        assert kind <= 4, f"row {y}: unknown filter type {kind}"
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 0xFF
        rows.append(line)
        previous = line
    return rows


def read_png(path, pixels=True):
    """The Png at `path`, after checking its structure; pixels=False checks the IDAT
    size only and returns no rows (cheap for large pictures)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == SIGNATURE, f"{path}: not a PNG signature"
    chunks, pos = [], 8
    while pos < len(data):
        assert pos + 12 <= len(data), f"{path}: truncated chunk at byte {pos}"
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert len(body) == length, f"{path}: truncated {kind!r} chunk"
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and len(chunks[0][1]) == 13, f"{path}: IHDR is not first"
    assert chunks[-1][0] == b"IEND", f"{path}: no IEND at the end"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert width > 0 and height > 0, f"{path}: {width} x {height}"
    assert depth == 8 and colour in BYTES_PER_PIXEL and interlace == 0, (depth, colour, interlace)
    bpp = BYTES_PER_PIXEL[colour]
    stream = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(stream) == height * (1 + width * bpp), f"{path}: IDAT size"
    rows = _unfilter(stream, width, height, bpp) if pixels else None
    return Png(width, height, bpp, rows)
