"""A background training thread around one `Engine`: start, pause, step, resume,
stop, reset, and live hyperparameter changes — all thread-safe.

Threads and ownership:
- The *training thread* owns the `Engine` while it runs and is the only
  writer of `Telemetry`.
- Any other thread (the UI) calls the public methods below; they only touch
  fields guarded by `self._cond` (a Condition around one lock) and wake the
  training thread. Live changes are queued and applied between two steps.

The loop runs steps in short chunks (≤ `chunk_s` seconds), drains the
per-step scalars once per chunk (one host sync), checks them for NaN/Inf,
and renders the heavy telemetry at most every `eval_interval_s` seconds, so
telemetry stays off the hot path. `set_speed()` throttles a running GAN for a
lecture (slow motion): one step at a time on a schedule, and at
`SLOW_STEPS_PER_S` or slower every step publishes its frame. A step that raises is caught: the run goes
to state "error" with the message, and a later `start()`/`reset()` works.

Not here: the step itself (`engine.py`), storage (`telemetry.py`), any UI.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

import numpy as np

from ..checkpoints import CheckpointRing, capture
from ..config import TrainConfig
from ..engine import Engine
from ..telemetry import Telemetry
from .handle import RunControls
from ..timelapse import TimelapseRecorder

log = logging.getLogger(__name__)

SLOW_STEPS_PER_S = 10.0  # at or below this speed limit every step publishes its evaluation frame


class Runner(RunControls):
    """Owns one run: its engine, its training thread and its telemetry."""

    def __init__(self, config: TrainConfig, *, csv_bytes: bytes | None = None,
                 eval_interval_s: float = 0.25, chunk_s: float = 0.05, max_steps: int | None = None,
                 score_interval_s: float = 5.0, checkpoint_interval_s: float = 10.0,
                 engine: Engine | None = None, name: str = "gan-run") -> None:
        self.telemetry = Telemetry()
        self.eval_interval_s = eval_interval_s
        self.score_interval_s = score_interval_s  # digit IS/FD: ~0.3 s of CPU each
        self.chunk_s = chunk_s
        self.max_steps = max_steps
        self.name = name
        self._csv_bytes = csv_bytes
        self._cond = threading.Condition()
        # Fields below are guarded by self._cond.
        self._thread: threading.Thread | None = None
        self._stop = False
        self._paused = False
        self._pending_steps = 0  # single steps requested while paused
        self._pending_config: TrainConfig | None = None
        self._commands: list[tuple] = []  # (fn, done Event, result list) run on the training thread
        self._speed_limit: float | None = None  # steps per second while running; None = as fast as possible
        self._next_step_at = 0.0  # perf_counter time the next throttled step may start
        self._clock_start: float | None = None  # perf_counter at the thread's start (training thread writes)
        # A prebuilt engine (a loaded run file) or a new one; raises on bad config/data: nothing started.
        self._engine = engine if engine is not None else Engine(config, csv_bytes)
        config = self._engine.config
        self._config = config
        self.checkpoint_interval_s = checkpoint_interval_s
        self.cpu_seconds = 0.0  # CPU time used by the training thread (written by it, read by anyone)
        self.checkpoints = CheckpointRing()  # thread-safe; written by the training thread
        self.timelapse = TimelapseRecorder()  # thread-safe; written by the training thread
        self.telemetry.set_status("idle", "", device=str(self._engine.device), config=config)

    # --- public API (any thread) ----------------------------------------------------------

    def _owned(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def engine(self) -> Engine:
        """The engine; only safe to touch from outside while the thread is not running."""
        return self._engine

    @property
    def is_alive(self) -> bool:
        with self._cond:
            return self._thread is not None and self._thread.is_alive()

    def state(self) -> str:
        return self.telemetry.state

    def snapshot(self):
        return self.telemetry.snapshot()

    def start(self, paused: bool = False) -> None:
        """Start (or restart after stop/error) the training thread."""
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                self._paused = paused if paused else False
                self._cond.notify_all()
                return
            self._stop = False
            self._paused = paused
            self._pending_steps = 0
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self.telemetry.set_status("paused" if paused else "running", "")
            self._thread.start()

    def pause(self, message: str | None = None) -> None:
        """Pause after the current step; `message` (optional) says why, on the page."""
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        if message is not None:
            self.telemetry.set_status(message=message)

    def resume(self) -> None:
        with self._cond:
            alive = self._thread is not None and self._thread.is_alive()
            self._paused = False
            self._cond.notify_all()
        if not alive:
            self.start()

    def step(self, n: int = 1) -> None:
        """Run exactly `n` more steps, then stay paused."""
        if not 1 <= int(n) <= 100_000:
            raise ValueError("n must be between 1 and 100000")
        with self._cond:
            alive = self._thread is not None and self._thread.is_alive()
            self._paused = True
            self._pending_steps += int(n)
            self._cond.notify_all()
        if not alive:
            self.start(paused=True)
            with self._cond:
                self._pending_steps = max(self._pending_steps, int(n))
                self._cond.notify_all()

    def _wall_s(self) -> float:
        """Seconds since the training thread last started (the telemetry's wall-time column)."""
        start = self._clock_start
        return 0.0 if start is None else time.perf_counter() - start

    def update(self, **changes: Any) -> TrainConfig:
        """Change live hyperparameters; they take effect at the next step.

        Raises `ConfigError` (nothing changed) on an invalid value.
        """
        with self._cond:
            new = (self._pending_config or self._config).with_live(**changes)
            self._pending_config = new
            self._cond.notify_all()
        if not self.is_alive:
            self._apply_pending()
        return new

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (it finishes the current step)."""
        with self._cond:
            self._stop = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"training thread {self.name} did not stop within {timeout} s")
        with self._cond:
            self._thread = None
        self._run_commands()  # queued before the thread stopped: run them here
        if self.state() in ("running", "paused"):
            self.telemetry.set_status("stopped")

    # --- the training thread -------------------------------------------------------------

    def _run(self) -> None:
        engine, tel = self._engine, self.telemetry
        last_eval = 0.0
        t0 = self._clock_start = time.perf_counter()
        last_score = t0
        if len(self.checkpoints) == 0:
            self.checkpoints.add(capture(engine))  # step 0 (or the loaded step): always rewindable
        last_checkpoint = t0
        rate_steps, rate_t = engine.step_count, t0
        rate = 0.0
        cpu0 = time.thread_time() - self.cpu_seconds
        try:
            self._publish_frame()
            while True:
                with self._cond:
                    while not self._stop and self._paused and self._pending_steps == 0 and not self._commands:
                        if tel.state == "running":
                            tel.set_status("paused")
                        self._cond.wait()
                    if self._stop:
                        break
                    budget = self._pending_steps if self._paused else None
                    self._pending_steps = 0
                    limit = self._speed_limit if budget is None else None
                    if limit is not None and not self._commands:
                        wait_s = self._next_step_at - time.perf_counter()
                        if wait_s > 0:  # slow motion: sleep until the next step is due
                            self._cond.wait(wait_s)  # a pause, command or speed change wakes it early
                            continue
                if self._commands:
                    self._run_commands()
                    with self._cond:  # a command may have paused the run: re-check before stepping
                        self._pending_steps += budget or 0
                    continue
                if tel.state != "running" and budget is None:
                    tel.set_status("running", "")
                chunk_start = time.perf_counter()
                n_done = self._run_chunk(budget, max_n=1 if limit is not None else None)
                if limit is not None:
                    with self._cond:  # no catch-up burst after a slow step or a pause
                        if self._speed_limit == limit:
                            self._next_step_at = max(self._next_step_at, chunk_start) + n_done / limit
                self.cpu_seconds = time.thread_time() - cpu0
                if budget is not None and n_done < budget:
                    with self._cond:  # the rest of a long step(n) runs in the next chunks
                        self._pending_steps += budget - n_done
                now = time.perf_counter()
                stats = engine.drain_stats()
                if len(stats):
                    steps = np.arange(engine.step_count - len(stats) + 1, engine.step_count + 1)
                    if now - rate_t >= 0.5:
                        rate = max(0, engine.step_count - rate_steps) / (now - rate_t)  # ≥ 0 after a rewind
                        rate_steps, rate_t = engine.step_count, now
                    tel.record_steps(steps, np.full(len(stats), now - t0), stats, rate)
                    if not np.isfinite(stats).all() or not engine.parameters_finite():
                        self._pause_with(f"Paused at step {engine.step_count}: a loss or weight became "
                                         "NaN/Inf (training diverged). Lower the learning rates, then "
                                         "reset or rewind.")
                        self._publish_frame(safe=True)
                        continue
                slow = limit is not None and limit <= SLOW_STEPS_PER_S
                if budget is not None or slow or now - last_eval >= self.eval_interval_s:
                    self._publish_frame()
                    last_eval = time.perf_counter()
                if now - last_checkpoint >= self.checkpoint_interval_s:
                    self.checkpoints.add(capture(engine))
                    last_checkpoint = time.perf_counter()
                if engine.data.is_image and last_eval - last_score >= self.score_interval_s:
                    scores = engine.digit_scores()
                    if scores is not None:
                        tel.record_digit_scores(engine.step_count, scores.inception_score, scores.frechet_distance)
                    last_score = time.perf_counter()
                if self.max_steps is not None and engine.step_count >= self.max_steps:
                    self._publish_frame()
                    tel.set_status("finished", f"Reached {self.max_steps} steps.")
                    with self._cond:
                        self._paused = True
                        self._pending_steps = 0
                    continue
                if n_done == 0 and budget is None:
                    time.sleep(0.001)
        except Exception as exc:  # a crashed step is reported, not lost
            log.exception("training thread %s failed", self.name)
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            tel.set_status("error", f"Training stopped with an error at step {engine.step_count}: {tb}")
            return
        tel.set_status(rate=0.0)

    def _run_chunk(self, budget: int | None, max_n: int | None = None) -> int:
        """Run steps until the chunk time is up, `budget` (or `max_n`) steps, or a change arrives."""
        engine = self._engine
        deadline = time.perf_counter() + self.chunk_s
        limit = budget if budget is not None else (max_n or 4000)
        if self.max_steps is not None:
            limit = min(limit, max(self.max_steps - engine.step_count, 0))
        limit = min(limit, len(engine.stats) - engine.rows)  # stats are drained once per chunk
        n = 0
        while n < limit:
            if self._pending_config is not None:  # unlocked peek; applied under the lock
                self._apply_pending()
            if self._commands:
                break
            engine.step()
            n += 1
            if self._stop or (budget is None and (self._paused or time.perf_counter() >= deadline)):
                break
        return n

    def _pause_with(self, message: str) -> None:
        with self._cond:
            self._paused = True
            self._pending_steps = 0
        self.telemetry.set_status("paused", message)
