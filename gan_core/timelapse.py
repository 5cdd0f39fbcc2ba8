"""A bounded time-lapse of a run's evaluation frames, exported as an animated GIF.

`TimelapseRecorder.add(frame)` keeps a compact copy of each `EvalFrame`
(2-D points as float32, digits as a uint8 mosaic). Memory stays bounded
however long the run: when `max_frames` are kept, every other one is dropped
and from then on only every 2nd (4th, 8th …) offered frame is kept, so the
time-lapse always spans the whole run at an even pace. The newest frame is
always shown last.

Rendering (Pillow only, no plotting library): 2-D runs as a scatter of real
(blue) and generated (orange) points over D's decision surface (darker = D
says "fake"), inside an axis box, with the step and mode coverage;
digits as an 8×8 mosaic of 28×28 samples, upscaled ×2. NaN/Inf points are
skipped, NaN pixels drawn black.

Thread-safe (one lock): the training thread adds, the UI exports.
Not here: deciding when to record (the runner), live plots (`plots.py`).
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .engine import EvalFrame

MAX_FRAMES = 200
POINT_SIZE = 360  # px, square image for 2-D runs
HEADER = 28  # px strip above the plot for the step label and legend
PAD = 8  # px around the plot box
MOSAIC = 8  # digits: MOSAIC × MOSAIC samples
DIGIT_SCALE = 2  # digits: each 28×28 sample drawn at 56×56
REAL_RGB = (31, 119, 180)  # same colours as plots.py: blue real, orange generated
FAKE_RGB = (255, 127, 14)
SURFACE_DARKEST = 185  # grey level where D(x) = 0 ("fake"); white where D(x) = 1 ("real")
SURFACE_BANDS = 8  # grey levels the surface is drawn with
HOLD_LAST_MS = 1000  # the final frame stays up a moment before the GIF loops
MIN_FPS, MAX_FPS = 1, 50  # browsers slow down GIF delays under 20 ms
GIF_COLORS = 64  # palette size per frame: enough for two point colours, grey shades and text


@dataclass(frozen=True)
class TimelapseFrame:
    """What the time-lapse keeps of one `EvalFrame` (compact, read-only)."""

    step: int
    kind: str  # "points" | "digits"
    real: np.ndarray | None  # (N, 2) float32, points only
    fake: np.ndarray  # (N, 2) float32 points, or (8·28, 8·28) uint8 mosaic
    surface: np.ndarray | None  # (R, R) uint8 grey levels, rows = y ascending; points only
    extent: tuple[float, float, float, float] | None  # x0, x1, y0, y1; points only
    caption: str  # e.g. "modes 7/8"


def _kind(frame: EvalFrame) -> str:
    return "digits" if frame.fake.ndim == 3 else "points"


def _extent_of(frame: EvalFrame) -> tuple[float, float, float, float]:
    """The engine's plot bounds, or a square around the finite real points."""
    if frame.surface_extent is not None:
        return tuple(float(v) for v in frame.surface_extent)
    pts = frame.real[np.isfinite(frame.real).all(1)]
    if not len(pts):
        return (-1.0, 1.0, -1.0, 1.0)
    lo, hi = pts.min(0), pts.max(0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.15, 1e-3)
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def _surface_grey(surface: np.ndarray | None) -> np.ndarray | None:
    """D's surface as grey levels: probabilities as they are, raw scores min-max scaled."""
    if surface is None:
        return None
    s = np.nan_to_num(np.asarray(surface, np.float64), nan=0.5, posinf=1.0, neginf=0.0)
    if s.min() < 0.0 or s.max() > 1.0:  # raw critic scores (hinge, WGAN): relative shading
        span = s.max() - s.min()
        s = (s - s.min()) / span if span > 0 else np.full_like(s, 0.5)
    return (SURFACE_DARKEST + (255 - SURFACE_DARKEST) * s).astype(np.uint8)


