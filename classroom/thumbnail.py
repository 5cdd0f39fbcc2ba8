"""A run's thumbnail for the class view: a small PNG of what its samples plot shows.

What it is: `thumbnail_png(frame, probability)`: for 2-D data, D's decision surface (the samples
plot's colours, `plots.SURFACE_SCALE`) with the real points (navy) and G's samples (orange) on
it; for digits, G's first 16 digits as a 4×4 mosaic (dark ink on white, like the data). A few
kilobytes each, drawn with numpy and encoded once per evaluation frame by the class view's cache
(`classview.py`), however many teachers look.

Why a picture and not a plotly figure: thirty live plotly plots would cost the teacher's browser
more than the class costs the server; a thumbnail only needs to show "is it on the ring yet?".
Not here: the full-size figures (`plots.py`), when a thumbnail is drawn (`classview.py`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from gan_core.records import EvalFrame

from .plots import finite, surface_pixels, surface_range, tile
from .png import png_bytes

SIZE = 112  # pixels a side (2-D)
REAL_RGB = (8, 48, 107)  # plots.REAL_EDGE: navy, visible on the blue "real" side of the surface
FAKE_RGB = (255, 127, 14)  # plots.FAKE_COLOR
REAL_DOTS = 200
FAKE_DOTS = 600
DIGITS = 16  # a 4×4 mosaic
LEVELS = 16  # colour bands of the surface, grey levels of the digits: a palette PNG of a few kB


def thumbnail_png(frame: EvalFrame, probability: bool = True) -> bytes:
    """The PNG bytes of `frame`'s thumbnail (see the module docstring); `probability`: D outputs
    P(real) (0…1 on the colour scale), else raw scores scaled to their own range."""
    if frame.fake.ndim == 3:
        mosaic = finite(tile(frame.fake[:DIGITS], cols=4))
        ink = np.round((LEVELS - 1) * (1 - mosaic)).astype(np.uint8)  # LEVELS greys: a few kB
        return _png(ink, [round(255 * i / (LEVELS - 1)) for i in range(LEVELS) for _ in range(3)])
    return _png(*_points_on_surface(frame, probability))


def _points_on_surface(frame: EvalFrame, probability: bool) -> tuple[np.ndarray, list[int]]:
    """(SIZE, SIZE) palette indices and the palette: the surface in LEVELS bands of the samples
    plot's colours (over white), then the real and fake points."""
    x0, x1, y0, y1 = frame.surface_extent
    z = frame.surface
    zmin, zmax = surface_range(z, probability)
    t = np.clip((finite(z, nan=(zmin + zmax) / 2) - zmin) / max(zmax - zmin, 1e-12), 0.0, 1.0)
    t = np.asarray(Image.fromarray(t.astype(np.float32)[::-1], "F").resize((SIZE, SIZE), Image.BILINEAR))
    index = np.round(t * (LEVELS - 1)).astype(np.uint8)  # row 0 is the top
    bands = surface_pixels(np.linspace(zmin, zmax, LEVELS)[None, :], zmin, zmax)[0].astype(np.float32)
    alpha = bands[:, 3:] / 255.0
    colours = (bands[:, :3] * alpha + 255.0 * (1 - alpha)).round().astype(int)  # over white
    _dots(index, frame.real[:REAL_DOTS], (x0, x1, y0, y1), LEVELS)
    _dots(index, frame.fake[:FAKE_DOTS], (x0, x1, y0, y1), LEVELS + 1)
    return index, [*colours.ravel().tolist(), *REAL_RGB, *FAKE_RGB]


def _dots(index: np.ndarray, points: np.ndarray, extent: tuple, colour: int, size: int = 2) -> None:
    """Paint `size`×`size` squares of palette entry `colour` at `points` (data units over `extent`)."""
    x0, x1, y0, y1 = extent
    points = points[np.isfinite(points).all(axis=1)]
    cols = np.round((points[:, 0] - x0) / (x1 - x0) * (SIZE - 1)).astype(np.int64)
    rows = np.round((y1 - points[:, 1]) / (y1 - y0) * (SIZE - 1)).astype(np.int64)
    for dr in range(size):
        for dc in range(size):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < SIZE) & (c >= 0) & (c < SIZE)
            index[r[inside], c[inside]] = colour


def _png(index: np.ndarray, palette: list[int]) -> bytes:
    return png_bytes(index, np.asarray(palette, dtype=np.uint8).reshape(-1, 3), level=6)
