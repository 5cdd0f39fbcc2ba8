"""A bounded time-lapse of a run's evaluation frames (the frames only; GIFs are drawn by
`classroom.gif`).

`TimelapseRecorder.add(frame)` keeps a compact copy of each `EvalFrame`
(2-D points as float32, digits as a uint8 mosaic). Memory stays bounded
however long the run: when `max_frames` are kept, every other one is dropped
and from then on only every 2nd (4th, 8th …) offered frame is kept, so the
time-lapse always spans the whole run at an even pace. The newest frame is
always shown last.

`to_tensors()` / `restore()` carry the frames inside a saved run file
(`checkpoints.save_run(..., extra_tensors=…)`), so a loaded run's time-lapse
still starts at step 0.

Thread-safe (one lock): the training thread adds, the UI exports.
Not here: deciding when to record (the runner), drawing (`classroom.gif`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from .records import EvalFrame, LockGuarded

MAX_FRAMES = 200
MOSAIC = 8  # digits: MOSAIC × MOSAIC samples kept per frame


@dataclass(frozen=True)
class TimelapseFrame:
    """What the time-lapse keeps of one `EvalFrame` (compact, read-only)."""

    step: int
    kind: str  # "points" | "digits"
    real: np.ndarray | None  # (N, 2) float32, points only
    fake: np.ndarray  # (N, 2) float32 points, or (8·28, 8·28) uint8 mosaic
    surface: np.ndarray | None  # (R, R) uint8, 0 = "fake" … 255 = "real", rows = y ascending; points only
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


def _surface_levels(surface: np.ndarray | None) -> np.ndarray | None:
    """D's surface as uint8 levels: probabilities as they are, raw scores min-max scaled."""
    if surface is None:
        return None
    s = np.nan_to_num(np.asarray(surface, np.float64), nan=0.5, posinf=1.0, neginf=0.0)
    if s.min() < 0.0 or s.max() > 1.0:  # raw critic scores (hinge, WGAN): relative shading
        span = s.max() - s.min()
        s = (s - s.min()) / span if span > 0 else np.full_like(s, 0.5)
    return np.round(255 * s).astype(np.uint8)


def _mosaic(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) in [-1, 1] → (8·28, 8·28) uint8; missing tiles and NaN pixels are black."""
    n, h, w = images.shape
    tiles = np.full((MOSAIC * MOSAIC, h, w), -1.0, np.float32)
    tiles[: min(n, MOSAIC * MOSAIC)] = images[: MOSAIC * MOSAIC]
    tiles = np.nan_to_num(tiles, nan=-1.0, posinf=1.0, neginf=-1.0)
    grid = tiles.reshape(MOSAIC, MOSAIC, h, w).transpose(0, 2, 1, 3).reshape(MOSAIC * h, MOSAIC * w)
    return np.round((np.clip(grid, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _caption(modes_covered: int | None, n_modes: int | None) -> str:
    return f"modes {modes_covered}/{n_modes}" if modes_covered is not None and n_modes else ""


def compact(frame: EvalFrame, extent: tuple[float, float, float, float] | None = None) -> TimelapseFrame:
    """The parts of `frame` a time-lapse needs, in compact form."""
    caption = _caption(frame.modes_covered, frame.n_modes)
    if _kind(frame) == "digits":
        return TimelapseFrame(frame.step, "digits", None, _mosaic(np.asarray(frame.fake, np.float32)),
                              None, None, caption)
    return TimelapseFrame(frame.step, "points", np.asarray(frame.real, np.float32),
                          np.asarray(frame.fake, np.float32), _surface_levels(frame.surface),
                          extent or _extent_of(frame), caption)


class TimelapseRecorder(LockGuarded):
    """Bounded sequence of compact frames spanning the whole run (see module docstring)."""

    def __init__(self, max_frames: int = MAX_FRAMES) -> None:
        if max_frames < 2 or max_frames % 2:
            raise ValueError(f"max_frames must be an even number ≥ 2, got {max_frames}")
        self.max_frames = max_frames
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

    # --- in a run file --------------------------------------------------------------------

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The frames as `timelapse/…` tensors for a run file; {} when there are none."""
        frames = self.frames()
        with self._lock:
            pace = [self._stride, self._offered]
        if not frames:
            return {}
        modes = [[-1, -1] if not f.caption else [int(v) for v in f.caption.split()[1].split("/")] for f in frames]
        out = {"timelapse/step": torch.tensor([f.step for f in frames], dtype=torch.int64),
               "timelapse/pace": torch.tensor(pace, dtype=torch.int64),
               "timelapse/modes": torch.tensor(modes, dtype=torch.int64),
               "timelapse/fake": torch.from_numpy(np.stack([f.fake for f in frames]))}
        if frames[0].kind == "points":
            out["timelapse/real"] = torch.from_numpy(np.stack([f.real for f in frames]))
            shape = next((f.surface.shape for f in frames if f.surface is not None), (1, 1))
            grey = np.full(shape, 128, np.uint8)  # a frame without D's surface (none from the engine)
            out["timelapse/surface"] = torch.from_numpy(np.stack([grey if f.surface is None else f.surface
                                                                  for f in frames]))
            out["timelapse/extent"] = torch.tensor(frames[0].extent, dtype=torch.float64)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], last_step: int,
                     max_frames: int = MAX_FRAMES) -> "TimelapseRecorder":
        """A recorder holding the frames of `to_tensors()` (a loaded run, now at `last_step`),
        ready to go on recording at the same pace. No `timelapse/` tensors: an empty one.
        Raises ValueError when they are inconsistent (a damaged or hand-made file).
        """
        recorder = cls(max_frames)
        t = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("timelapse/")}
        if t:
            recorder._frames, (recorder._stride, recorder._offered) = _frames_from(t, max_frames, last_step)
            recorder._extent = recorder._frames[0].extent
        return recorder


