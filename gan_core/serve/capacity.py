"""How much training this machine gives a class: measured here, never a constant from another box.

Work is counted in *cost units* (`step_cost`: one step of a batch-64, width-32, depth-3 2-D run
with k = 1 is one unit; a bigger run costs more), so runs of any size add up. A trainer thread's
*capacity* is the cost units per second it trains:

- `calibrate()` measures it once, at start: a reference cohort of `CALIBRATION_RUNS` runs stepped
  for `CALIBRATION_S` seconds on this core, discounted by the share of a trainer's time that
  evaluation frames take (`FRAME_SHARE`), since the reference steps draw none;
- `CapacityMeter` keeps measuring it while a class trains: the units a trainer thread stepped per
  second of wall time, counted only over stretches when it always had runs to step (saturated),
  so what it reports includes frames, commands, the web server beside it and the box's speed.

Machines differ 2.5–3× (AVX-512 or not, shared hosts): admission (`classroom/sessions.py`)
divides a capacity measured on *this* box by the rate it promises each student.
Not here: admission, scheduling (`trainer.py`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from ..config import TrainConfig, default_config

FRAME_SHARE = 0.05  # at most this share of a trainer thread's time goes to evaluation frames
# (0.2 → 0.1 → 0.05 each let a class of 30 train faster: `python -m benchmarks classroom`)
CALIBRATION_RUNS = 8
CALIBRATION_S = 0.1  # one trial; the best of CALIBRATION_TRIALS counts (contention only slows a trial)
CALIBRATION_TRIALS = 4
DIGITS_COST = 100.0  # a DCGAN digits step against the reference (measured: ~40 vs ~4,000 steps/s per core)
METER_WINDOW_S = 2.0  # a measurement covers at least this much saturated wall time
METER_WEIGHT = 0.3  # each new window's weight in the running estimate


def step_cost(config: TrainConfig) -> float:
    """Cost units of one step of `config`: work grows with batch × width² × depth × (k + 1) for the
    MLPs (a batch-64 width-32 depth-3 k=1 step is 1); digits cost DIGITS_COST."""
    if config.is_image:
        return DIGITS_COST
    work = (config.batch_size / 64) * (config.width / 32) ** 2 * (config.depth / 3) * (config.n_critic + 1) / 2
    return max(1.0, work)


def reference_config(seed: int = 0) -> TrainConfig:
    """The run one cost unit is defined by (ring-8, width 32, depth 3, batch 64, k = 1)."""
    return replace(default_config("ring8", batch_size=64, width=32, n_critic=1), seed=seed)


def calibrate(seconds: float = CALIBRATION_S, runs: int = CALIBRATION_RUNS, device: str = "auto") -> float:
    """Cost units per second one trainer thread gives here, from a short reference cohort (the
    best of a few trials), after the share frames will take. Runs on the calling thread."""
    from ..engine import Engine
    from .cohort import Cohort, cohort_key

    engines = [Engine(replace(reference_config(seed=i), device=device)) for i in range(runs)]
    cohort = Cohort(cohort_key(engines[0].config, engines[0].device))
    for engine in engines:
        cohort.join(engine)
    cohort.step()  # first step allocates
    best = 0.0
    for _ in range(CALIBRATION_TRIALS):
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(10):
                cohort.step()
            for engine in engines:
                engine.drain_stats()
            steps += 10
        best = max(best, steps / (time.perf_counter() - t0))
    return best * runs * step_cost(engines[0].config) * (1.0 - FRAME_SHARE)


class CapacityMeter:
    """A trainer thread's capacity: calibrated at start, then measured while it is saturated.
    Thread-safe: the trainer thread adds, anyone reads."""

    def __init__(self, calibrated: float) -> None:
        self._lock = threading.Lock()
        self._estimate = calibrated  # cost units / s
        self._measured = False
        self._units = 0.0
        self._wall = 0.0

    def add(self, units: float, wall_s: float, saturated: bool) -> None:
        """`units` stepped in `wall_s` seconds of one loop of the trainer thread; only loops in
        which it never waited for work count (otherwise it could have stepped more)."""
        if not saturated:
            return
        with self._lock:
            self._units += units
            self._wall += wall_s
            if self._wall >= METER_WINDOW_S:
                rate = self._units / self._wall
                weight = METER_WEIGHT if self._measured else 1.0
                self._estimate = (1 - weight) * self._estimate + weight * rate
                self._measured = True
                self._units = self._wall = 0.0

    @property
    def units_per_s(self) -> float:
        with self._lock:
            return self._estimate

    @property
    def measured(self) -> bool:
        """Whether the estimate comes from training here (not only the calibration)."""
        with self._lock:
            return self._measured
