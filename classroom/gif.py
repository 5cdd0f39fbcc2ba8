"""Time-lapse GIFs: draws `gan_core.timelapse` frames with Pillow (no plotting library).

2-D runs: a scatter of real (blue) and generated (orange) points over D's decision
surface (darker = D says "fake"), inside an axis box, with the step and mode coverage.
Digits: an 8×8 mosaic of 28×28 samples, upscaled ×2. NaN/Inf points are skipped, NaN
pixels drawn black.

Not here: which frames are kept (`gan_core.timelapse.TimelapseRecorder`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gan_core.timelapse import TimelapseFrame

POINT_SIZE = 360  # px, square image for 2-D runs
HEADER = 28  # px strip above the plot for the step label and legend
PAD = 8  # px around the plot box
DIGIT_SCALE = 2  # digits: each 28×28 sample drawn at 56×56
REAL_RGB = (31, 119, 180)  # same colours as plots.py: blue real, orange generated
FAKE_RGB = (255, 127, 14)
SURFACE_DARKEST = 185  # grey level where D(x) = 0 ("fake"); white where D(x) = 1 ("real")
SURFACE_BANDS = 8  # grey levels the surface is drawn with
HOLD_LAST_MS = 1000  # the final frame stays up a moment before the GIF loops
MIN_FPS, MAX_FPS = 1, 50  # browsers slow down GIF delays under 20 ms
GIF_COLORS = 64  # palette size per frame: enough for two point colours, grey shades and text


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
        levels = (SURFACE_DARKEST + (255 - SURFACE_DARKEST) * (tf.surface / 255.0)).astype(np.uint8)
        grey = np.asarray(Image.fromarray(np.flipud(levels), "L").resize((side, side), Image.BILINEAR))
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


def to_gif(frames: list[TimelapseFrame], target: str | os.PathLike | io.IOBase, fps: float = 10,
           size: int = POINT_SIZE) -> int:
    """Write an animated, looping GIF of `frames`; returns the number of frames.

    `target` is a file path or a writable binary file object (e.g. `io.BytesIO`).
    """
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must be between {MIN_FPS} and {MAX_FPS}, got {fps}")
    if not 96 <= size <= 2048:
        raise ValueError(f"size must be between 96 and 2048 pixels, got {size}")
    if not frames:
        raise ValueError("no frames recorded yet: train for a moment first")
    # Own palette per frame, no dithering: the smooth surface would otherwise dither into
    # noise that compresses badly (≈ 4× larger files).
    images = [render(tf, size).quantize(GIF_COLORS, dither=Image.Dither.NONE) for tf in frames]
    delay = int(round(1000 / fps))
    durations = [delay] * (len(images) - 1) + [max(delay, HOLD_LAST_MS)]
    if not hasattr(target, "write"):
        target = Path(target)
    images[0].save(target, format="GIF", save_all=True, append_images=images[1:],
                   duration=durations, loop=0, disposal=1)
    return len(images)