def _mosaic(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) in [-1, 1] → (8·28, 8·28) uint8; missing tiles and NaN pixels are black."""
    n, h, w = images.shape
    tiles = np.full((MOSAIC * MOSAIC, h, w), -1.0, np.float32)
    tiles[: min(n, MOSAIC * MOSAIC)] = images[: MOSAIC * MOSAIC]
    tiles = np.nan_to_num(tiles, nan=-1.0, posinf=1.0, neginf=-1.0)
    grid = tiles.reshape(MOSAIC, MOSAIC, h, w).transpose(0, 2, 1, 3).reshape(MOSAIC * h, MOSAIC * w)
    return np.round((np.clip(grid, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def compact(frame: EvalFrame, extent: tuple[float, float, float, float] | None = None) -> TimelapseFrame:
    """The parts of `frame` a time-lapse needs, in compact form."""
    caption = ""
    if frame.modes_covered is not None and frame.n_modes:
        caption = f"modes {frame.modes_covered}/{frame.n_modes}"
    if _kind(frame) == "digits":
        return TimelapseFrame(frame.step, "digits", None, _mosaic(np.asarray(frame.fake, np.float32)),
                              None, None, caption)
    return TimelapseFrame(frame.step, "points", np.asarray(frame.real, np.float32),
                          np.asarray(frame.fake, np.float32), _surface_grey(frame.surface),
                          extent or _extent_of(frame), caption)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _dots(canvas: np.ndarray, pts: np.ndarray, extent, origin: tuple[int, int], side: int,
          rgb: tuple[int, int, int], radius: int) -> None:
    """Draw finite points inside `extent` as small squares (numpy: fast for 1000s of points)."""
    x0, x1, y0, y1 = extent
    pts = pts[np.isfinite(pts).all(1)]
    px = np.round((pts[:, 0] - x0) / (x1 - x0) * (side - 1)).astype(np.int64)
    py = np.round((1.0 - (pts[:, 1] - y0) / (y1 - y0)) * (side - 1)).astype(np.int64)  # image y points down
    inside = (px >= 0) & (px < side) & (py >= 0) & (py < side)
    px, py = px[inside] + origin[0], py[inside] + origin[1]
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            canvas[np.clip(py + dy, origin[1], origin[1] + side - 1),
                   np.clip(px + dx, origin[0], origin[0] + side - 1)] = rgb


def render(tf: TimelapseFrame, size: int = POINT_SIZE) -> Image.Image:
    """One time-lapse frame as an RGB image."""
    font = _font(14)
    if tf.kind == "digits":
        tile = Image.fromarray(tf.fake, "L").resize(
            (tf.fake.shape[1] * DIGIT_SCALE, tf.fake.shape[0] * DIGIT_SCALE), Image.NEAREST)
        img = Image.new("RGB", (tile.width, tile.height + HEADER), "white")
        img.paste(tile.convert("RGB"), (0, HEADER))
        ImageDraw.Draw(img).text((PAD, HEADER // 2), f"step {tf.step:,}", fill="black", font=font, anchor="lm")
        return img

    side = size - HEADER - PAD
    origin = ((size - side) // 2, HEADER)
    canvas = np.full((size, size, 3), 255, np.uint8)
    if tf.surface is not None:
        grey = np.asarray(Image.fromarray(np.flipud(tf.surface), "L").resize((side, side), Image.BILINEAR))
        # A few flat bands (like contour levels) instead of a smooth ramp: GIFs compress them ~4× better.
        band = (grey.astype(np.int32) - SURFACE_DARKEST) * SURFACE_BANDS // (256 - SURFACE_DARKEST)
        band = np.minimum(band, SURFACE_BANDS - 1)
        banded = SURFACE_DARKEST + band * (255 - SURFACE_DARKEST) / (SURFACE_BANDS - 1)  # D = 1 stays white
        canvas[origin[1]: origin[1] + side, origin[0]: origin[0] + side] = banded.astype(np.uint8)[..., None]
    _dots(canvas, tf.real, tf.extent, origin, side, REAL_RGB, radius=1)
    _dots(canvas, tf.fake, tf.extent, origin, side, FAKE_RGB, radius=1)
    img = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(img)
    draw.rectangle([origin[0] - 1, origin[1] - 1, origin[0] + side, origin[1] + side], outline="black")
    mid = HEADER // 2
    draw.text((origin[0], mid), f"step {tf.step:,}" + (f"   {tf.caption}" if tf.caption else ""),
              fill="black", font=font, anchor="lm")
    right = origin[0] + side
    for label, rgb in (("generated", FAKE_RGB), ("real", REAL_RGB)):
        right -= int(draw.textlength(label, font=font))
        draw.text((right, mid), label, fill="black", font=font, anchor="lm")
        draw.rectangle([right - 12, mid - 4, right - 4, mid + 4], fill=rgb)
        right -= 22
    return img


class TimelapseRecorder:
    """Bounded sequence of compact frames spanning the whole run (see module docstring)."""

    def __init__(self, max_frames: int = MAX_FRAMES, size: int = POINT_SIZE) -> None:
        if max_frames < 2 or max_frames % 2:
            raise ValueError(f"max_frames must be an even number ≥ 2, got {max_frames}")
        if not 96 <= size <= 2048:
            raise ValueError(f"size must be between 96 and 2048 pixels, got {size}")
        self.max_frames = max_frames
        self.size = size
        self._lock = threading.Lock()
        self._frames: list[TimelapseFrame] = []  # kept frames, in step order
        self._latest: TimelapseFrame | None = None  # newest offered frame if not kept
        self._stride = 1  # keep every `stride`-th offered frame
        self._offered = 0  # frames offered since the last clear (kept: multiples of stride)
        self._extent: tuple[float, float, float, float] | None = None  # fixed per recording

    def add(self, frame: EvalFrame) -> bool:
        """Offer a frame; returns whether it was kept (the newest is always shown anyway).

        A frame from an earlier step (the run was rewound) first drops the frames
        after it; a frame of the other kind (points vs digits) starts over.
        """
        with self._lock:
            last = self._latest or (self._frames[-1] if self._frames else None)
            if last is not None and last.kind != _kind(frame):
                self._clear_locked()
                last = None
            if last is not None:
                if frame.step == last.step:
                    return False  # the same moment published again (e.g. while paused)
                if frame.step < last.step:
                    self._frames = [f for f in self._frames if f.step < frame.step]
                    self._latest = None
            if self._extent is None and _kind(frame) == "points":
                self._extent = _extent_of(frame)
            tf = compact(frame, self._extent)
            keep = self._offered % self._stride == 0
            self._offered += 1
            if not keep:
                self._latest = tf
                return False
            self._latest = None
            self._frames.append(tf)
            if len(self._frames) >= self.max_frames:
                self._frames = self._frames[::2]
                self._stride *= 2  # kept offers were multiples of s; now of 2s
            return True

    def clear(self) -> None:
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._frames, self._latest = [], None
        self._stride, self._offered, self._extent = 1, 0, None

    def frames(self) -> list[TimelapseFrame]:
        """The frames a GIF would show, oldest first."""
        with self._lock:
            return self._frames + ([self._latest] if self._latest is not None else [])

    def __len__(self) -> int:
        return len(self.frames())

    def to_gif(self, target: str | os.PathLike | io.IOBase, fps: float = 10) -> int:
        """Write an animated, looping GIF of the kept frames; returns the number of frames.

        `target` is a file path or a writable binary file object (e.g. `io.BytesIO`).
        """
        if not MIN_FPS <= fps <= MAX_FPS:
            raise ValueError(f"fps must be between {MIN_FPS} and {MAX_FPS}, got {fps}")
        frames = self.frames()
        if not frames:
            raise ValueError("no frames recorded yet: train for a moment first")
        # Own palette per frame, no dithering: the smooth surface would otherwise dither into
        # noise that compresses badly (≈ 4× larger files).
        images = [render(tf, self.size).quantize(GIF_COLORS, dither=Image.Dither.NONE) for tf in frames]
        delay = int(round(1000 / fps))
        durations = [delay] * (len(images) - 1) + [max(delay, HOLD_LAST_MS)]
        if not hasattr(target, "write"):
            target = Path(target)
        images[0].save(target, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0, disposal=1)
        return len(images)
