"""Many visitors, one server: a run per visitor, an admission cap, idle eviction.

`SessionManager` maps an opaque session id (the UI uses Gradio's
`session_hash`) to that visitor's `Runner`. At most `max_active` runs train at
once — on a CPU, one per core with torch's intra-op threads set to 1 is the
fastest use of the machine; extra visitors wait in a FIFO queue and are
admitted as slots free up (a paused, finished or failed run frees its slot).
Sessions not seen for `idle_timeout_s` are stopped and dropped, and at most
`max_sessions` exist at once, so memory stays bounded.

Knows nothing about Gradio. One lock guards the tables; runners have their own.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from gan_core.config import TrainConfig
from gan_core.runner import Runner


class ServerBusy(RuntimeError):
    """No room for another session; the message is meant for the visitor."""


def default_max_active() -> int:
    """Concurrent training threads: env GAN_CLASSROOM_MAX_RUNS, else per device."""
    env = os.environ.get("GAN_CLASSROOM_MAX_RUNS")
    if env:
        value = int(env)
        if value < 1:
            raise ValueError("GAN_CLASSROOM_MAX_RUNS must be ≥ 1")
        return value
    if torch.cuda.is_available():
        return 8  # small models: the GPU interleaves several runs well
    return max(1, os.cpu_count() or 1)


def configure_threads() -> int:
    """Set torch's intra-op threads for a multi-visitor server and return the count.

    Small GAN steps gain little from intra-op parallelism, and several training
    threads each spawning a full thread pool oversubscribe the CPU (measured
    here: 40× slower on 2 busy cores). One thread per run, one run per core.
    Override with env GAN_CLASSROOM_TORCH_THREADS. Call once, at program start.
    """
    n = int(os.environ.get("GAN_CLASSROOM_TORCH_THREADS", "1"))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


@dataclass
class Session:
    runner: Runner
    last_seen: float
    running_since: float = 0.0  # when the run last got a training slot
    extras: dict = field(default_factory=dict)  # UI-owned bookkeeping


class SessionManager:
    def __init__(self, max_active: int | None = None, max_sessions: int = 64,
                 idle_timeout_s: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 runner_factory: Callable[..., Runner] = Runner, turn_s: float | None = None) -> None:
        self.max_active = max_active or default_max_active()
        # While visitors wait, a run gives up its slot after `turn_s` seconds of training
        # (0 = never): a class of 30 on a few cores takes turns instead of 28 waiting forever.
        self.turn_s = float(os.environ.get("GAN_CLASSROOM_TURN_S", 120)) if turn_s is None else turn_s
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._factory = runner_factory
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._queue: list[str] = []  # session ids waiting for a training slot, FIFO
        self._last_sweep = clock()

    # --- lookup and lifecycle ------------------------------------------------------------

    def get(self, sid: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None:
                session.last_seen = self._clock()
        self._maybe_sweep()
        return session

    def create(self, sid: str, config: TrainConfig, csv_bytes: bytes | None = None,
               engine=None) -> Session:
        """Replace `sid`'s run with a new one (not started).

        Raises (ConfigError, DataError, ServerBusy) before touching the old run,
        so a rejected setup never loses the visitor's current run.
        """
        self._maybe_sweep()
        with self._lock:
            if sid not in self._sessions and len(self._sessions) >= self.max_sessions:
                raise ServerBusy(f"The server is full ({self.max_sessions} runs open). "
                                 "Please try again in a few minutes.")
        extra = {} if engine is None else {"engine": engine}  # a loaded run file
        runner = self._factory(config, csv_bytes=csv_bytes, name=f"gan-{sid[:8]}", **extra)
        self.release(sid)
        session = Session(runner, self._clock())
        with self._lock:
            self._sessions[sid] = session
        return session

    def release(self, sid: str) -> None:
        """Stop `sid`'s thread and forget it (tab closed or evicted)."""
        with self._lock:
            session = self._sessions.pop(sid, None)
            if sid in self._queue:
                self._queue.remove(sid)
        if session is not None:
            session.runner.stop()
        self.admit()

    def release_all(self) -> None:
        for sid in list(self._sessions):
            self.release(sid)

    # --- admission ------------------------------------------------------------------------

    def _running(self) -> int:
        return sum(1 for s in self._sessions.values() if s.runner.state() == "running")

    def request_start(self, sid: str) -> int:
        """Start (or resume) `sid`'s run if a slot is free; else queue it.

        Returns 0 when it runs, else its 1-based position in the queue.
        """
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                raise KeyError(sid)
            if session.runner.state() == "running":
                return 0
            if sid not in self._queue:
                self._queue.append(sid)
        self.admit()
        return self.queue_position(sid)

    def cancel_start(self, sid: str) -> None:
        with self._lock:
            if sid in self._queue:
                self._queue.remove(sid)

    def admit(self) -> None:
        """Start queued runs while training slots are free.

        When every slot is taken and someone waits, the run that has trained longest
        beyond `turn_s` is paused and queued again; it resumes when its turn comes.
        """
        with self._lock:
            now = self._clock()
            free = self.max_active - self._running()
            if free <= 0 and self._queue and self.turn_s > 0:
                running = [(sid, s) for sid, s in self._sessions.items()
                           if s.runner.state() == "running" and sid not in self._queue]
                sid, longest = min(running, key=lambda item: item[1].running_since, default=(None, None))
                if longest is not None and now - longest.running_since >= self.turn_s:
                    longest.runner.pause(f"Paused after {self.turn_s:.0f} s to give a waiting visitor a turn; "
                                         "it resumes by itself when its turn comes again.")
                    longest.running_since = now
                    self._queue.append(sid)
            while free > 0 and self._queue:
                session = self._sessions.get(self._queue.pop(0))
                if session is None:
                    continue
                session.runner.resume()
                session.running_since = now
                free -= 1

    def queue_position(self, sid: str) -> int:
        with self._lock:
            return self._queue.index(sid) + 1 if sid in self._queue else 0

    # --- accounting and eviction ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(sessions=len(self._sessions), running=self._running(), queued=len(self._queue),
                        max_active=self.max_active)

    def running_rates(self) -> list[float]:
        """Steps/s of every run that is training now."""
        with self._lock:
            runners = [s.runner for s in self._sessions.values()]
        return [round(r.telemetry.snapshot().steps_per_s, 1) for r in runners if r.state() == "running"]

    def _maybe_sweep(self) -> None:
        now = self._clock()
        if now - self._last_sweep < 5.0:
            return
        self._last_sweep = now
        self.sweep()

    def sweep(self) -> list[str]:
        """Evict sessions idle for longer than `idle_timeout_s`; returns their ids."""
        now = self._clock()
        with self._lock:
            stale = [sid for sid, s in self._sessions.items() if now - s.last_seen > self.idle_timeout_s]
        for sid in stale:
            self.release(sid)
        return stale
