"""A small PNG reader for the tests, standard library only: 8-bit greyscale, RGB, grey
+ alpha and RGBA, not interlaced (what cairo and Chromium write). It checks the
signature, every chunk's CRC and the pixel stream's size, and undoes the five row
filters of the PNG specification.

    image = read_png(path_or_bytes)  # from png_reader import read_png
    image.width, image.height
    image.rgb(x, y)  # (r, g, b) of one pixel
"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel


class Png:
    def __init__(self, width, height, channels, rows):
        self.width, self.height, self.channels = width, height, channels
        self._rows = rows  # height byte strings of width * channels samples

    def rgb(self, x, y):
        if self._rows is None:
            raise ValueError("read with pixels=False: no pixel values")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise IndexError(f"pixel ({x}, {y}) outside {self.width} x {self.height}")
        row, at = self._rows[y], x * self.channels
        if self.channels <= 2:  # grey, grey + alpha
            return (row[at],) * 3
        return tuple(row[at:at + 3])


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(data, width, height, bpp):
    stride = width * bpp
    rows, previous, pos = [], bytearray(stride), 0
    for y in range(height):
        kind, line = data[pos], bytearray(data[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, previous[i], up_left)) & 0xFF
        elif kind != 0:
            raise ValueError(f"row {y}: unknown filter type {kind}")
        rows.append(bytes(line))
        previous = line
    return rows


def read_png(source, pixels=True):
    """A Png from a path or from the file's bytes; ValueError if it is malformed.
    With pixels=False the rows are checked for size but not unfiltered (fast), and
    Png.rgb is not available."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "PNG data"
    else:
        with open(source, "rb") as f:
            data, name = f.read(), str(source)
    if data[:8] != SIGNATURE:
        raise ValueError(f"{name}: not a PNG signature")
    chunks, pos = [], 8
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{name}: truncated chunk at byte {pos}")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        crc = data[pos + 8 + length:pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError(f"{name}: truncated {kind!r} chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError(f"{name}: bad CRC in the {kind!r} chunk")
        chunks.append((kind, body))
        pos += 12 + length
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ValueError(f"{name}: IHDR is not the first chunk")
    if chunks[-1][0] != b"IEND":
        raise ValueError(f"{name}: no IEND at the end")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if width == 0 or height == 0 or depth != 8 or colour not in CHANNELS or interlace != 0:
        raise ValueError(f"{name}: unsupported {width} x {height}, depth {depth}, "
                         f"colour type {colour}, interlace {interlace}")
    data = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    channels = CHANNELS[colour]
    if len(data) != height * (1 + width * channels):
        raise ValueError(f"{name}: {len(data)} bytes of pixels for {width} x {height}")
    return Png(width, height, channels,
               _unfilter(data, width, height, channels) if pixels else None)
