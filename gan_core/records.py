"""The records a run publishes: the per-step statistic columns and the evaluation frame.

Shared by the engine (which writes them), telemetry (which stores them) and any
reader. Plain data only. Not here: computing them (`engine.py`), storing them
(`telemetry.py`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

# Columns of the per-step statistics, in order.
STAT_FIELDS = (
    "d_loss",  # D loss of the last D update of the step
    "g_loss",  # G loss of the G update
    "d_real",  # mean D(x) shown as P(real) (or raw score for hinge/WGAN)
    "d_fake",  # mean D(G(z)) in the D update (before D's update)
    "d_fake_g",  # mean D(G(z)) in the G update (after D's update, before G's)
    "g_grad_norm",  # ‖∇θ_G L_G‖₂
    "d_grad_norm",  # ‖∇θ_D L_D‖₂ (last D update)
)
N_STATS = len(STAT_FIELDS)
# A telemetry table is (n, 2 + N_STATS): step, wall-clock seconds, then STAT_FIELDS.
TABLE_COLUMNS = ("step", "wall_s", *STAT_FIELDS)


def column(table: np.ndarray, name: str) -> np.ndarray:
    """Column `name` (one of TABLE_COLUMNS) of a telemetry table."""
    return table[:, TABLE_COLUMNS.index(name)]


@dataclass(frozen=True)
class EvalFrame:
    """Heavy telemetry at one step; numpy arrays, read-only."""

    step: int
    d_real_values: np.ndarray  # (N,) D on the fixed real batch (displayed scale)
    d_fake_values: np.ndarray  # (N,) D on G(fixed noise)
    real: np.ndarray  # (N, 2) points or (n, 28, 28) images, in data space
    fake: np.ndarray  # (N, 2) points or (n, 28, 28) images from `generator` on the fixed noise
    surface: np.ndarray | None  # (R, R) D over `surface_extent`, 2-D only
    surface_extent: tuple[float, float, float, float] | None  # x0, x1, y0, y1
    g_field: np.ndarray | None  # (N, 2) −∇ₓ L_G at the fake points: where G pushes them
    value_estimate: float | None  # V(D, G) = E log D(x) + E log(1 − D(G(z))), BCE losses only
    modes_covered: int | None
    n_modes: int | None
    hq_percent: float | None
    # Which net drew `fake` and the coverage: "G (EMA of weights)" when the run keeps an EMA of G
    # (what the quality benchmarks score), else "G". The raw G's samples on the same noise are in
    # `fake_raw` (None without an EMA: then `fake` is the raw G). D's histograms use the raw G.
    generator: str = "G"
    fake_raw: np.ndarray | None = None
    # (rows, cols, 2) G's image of a regular grid in the (z₁, z₂) plane of its noise space
    # (`evaluation.manifold_noise`), in data units; 2-D data only.
    manifold: np.ndarray | None = None


class LockGuarded:
    """A holder of records guarded by `self._lock` that may move to another process (a run
    moving between trainer processes): pickled without its lock, unpickled with a fresh one."""

    _lock: threading.Lock

    def __getstate__(self) -> dict:
        with self._lock:
            state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
