"""Many visitors, one server: a run per visitor, an admission budget, idle eviction.

`SessionManager` maps an opaque session id (the UI uses Gradio's
`session_hash`) to that visitor's run. Runs train in trainer processes
(`gan_core.serve.processes`, one per core; `processes=0`: trainer threads in this
process), where 2-D runs of one shape share a cohort, so the cap is a budget,
not a count: each core gives about `step_budget_per_core` cost units per second
(measured with the class benchmark), and every student should get at least
`MIN_RATE` steps/s, so `max_active` = cores × budget / min rate cost units
train at once (a batch-64 width-32 2-D run costs 1, a bigger one more:
`trainer.step_cost`). A digits run (DCGAN) takes a whole core on its own
`Runner` thread. Visitors beyond the budget wait in a queue with a message
saying why, where they are and how long it should take; a paused, finished or
failed run frees its share, and while others wait runs take turns every
`turn_s` seconds. Sessions not seen for `idle_timeout_s` are stopped and
dropped, and at most `max_sessions` exist at once, so memory stays bounded.

Knows nothing about Gradio. One lock guards the tables; runs' controls are called
outside it (they may wait on a trainer process).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from gan_core.config import TrainConfig
from gan_core.serve.processes import RemoteRun, TrainerProcesses, default_processes
from gan_core.serve.runner import Runner
from gan_core.serve.trainer import CohortRunner, Trainer, default_threads, new_run, step_cost

# Cost units (`gan_core.serve.trainer.step_cost`: a batch-64 width-32 2-D step is 1) per second one core gives a
# class, measured in the app with `python -m benchmarks classroom --students 30` on this 2-core
# box (simulated students on the same cores): with trainer processes 8,200 units/s for 30 students
# on the whole-class lesson, 10,400 for 30 on the page's defaults and 6,800 for 100 (44 training,
# the rest ticking in the queue); with trainer threads in the server (processes=0) 2,800 for 30.
# The lowest per core, rounded down, so promises hold.
STEP_BUDGET_PER_CORE = 3400.0
STEP_BUDGET_PER_CORE_THREADS = 1400.0
MIN_RATE = 90.0  # steps/s every admitted student gets at least (ring-8 reaches 8/8 in ~5k steps)


log = logging.getLogger(__name__)


class ServerBusy(RuntimeError):
    """No room for another session; the message is meant for the visitor."""


def _env_float(name: str, default: float) -> float:
    value = float(os.environ.get(name, default))
    if not value > 0:
        raise ValueError(f"{name} must be > 0")
    return value


def step_budget_per_core(processes: int) -> float:
    """Env GAN_CLASSROOM_STEP_BUDGET, else the measured budget for runs trained in `processes`
    trainer processes (0: trainer threads in the server)."""
    return _env_float("GAN_CLASSROOM_STEP_BUDGET",
                      STEP_BUDGET_PER_CORE if processes else STEP_BUDGET_PER_CORE_THREADS)


def default_max_active(processes: int | None = None) -> int:
    """Cost units that may train at once: env GAN_CLASSROOM_MAX_RUNS, else the step budget
    (cores × `step_budget_per_core` / GAN_CLASSROOM_MIN_RATE)."""
    env = os.environ.get("GAN_CLASSROOM_MAX_RUNS")
    if env:
        value = int(env)
        if value < 1:
            raise ValueError("GAN_CLASSROOM_MAX_RUNS must be ≥ 1")
        return value
    if torch.cuda.is_available():
        return 8  # unmeasured here: the GPU interleaves several solo runs well
    processes = default_processes() if processes is None else processes
    return max(1, int(training_cores(processes) * step_budget_per_core(processes)
                      / _env_float("GAN_CLASSROOM_MIN_RATE", MIN_RATE)))


def training_cores(processes: int) -> int:
    """Cores that train: one per trainer process (each steps its cohorts on one thread), else one
    per trainer thread."""
    return min(processes, default_threads()) if processes else default_threads()


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


TICK_S = 0.4  # a page's live-update interval while the server is quiet: ~2.5 updates a second
TICK_MAX_S = 2.0
# Server CPU of one page tick with nothing new, 11.7–11.9 ms here (`python -m benchmarks
# tickcost`, docs/benchmarks/tickcost.json): mostly Gradio's request handling, under the
# interpreter lock that the trainer threads need too.
TICK_COST_S = 0.012
TICK_SHARE = 0.25  # all open pages' ticks together take at most this share of one core


class PageTicks:
    """How often each open page ticks: every TICK_S while few pages are open, slower as they
    multiply (a class opening one link at once), so that ticks leave the trainers room.

    A page counts as open while it ticked within `forget_s`. Thread-safe.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, forget_s: float = 10.0) -> None:
        self._clock = clock
        self.forget_s = forget_s
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # page (session hash) -> last tick
        self._sent: dict[str, float] = {}  # page -> the interval it was last told

    def interval(self) -> float:
        """Seconds between a page's ticks for the pages open now."""
        with self._lock:
            return self._interval()

    def _interval(self) -> float:  # caller holds the lock
        return round(min(TICK_MAX_S, max(TICK_S, len(self._seen) * TICK_COST_S / TICK_SHARE)), 1)

    def tick(self, sid: str) -> float | None:
        """Note a tick from `sid`; returns the interval to tell it, or None if it already has it."""
        now = self._clock()
        with self._lock:
            self._seen[sid] = now
            for old in [k for k, t in self._seen.items() if now - t > self.forget_s]:
                self._drop(old)
            interval = self._interval()
            if self._sent.get(sid, TICK_S) == interval:
                return None
            self._sent[sid] = interval
            return interval

    def forget(self, sid: str) -> None:
        """`sid`'s page closed."""
        with self._lock:
            self._drop(sid)

    def _drop(self, sid: str) -> None:  # caller holds the lock
        self._seen.pop(sid, None)
        self._sent.pop(sid, None)


