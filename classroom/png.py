"""PNG files of small uint8 pictures, written directly (zlib): grey levels or palette indices.

Why not Pillow: a page's samples plot carries D's surface as a PNG, drawn afresh for every
evaluation frame of every run a page shows; for a 48×48 palette picture Pillow took ~0.15 ms
of the web server's CPU (a cold cache, as between two polls), this ~0.05 ms.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_data_url(png: bytes) -> str:
    """PNG file bytes as a `data:` URL (an <img> source, a plotly layout picture)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def png_bytes(pixels: np.ndarray, palette: np.ndarray | None = None, level: int = 1) -> bytes:
    """`pixels` (rows, cols) uint8, row 0 at the top, as a PNG: 8-bit grey levels, or indices into
    `palette` ((n ≤ 256, 3) RGB or (n, 4) RGBA rows; its alpha, if any, as the tRNS chunk)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 array, got {pixels.dtype} {pixels.shape}")
    rows, cols = pixels.shape
    kind = 0 if palette is None else 3  # grey, or indexed colour
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, kind, 0, 0, 0))]
    if palette is not None:
        palette = np.asarray(palette, dtype=np.uint8)
        if palette.ndim != 2 or palette.shape[1] not in (3, 4) or not 0 < len(palette) <= 256:
            raise ValueError(f"expected (n <= 256, 3 or 4) palette, got {palette.shape}")
        chunks.append(_chunk(b"PLTE", palette[:, :3].tobytes()))
        if palette.shape[1] == 4:
            chunks.append(_chunk(b"tRNS", palette[:, 3].tobytes()))
    scanlines = np.zeros((rows, cols + 1), dtype=np.uint8)  # each row: filter type 0 (none), its bytes
    scanlines[:, 1:] = pixels
    chunks.append(_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), level)))
    return SIGNATURE + b"".join(chunks) + _chunk(b"IEND", b"")
