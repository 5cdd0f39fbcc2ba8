"""A run on a training thread of its own: start, pause, step, resume, stop — all thread-safe.

Threads and ownership:
- The *training thread* owns the `Engine` while it runs and is the only writer of the telemetry.
- Any other thread (the page) calls the `RunHandle` methods; they touch only fields guarded by
  `self._cond` and wake the training thread. Live changes and commands run between two steps.

The loop runs steps in short chunks (≤ `chunk_s` seconds) and after each does what every handle
does after a chunk (`RunControls._after_chunk`: statistics drained once per chunk — one host
sync — NaN pause, frames, checkpoints). `set_speed()` throttles it for a lecture: one step at a
time on a schedule. A step that raises is caught: the run goes to state "error" with the message,
and a later `start()`/`reset()` works.

Used for digits runs (a core each) and, with GAN_CLASSROOM_COHORTS=0, for every run; the 2-D
runs of a class share trainer threads instead (`trainer.py`).
Not here: what the handles share (`handle.py`), the step itself (`gan_core.engine`).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from ..checkpoints import capture
from ..config import TrainConfig
from ..engine import Engine
from .handle import RunControls

if TYPE_CHECKING:
    from .handle import RunHandle


class Runner(RunControls):
    """Owns one run: its engine, its training thread and its telemetry."""

    def __init__(self, config: TrainConfig, *, csv_bytes: bytes | None = None,
                 eval_interval_s: float = 0.25, chunk_s: float = 0.05, max_steps: int | None = None,
                 score_interval_s: float = 5.0, checkpoint_interval_s: float = 10.0,
                 engine: Engine | None = None, name: str = "gan-run",
                 on_thread_start: Callable[[], object] | None = None) -> None:
        super().__init__(config, cond=threading.Condition(), csv_bytes=csv_bytes, engine=engine, name=name,
                         eval_interval_s=eval_interval_s, checkpoint_interval_s=checkpoint_interval_s,
                         score_interval_s=score_interval_s, max_steps=max_steps)
        self.chunk_s = chunk_s
        self.on_thread_start = on_thread_start  # called first on the training thread (its priority)
        self._thread: threading.Thread | None = None  # (cond)
        self._clock_start: float | None = None  # perf_counter at the thread's start (training thread)

    # --- RunControls hooks -----------------------------------------------------------------------

    def _owned(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _wall_s(self) -> float:
        """Seconds since the training thread last started."""
        start = self._clock_start
        return 0.0 if start is None else time.perf_counter() - start

    # --- controls (any thread) -------------------------------------------------------------------

    @property
    def is_alive(self) -> bool:
        with self._cond:
            return self._owned()

    def start(self, paused: bool = False) -> None:
        """Start (or restart after stop/error) the training thread."""
        with self._cond:
            if self._owned():
                self._paused = paused
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
            alive = self._owned()
            self._paused = False
            self._cond.notify_all()
        if not alive:
            self.start()

    def step(self, n: int = 1) -> None:
        """Run exactly `n` more steps, then stay paused."""
        if not 1 <= int(n) <= 100_000:
            raise ValueError("n must be between 1 and 100000")
        with self._cond:
            alive = self._owned()
            self._paused = True
            self._pending_steps += int(n)
            self._cond.notify_all()
        if not alive:
            self.start(paused=True)
            with self._cond:
                self._pending_steps = max(self._pending_steps, int(n))
                self._cond.notify_all()

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

    # --- the training thread ---------------------------------------------------------------------

    def _run(self) -> None:
        if self.on_thread_start is not None:
            self.on_thread_start()
        engine = self._engine
        self._clock_start = time.perf_counter()
        if len(self.checkpoints) == 0:
            self.checkpoints.add(capture(engine))  # step 0 (or the loaded step): always rewindable
        self._last_checkpoint = self._last_score = time.perf_counter()
        self._rate_steps, self._rate_t = engine.step_count, time.perf_counter()
        cpu0 = time.thread_time() - self.cpu_seconds
        try:
            self._publish_frame()
            while True:
                with self._cond:
                    while not self._stop and self._paused and self._pending_steps == 0 and not self._commands:
                        if self.telemetry.state == "running":
                            self.telemetry.set_status("paused")
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
                if self.telemetry.state != "running" and budget is None:
                    self.telemetry.set_status("running", "")
                chunk_start = time.perf_counter()
                n_done = self._run_chunk(budget, max_n=1 if limit is not None else None)
                if limit is not None:
                    with self._cond:  # no catch-up burst after a slow step or a pause
                        if self._speed_limit == limit:
                            self._book_slowed_steps(chunk_start, n_done, limit)
                self.cpu_seconds = time.thread_time() - cpu0
                if budget is not None and n_done < budget:
                    with self._cond:  # the rest of a long step(n) runs in the next chunks
                        self._pending_steps += budget - n_done
                self._after_chunk()
                if n_done == 0 and budget is None:
                    time.sleep(0.001)
        except Exception as exc:  # a crashed step is reported, not lost
            self._fail(exc)
            return
        self.telemetry.set_status(rate=0.0)

    def _run_chunk(self, budget: int | None, max_n: int | None = None) -> int:
        """Run steps until the chunk time is up, `budget` (or `max_n`) steps, or a change arrives."""
        engine = self._engine
        deadline = time.perf_counter() + self.chunk_s
        limit = budget if budget is not None else (max_n or 4000)
        if self.max_steps is not None:
            limit = min(limit, max(self.max_steps - engine.step_count, 0))
        limit = min(limit, engine.stats_room())  # statistics are drained once per chunk
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


if TYPE_CHECKING:  # checked by a type checker: a Runner is a RunHandle
    def _is_a_handle(runner: Runner) -> RunHandle:
        return runner