@dataclass
class Session:
    runner: Runner | CohortRunner | RemoteRun
    last_seen: float
    running_since: float = 0.0  # when the run last got a training slot
    extras: dict = field(default_factory=dict)  # UI-owned bookkeeping


class SessionManager:
    def __init__(self, max_active: int | None = None, max_sessions: int = 128,
                 idle_timeout_s: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 runner_factory: Callable[..., Runner] | None = None, turn_s: float | None = None,
                 trainer: Trainer | TrainerProcesses | None = None, processes: int | None = None) -> None:
        # Runs train in `processes` trainer processes (default: one per core, `default_processes`),
        # or with 0 on trainer threads in this process; built at the first run (or `start()`).
        if trainer is not None:
            processes = trainer.n if isinstance(trainer, TrainerProcesses) else 0
        self._processes = default_processes() if processes is None else processes
        self._trainer = trainer
        self.max_active = max_active or default_max_active(self._processes)  # cost units training at once
        # While visitors wait, a run gives up its slot after `turn_s` seconds of training
        # (0 = never): a class of 30 on a few cores takes turns instead of 28 waiting forever.
        self.turn_s = float(os.environ.get("GAN_CLASSROOM_TURN_S", 120)) if turn_s is None else turn_s
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._factory = runner_factory or self._make_runner
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._queue: list[str] = []  # session ids waiting for a training slot, FIFO
        self._starting: set[str] = set()  # admitted, resume() not yet returned
        self._last_sweep = clock()

    @property
    def trainer(self) -> Trainer | TrainerProcesses:
        """Where runs train: the trainer processes, or this process's trainer threads."""
        with self._lock:
            if self._trainer is None:
                self._trainer = TrainerProcesses(self._processes) if self._processes else Trainer()
            return self._trainer

    def start(self) -> None:
        """Start the trainer processes now (at server launch) rather than at the first run."""
        trainer = self.trainer
        if isinstance(trainer, TrainerProcesses):
            trainer.start()

    def close(self) -> None:
        """Release every session and stop the trainer processes (server shutdown)."""
        self.release_all()
        with self._lock:
            trainer = self._trainer
        if isinstance(trainer, TrainerProcesses):
            trainer.close()

    def _make_runner(self, config: TrainConfig, **kwargs):
        """A run in a trainer process, or here (`trainer.new_run`: digits on a thread of their own,
        2-D runs on the shared trainer threads)."""
        trainer = self.trainer
        if isinstance(trainer, TrainerProcesses):
            return trainer.create(config, **kwargs)
        return new_run(config, trainer, **kwargs)

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
            try:
                session.runner.close()
            except Exception:  # e.g. a trainer process that does not answer: the session is gone anyway
                log.exception("the run of session %s did not close", sid[:8])
        self.admit()

    def release_all(self) -> None:
        for sid in list(self._sessions):
            self.release(sid)

    # --- admission ------------------------------------------------------------------------

    def _cost(self, runner) -> float:
        """Budget units of a run: `trainer.step_cost` for 2-D, a whole core's share for digits."""
        config = runner.config
        if config.is_image:
            return max(1.0, self.max_active / default_threads())
        return step_cost(config)

    def _running(self) -> int:
        return sum(1 for s in self._sessions.values() if s.runner.state() == "running")

    def _running_cost(self) -> float:
        return sum(self._cost(s.runner) for sid, s in self._sessions.items()
                   if s.runner.state() == "running" or sid in self._starting)

    def request_start(self, sid: str) -> int:
        """Start (or resume) `sid`'s run if the budget allows; else queue it.

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
        """Start queued runs while the budget has room (in queue order; a heavy digits run
        waiting for a core does not hold up lighter 2-D runs behind it).

        When the head of the queue does not fit and `turn_s` > 0, the run that has trained
        longest beyond `turn_s` is paused and queued again; it resumes when its turn comes.
        """
        to_pause, to_resume = [], []
        with self._lock:
            now = self._clock()
            free = self.max_active - self._running_cost()
            head = self._sessions.get(self._queue[0]) if self._queue else None
            if head is not None and free < min(self._cost(head.runner), self.max_active) and self.turn_s > 0:
                running = [(sid, s) for sid, s in self._sessions.items()
                           if s.runner.state() == "running" and sid not in self._queue]
                sid, longest = min(running, key=lambda item: item[1].running_since, default=(None, None))
                if longest is not None and now - longest.running_since >= self.turn_s:
                    to_pause.append(longest.runner)
                    longest.running_since = now
                    self._queue.append(sid)
                    free += self._cost(longest.runner)
            for sid in list(self._queue):
                session = self._sessions.get(sid)
                if session is None:
                    self._queue.remove(sid)
                    continue
                cost = self._cost(session.runner)
                if cost > free and free < self.max_active:  # a run bigger than the budget runs alone
                    continue
                self._queue.remove(sid)
                self._starting.add(sid)  # counted as running until its resume() has returned
                to_resume.append((sid, session.runner))
                session.running_since = now
                free -= cost
        # The runs' controls may wait on a trainer process: not under the tables' lock.
        for runner in to_pause:
            runner.pause(f"Paused after {self.turn_s:.0f} s to give a waiting visitor a turn; "
                         "it resumes by itself when its turn comes again.")
        for sid, runner in to_resume:
            try:
                runner.resume()
            except Exception:  # its process died or it was released meanwhile: its page says so
                log.exception("could not start the run of session %s", sid[:8])
            finally:
                with self._lock:
                    self._starting.discard(sid)

    def queue_position(self, sid: str) -> int:
        with self._lock:
            return self._queue.index(sid) + 1 if sid in self._queue else 0

    # --- accounting and eviction ---------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(sessions=len(self._sessions), running=self._running(), queued=len(self._queue),
                        max_active=self.max_active)

    def capacity(self) -> dict:
        """What this server promises: how many classroom 2-D runs train at once, at what speed."""
        threads = training_cores(self._processes)
        with self._lock:
            used = self._running_cost()
        budget = threads * step_budget_per_core(self._processes)
        return dict(trainer_threads=threads, trainer_processes=self._processes, step_budget_per_s=round(budget),
                    students_at_once=int(self.max_active),
                    steps_per_s_each_when_full=round(budget / max(1, self.max_active)),
                    steps_per_s_each_now=round(budget / max(1.0, used)), budget_units_used=round(used, 1),
                    trainer=self._trainer.stats() if self._trainer is not None else None)

    def training_threads(self) -> int:
        """Training threads in this process ('gan-…') plus runs a trainer process holds on one."""
        with self._lock:
            trainer = self._trainer
        here = sum(1 for t in threading.enumerate() if t.name.startswith("gan-"))
        return here + (trainer.threads_alive() if isinstance(trainer, TrainerProcesses) else 0)

    def wait_message(self, sid: str) -> str:
        """Why `sid` waits, where it is and for how long (empty when it is not queued)."""
        position = self.queue_position(sid)
        if not position:
            return ""
        with self._lock:
            session = self._sessions.get(sid)
            running = max(1, self._running())
        turn = (f"runs take turns every {self.turn_s:.0f} s, so expect about "
                f"{max(1, round(position * self.turn_s / running / 60))} min" if self.turn_s > 0
                else "you start when a run pauses or ends")
        if session is not None and session.runner.config.is_image:
            return (f"**Waiting — position {position}.** Digit runs (DCGAN) are heavy for this CPU server: "
                    f"they train one per core, in turns; {turn}. 2-D datasets start at once.")
        cap = self.capacity()
        return (f"**The class is full — position {position} in the queue.** {cap['students_at_once']} runs train "
                f"at once here, each at about {cap['steps_per_s_each_when_full']} steps/s; {turn}.")

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