def _frames_from(t: dict[str, torch.Tensor], max_frames: int, last_step: int):
    """Validated frames and (stride, offered) from the `timelapse/…` tensors (prefix removed)."""
    def fail(why: str):
        raise ValueError(f"run file time-lapse is damaged: {why}")

    points = "real" in t
    expected = {"step", "pace", "modes", "fake"} | ({"real", "surface", "extent"} if points else set())
    if set(t) != expected:
        fail(f"tensors {sorted(t)}, expected {sorted(expected)}")
    steps, pace, modes, fake = t["step"], t["pace"], t["modes"], t["fake"]
    n = len(steps)
    if steps.dtype != torch.int64 or steps.ndim != 1 or not 1 <= n <= max_frames:
        fail(f"1…{max_frames} int64 steps expected")
    if n > 1 and not bool((steps[1:] > steps[:-1]).all()) or int(steps[0]) < 0 or int(steps[-1]) > last_step:
        fail(f"steps must increase from ≥ 0 to ≤ the run's step {last_step}")
    if pace.dtype != torch.int64 or pace.shape != (2,) or int(pace[0]) < 1 or int(pace[1]) < 0:
        fail("pace must be (stride ≥ 1, offered ≥ 0)")
    if modes.dtype != torch.int64 or modes.shape != (n, 2):
        fail("modes must be (frames, 2) int64")
    if points:
        real, surface, extent = t["real"], t["surface"], t["extent"]
        ok = (fake.dtype == real.dtype == torch.float32 and fake.ndim == real.ndim == 3 and len(fake) == len(real) == n
              and fake.shape[2] == real.shape[2] == 2 and surface.dtype == torch.uint8 and surface.ndim == 3
              and len(surface) == n and extent.shape == (4,) and bool(torch.isfinite(extent).all()))
        if not ok:
            fail("points frames need float32 (frames, N, 2) real/fake, uint8 surfaces and a finite extent")
        ext = tuple(float(v) for v in extent)
    elif fake.dtype != torch.uint8 or fake.shape != (n, MOSAIC * 28, MOSAIC * 28):
        fail(f"digit frames must be uint8 ({n}, {MOSAIC * 28}, {MOSAIC * 28}) mosaics")
    frames = []
    for i in range(n):
        covered, n_modes = (int(v) for v in modes[i])
        caption = _caption(covered if covered >= 0 else None, n_modes if n_modes > 0 else None)
        arr = lambda x: x[i].numpy().copy()
        if points:
            frames.append(TimelapseFrame(int(steps[i]), "points", arr(real), arr(fake), arr(surface), ext, caption))
        else:
            frames.append(TimelapseFrame(int(steps[i]), "digits", None, arr(fake), None, None, caption))
    return frames, (int(pace[0]), int(pace[1]))
