"""A 2-D dataset from a drawing: points sampled from the painted pixels of a canvas.

GAN Lab (Kahng et al., 2018) lets a student draw a distribution and watch G learn it. Here the
page hands over the canvas as a numpy array (a painted-ness mask, or RGBA whose alpha is the
ink); `points_from_strokes` samples points uniformly over the painted area and standardises
them like an uploaded CSV (`data.standardise_points`), so a drawing becomes the same kind of
point cloud and goes through the same checks and limits.

Not here: reading images (the page converts them; no PIL in gan_core), the dataset class
(`data.PointDataset`).
"""

from __future__ import annotations

import numpy as np

from .data import CSV_MAX_ROWS, CSV_MIN_ROWS, DataError, standardise_points

MAX_CANVAS_PIXELS = 4096 * 4096  # a larger array is refused before any work (memory)
MIN_PAINTED_PIXELS = CSV_MIN_ROWS  # fewer painted pixels is a dot, not a shape


def ink_mask(canvas: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where the canvas is painted.

    Accepts an (H, W) mask (painted where > 0) or an (H, W, 4) RGBA image (painted where alpha > 0).
    """
    canvas = np.asarray(canvas)
    if canvas.dtype == object or not (np.issubdtype(canvas.dtype, np.number) or canvas.dtype == bool):
        raise DataError(f"the canvas must be an array of numbers, got dtype {canvas.dtype}")
    if canvas.ndim == 3 and canvas.shape[2] == 4:
        canvas = canvas[..., 3]
    elif canvas.ndim != 2:
        raise DataError(f"the canvas must be an (H, W) mask or an (H, W, 4) RGBA image, got shape {canvas.shape}")
    if canvas.size > MAX_CANVAS_PIXELS:
        raise DataError(f"the canvas has {canvas.size:,} pixels; the limit is {MAX_CANVAS_PIXELS:,}")
    return canvas > 0  # NaN counts as unpainted


def points_from_strokes(canvas: np.ndarray, n_points: int, rng: np.random.Generator) -> np.ndarray:
    """`n_points` points spread uniformly over the painted pixels, standardised: (n_points, 2) float32.

    Each point is a painted pixel drawn at random (with replacement) plus a uniform offset inside
    that pixel, so thick strokes give dense regions and the cloud has no pixel grid. Image rows
    grow downwards; y is flipped so the drawing appears upright on the plots. Raises `DataError`
    with what to do on an empty or too small drawing, a bad array or a bad `n_points`.
    """
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) \
            or not CSV_MIN_ROWS <= n_points <= CSV_MAX_ROWS:
        raise DataError(f"n_points must be a whole number from {CSV_MIN_ROWS} to {CSV_MAX_ROWS:,}, got {n_points!r}")
    mask = ink_mask(canvas)
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        raise DataError("The canvas is empty: paint a shape with the brush (press and drag), then try again.")
    if len(rows) < MIN_PAINTED_PIXELS:
        raise DataError(f"Only {len(rows)} pixel(s) are painted: draw a larger shape "
                        f"(at least {MIN_PAINTED_PIXELS} pixels).")
    pick = rng.integers(len(rows), size=n_points)
    jitter = rng.random((n_points, 2))
    x = cols[pick] + jitter[:, 0]
    y = (mask.shape[0] - rows[pick]) - jitter[:, 1]  # upright: row 0 is the top of the drawing
    return standardise_points(np.column_stack([x, y]))


def points_csv(points: np.ndarray) -> str:
    """The points as `x,y` lines, the format of a CSV upload (readable by `data.parse_points_csv`)."""
    return "x,y\n" + "\n".join(f"{x:.5f},{y:.5f}" for x, y in np.asarray(points, np.float64))
