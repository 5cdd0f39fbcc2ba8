"""Lock-guarded, bounded telemetry published as immutable snapshots.

Written only by the training thread (`Runner`), read by anyone (the UI) through
`snapshot()`, which copies under the lock and returns frozen data with
read-only numpy arrays — so a reader never sees a half-written step.

Per-step scalars live in a `DecimatingSeries`: a fixed-capacity table that,
when full, averages adjacent pairs and doubles its bin width. Memory stays
bounded however long the run, and the whole run from step 0 stays visible
(at coarser resolution for older steps), which a plain ring buffer would drop.
The latest `RECENT` steps are also kept at full resolution in a ring buffer
for detectors that need raw variability (oscillation, collapse).

Live changes (loss, learning rates, k, smoothing, …) are kept as *events*
(step, short text) so the plots can mark where the rules of the game changed.
`history()` / `restore()` carry the plots' data through a saved run file.

Not here: computing the numbers (`engine.py`), drawing them (`plots.py`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import STAT_FIELDS, EvalFrame, LockGuarded, column

HISTORY_CAPACITY = 4096  # rows of the decimated whole-run history
RECENT = 2048  # full-resolution recent steps
MAX_EVENTS = 200  # live changes kept (oldest dropped)
MAX_EVENT_CHARS = 80
# Short names of live config fields for event labels on the plots.
EVENT_WORDS = {"loss": "loss", "g_lr": "G lr", "d_lr": "D lr", "beta1": "β₁", "beta2": "β₂", "n_critic": "k",
               "label_smoothing": "smoothing", "two_sided_smoothing": "two-sided", "batch_size": "batch",
               "r1_gamma": "R1 γ"}


def describe_change(old: Any, new: Any) -> str:
    """A short label for a live config change, e.g. "D lr 0.001→0.01, k 1→5" ("" if none)."""
    parts = []
    for name, word in EVENT_WORDS.items():
        a, b = getattr(old, name, None), getattr(new, name, None)
        if a != b:
            fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)
            parts.append(f"{word} → {b}" if name == "loss" else f"{word} {fmt(a)}→{fmt(b)}")
    return ", ".join(parts)[:MAX_EVENT_CHARS]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


class DecimatingSeries:
    """Bounded table of (step, wall time, stats…) rows averaged into bins.

    Each stored row is the mean of `bin_size` consecutive steps (step and time
    columns keep the bin's last value). When the table fills, adjacent rows
    are merged and `bin_size` doubles. Not thread-safe: `Telemetry` holds the lock.
    """

    def __init__(self, n_cols: int, capacity: int = HISTORY_CAPACITY) -> None:
        if capacity < 4 or capacity % 2:
            raise ValueError("capacity must be an even number ≥ 4")
        self.capacity = capacity
        self.data = np.zeros((capacity, 2 + n_cols))
        self.size = 0
        self.bin_size = 1
        self._acc = np.zeros(2 + n_cols)
        self._acc_n = 0

    def extend(self, steps: np.ndarray, times: np.ndarray, stats: np.ndarray) -> None:
        rows = np.column_stack([steps, times, stats])
        for row in rows:  # n is small per call (a chunk of steps)
            self._acc[2:] += row[2:]
            self._acc[:2] = row[:2]
            self._acc_n += 1
            if self._acc_n == self.bin_size:
                self._push()

    def _push(self) -> None:
        if self.size == self.capacity:
            half = self.capacity // 2
            merged = self.data.reshape(half, 2, -1)
            self.data[:half, 2:] = merged[:, :, 2:].mean(1)
            self.data[:half, :2] = merged[:, 1, :2]
            self.size = half
            self.bin_size *= 2
            # The pending accumulator (bin_size/2 steps) is now half a bin: keep it.
            return
        out = self.data[self.size]
        out[:2] = self._acc[:2]
        out[2:] = self._acc[2:] / self._acc_n
        self.size += 1
        self._acc[:] = 0
        self._acc_n = 0

    def view(self) -> np.ndarray:
        return self.data[: self.size]

    def truncate_after(self, step: float) -> None:
        """Forget rows after `step` (a rewind abandons that future)."""
        self.size = int(np.searchsorted(self.data[: self.size, 0], step, side="right"))
        self._acc[:] = 0
        self._acc_n = 0


class RingBuffer:
    """Last `capacity` rows, oldest first on read."""

    def __init__(self, n_cols: int, capacity: int = RECENT) -> None:
        self.data = np.zeros((capacity, n_cols))
        self.capacity = capacity
        self.count = 0  # rows ever written

    def extend(self, rows: np.ndarray) -> None:
        rows = rows[-self.capacity:]
        start = self.count % self.capacity
        first = min(len(rows), self.capacity - start)
        self.data[start : start + first] = rows[:first]
        self.data[: len(rows) - first] = rows[first:]
        self.count += len(rows)

    def truncate_after(self, step: float) -> None:
        rows = self.view()
        rows = rows[rows[:, 0] <= step].copy()
        self.count = 0
        self.extend(rows)

    def view(self) -> np.ndarray:
        if self.count < self.capacity:
            return self.data[: self.count]
        start = self.count % self.capacity
        return np.concatenate([self.data[start:], self.data[:start]])


@dataclass(frozen=True)
class Snapshot:
    """Everything the UI shows, frozen at one moment."""

    version: int  # increases on every publish; equal versions mean equal content
    state: str  # idle | running | paused | stopped | finished | error
    message: str  # why the run paused or failed; "" otherwise
    step: int
    steps_per_s: float
    device: str
    config: Any  # the TrainConfig in effect
    history: np.ndarray  # (n, 2 + len(STAT_FIELDS)) step, wall_s, stats (decimated)
    history_bin: int  # steps per history row
    recent: np.ndarray  # (m, 2 + len(STAT_FIELDS)) full resolution, last steps
    frame: EvalFrame | None  # latest heavy telemetry
    coverage: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # step, modes, hq%
    digit_scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # step, IS, FD
    # Which network moved last: "both" after training steps, "d" or "g" after a single
    # D-only / G-only update (the lecture's Step D / Step G), "" before any update.
    last_update: str = ""
    events: tuple = ()  # ((step, "D lr 0.001→0.01"), …): live changes, oldest first
    # The frame before `frame` (an earlier step), so a plot can show what one update changed:
    # D's old decision boundary after Step D only, the fakes' old positions after Step G only.
    previous_frame: EvalFrame | None = None

    def column(self, name: str, recent: bool = False) -> np.ndarray:
        return column(self.recent if recent else self.history, name)


@dataclass(frozen=True)
class History:
    """What a saved run file carries of the plots (see `checkpoints.save_run`)."""

    rows: np.ndarray  # (n, 2 + N_STATS) the decimated history
    bin_size: int  # steps per row
    coverage: np.ndarray  # (m, 3) step, modes covered, HQ%
    digit_scores: np.ndarray  # (k, 3) step, IS, FD
    events: tuple = ()  # ((step, text), …)


class Telemetry(LockGuarded):
    """The one shared structure between the training thread and readers.

    Owner of every field: the training thread writes (via the methods below),
    readers call `snapshot()`. One lock guards all fields.
    """

    def __init__(self, history_capacity: int = HISTORY_CAPACITY, recent: int = RECENT) -> None:
        self._lock = threading.Lock()
        self._history_capacity = history_capacity
        self._recent_capacity = recent
        self._version = 0
        self._state = "idle"
        self._message = ""
        self._device = ""
        self._config: Any = None
        self._step = 0
        self._rate = 0.0
        self._frame: EvalFrame | None = None
        self._previous_frame: EvalFrame | None = None
        self._last_update = ""
        self._clear_series()
        self._cached: Snapshot | None = None

    def _clear_series(self) -> None:
        n = 2 + len(STAT_FIELDS)
        self._history = DecimatingSeries(len(STAT_FIELDS), self._history_capacity)
        self._recent = RingBuffer(n, self._recent_capacity)
        self._coverage = RingBuffer(3, self._history_capacity)  # step, modes covered, HQ%
        self._digit_scores = RingBuffer(3, self._history_capacity)  # step, classifier IS, FD
        self._events: list[tuple[int, str]] = []

    def reset(self) -> None:
        with self._lock:
            self._clear_series()
            self._frame = self._previous_frame = None
            self._step = 0
            self._rate = 0.0
            self._message = ""
            self._last_update = ""
            self._version += 1

    def truncate_after(self, step: int) -> None:
        """Drop everything recorded after `step` (after a rewind to that step)."""
        with self._lock:
            self._history.truncate_after(step)
            for buffer in (self._recent, self._coverage, self._digit_scores):
                buffer.truncate_after(step)
            if self._frame is not None and self._frame.step > step:
                self._frame = self._previous_frame = None
            self._events = [e for e in self._events if e[0] <= step]
            self._step = step
            self._version += 1

    def record_steps(self, steps: np.ndarray, times: np.ndarray, stats: np.ndarray, rate: float) -> None:
        if len(steps) == 0:
            return
        with self._lock:
            self._history.extend(steps, times, stats)
            self._recent.extend(np.column_stack([steps, times, stats]))
            self._step = int(steps[-1])
            self._rate = float(rate)
            self._last_update = "both"
            self._version += 1

    def record_update(self, network: str) -> None:
        """A single update of one network ("d" or "g") outside a training step."""
        if network not in ("d", "g"):
            raise ValueError(f"network must be 'd' or 'g', got {network!r}")
        with self._lock:
            self._last_update = network
            self._version += 1

    def record_frame(self, frame: EvalFrame) -> None:
        """The latest frame. The one it replaces becomes `previous_frame` if it is of an earlier
        step; one of the same step (a frame published again, e.g. after a pause) shows no change
        and keeps the previous frame; a later one (the run went back) leaves none."""
        with self._lock:
            if self._frame is None or frame.step < self._frame.step:
                self._previous_frame = None
            elif frame.step > self._frame.step:
                self._previous_frame = self._frame
            self._frame = frame
            if frame.modes_covered is not None:
                self._coverage.extend(np.array([[frame.step, frame.modes_covered, frame.hq_percent]]))
            self._version += 1

    def record_change(self, step: int, old: Any, new: Any) -> None:
        """Remember a live config change at `step` (no-op when no live field changed)."""
        text = describe_change(old, new)
        if not text:
            return
        with self._lock:
            self._events = [*self._events, (int(step), text)][-MAX_EVENTS:]
            self._version += 1

    def history(self) -> History:
        """The plots' data, for a run file."""
        snap = self.snapshot()
        return History(snap.history, snap.history_bin, snap.coverage, snap.digit_scores, snap.events)

    def restore(self, history: History, step: int) -> None:
        """Put a run file's plot data back (the full-resolution recent steps are not saved)."""
        with self._lock:
            self._clear_series()
            rows = np.asarray(history.rows, dtype=float)[-self._history_capacity:]
            self._history.data[: len(rows)] = rows
            self._history.size = len(rows)
            self._history.bin_size = int(history.bin_size)
            for buffer, table in ((self._coverage, history.coverage), (self._digit_scores, history.digit_scores)):
                if len(table):
                    buffer.extend(np.asarray(table, dtype=float))
            self._events = [(int(s), str(t)) for s, t in history.events][-MAX_EVENTS:]
            self._frame = self._previous_frame = None
            self._step = int(step)
            self._version += 1

    def record_digit_scores(self, step: int, inception_score: float, frechet_distance: float) -> None:
        with self._lock:
            self._digit_scores.extend(np.array([[step, inception_score, frechet_distance]]))
            self._version += 1

    def set_status(self, state: str | None = None, message: str | None = None, *,
                   device: str | None = None, config: Any = None, step: int | None = None,
                   rate: float | None = None) -> None:
        with self._lock:
            if state is not None:
                self._state = state
            if message is not None:
                self._message = message
            if device is not None:
                self._device = device
            if config is not None:
                self._config = config
            if step is not None:
                self._step = step
            if rate is not None:
                self._rate = rate
            self._version += 1

    @property
    def state(self) -> str:
        """The run state without copying a snapshot (cheap)."""
        with self._lock:
            return self._state

    @property
    def rate(self) -> float:
        """Steps per second lately (cheap)."""
        with self._lock:
            return self._rate

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def snapshot(self) -> Snapshot:
        """An immutable copy of the current state (cached until the next write)."""
        with self._lock:
            if self._cached is not None and self._cached.version == self._version:
                return self._cached
            snap = Snapshot(
                version=self._version,
                state=self._state,
                message=self._message,
                step=self._step,
                steps_per_s=self._rate,
                device=self._device,
                config=self._config,
                history=_frozen(self._history.view()),
                history_bin=self._history.bin_size,
                recent=_frozen(self._recent.view()),
                frame=self._frame,
                coverage=_frozen(self._coverage.view()),
                digit_scores=_frozen(self._digit_scores.view()),
                last_update=self._last_update,
                events=tuple(self._events),
                previous_frame=self._previous_frame,
            )
            self._cached = snap
            return snap
