"""Many visitors, one server: a run per visitor, admission by measured capacity, idle eviction.

`SessionManager` maps an opaque session id (the page uses Gradio's `session_hash`) to that
visitor's run handle (`gan_core.serve.handle.RunHandle`). Runs train in trainer processes (one
per core, `gan_core.serve.processes`; `processes=0`: trainer threads in this process), where 2-D
runs of one shape share a cohort, so the cap is a budget, not a count:

- the trainers *measure* how many cost units per second they give on this box
  (`gan_core.serve.capacity`: a calibration at start, then what they train while a class is on);
- every admitted student gets at least `min_rate` steps/s, so cost units up to
  capacity / min_rate train at once (a batch-64 width-32 2-D run costs 1, the page's default 4);
- a digits run (DCGAN) costs a whole core's share.

Visitors beyond the budget wait in a queue with a message saying why, where they are and how
long it should take. While others wait, runs take turns every `turn_s` seconds (0: never) —
only then, so a class the server can serve, however slowly, is never paused mid-run. A session
not seen for `idle_timeout_s` is stopped and dropped; at most `max_sessions` exist at once.

Threads: one lock guards the tables; run handles are called outside it (they may wait on a
trainer process). Admitting *another* visitor's run, turns and eviction happen on the manager's
housekeeping thread, never on a visitor's request; a visitor's own Start may start their run at
once when the budget has room. Knows nothing about Gradio.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from gan_core.config import TrainConfig
from gan_core.serve.capacity import step_cost
from gan_core.serve.handle import RunHandle
from gan_core.serve.processes import RemoteRun, TrainerProcesses, default_processes
from gan_core.serve.trainer import Trainer, default_threads, new_run

MIN_RATE = 40.0  # steps/s every admitted student gets at least (ring-8's default reaches 8/8 in ~10k steps)
TRAINING_SHARE = 0.9  # of the measured capacity, what admission hands out (headroom for noise)
HOUSEKEEPING_S = 0.5  # how often the housekeeping thread admits the queue
SWEEP_S = 5.0  # how often it evicts idle sessions

log = logging.getLogger(__name__)


class ServerBusy(RuntimeError):
    """No room for another session; the message is meant for the visitor."""


def _env_float(name: str, default: float) -> float:
    value = float(os.environ.get(name, default))
    if not value > 0:
        raise ValueError(f"{name} must be > 0")
    return value


def configure_threads() -> int:
    """Set torch's intra-op threads for a multi-visitor server and return the count.

    Small GAN steps gain little from intra-op parallelism, and several training threads each
    spawning a full thread pool oversubscribe the CPU (measured here: 40× slower on 2 busy cores).
    One thread per run, one run per core. Override with env GAN_CLASSROOM_TORCH_THREADS.
    Call once, at program start.
    """
    n = int(os.environ.get("GAN_CLASSROOM_TORCH_THREADS", "1"))
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


@dataclass
class Session:
    runner: RunHandle
    last_seen: float
    running_since: float = 0.0  # when the run last got a training slot


class SessionManager:
    """Visitors' runs, their admission and their eviction. Thread-safe."""

    def __init__(self, max_active: float | None = None, max_sessions: int = 128,
                 idle_timeout_s: float = 600.0, clock: Callable[[], float] = time.monotonic,
                 runner_factory: Callable[..., RunHandle] | None = None, turn_s: float | None = None,
                 trainer: Trainer | TrainerProcesses | None = None, processes: int | None = None,
                 min_rate: float | None = None, housekeeping: bool = True) -> None:
        # Runs train in `processes` trainer processes (default: one per core, `default_processes`),
        # or with 0 on trainer threads in this process; built at the first run (or `start()`).
        if trainer is not None:
            processes = trainer.n if isinstance(trainer, TrainerProcesses) else 0
        self._processes = default_processes() if processes is None else processes
        self._trainer = trainer
        # A fixed budget in cost units (tests, env GAN_CLASSROOM_MAX_RUNS); None: from the measured capacity.
        env_max = os.environ.get("GAN_CLASSROOM_MAX_RUNS")
        self._fixed_max_active = max_active if max_active is not None else (float(env_max) if env_max else None)
        if self._fixed_max_active is not None and self._fixed_max_active < 1:
            raise ValueError("the admission budget must allow at least one cost unit")
        self.min_rate = min_rate or _env_float("GAN_CLASSROOM_MIN_RATE", MIN_RATE)
        self.turn_s = float(os.environ.get("GAN_CLASSROOM_TURN_S", 120)) if turn_s is None else turn_s
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._factory = runner_factory or self._make_runner
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._queue: list[str] = []  # session ids waiting for a training slot, FIFO
        self._starting: set[str] = set()  # admitted, resume() not yet returned
        self._released_cpu = 0.0  # CPU seconds of local runs since released (`local_training_cpu`)
        self._housekeeping = housekeeping
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._sweepers: list[Callable[[], None]] = []  # run with each sweep (the class registry's)

    # --- where runs train ----------------------------------------------------------------

    @property
    def trainer(self) -> Trainer | TrainerProcesses:
        """Where runs train: the trainer processes, or this process's trainer threads."""
        with self._lock:
            if self._trainer is None:
                self._trainer = TrainerProcesses(self._processes) if self._processes else Trainer()
            return self._trainer

    def start(self) -> None:
        """At server launch: start the trainer processes (they calibrate) and the housekeeping
        thread, rather than at the first run."""
        trainer = self.trainer
        if isinstance(trainer, TrainerProcesses):
            trainer.start()
        self._ensure_housekeeper()

    def close(self) -> None:
        """Release every session and stop the trainers (server shutdown)."""
        self._closing.set()
        self._wake.set()
        if self._housekeeper is not None:
            self._housekeeper.join(10)
        self.release_all()
        with self._lock:
            trainer = self._trainer
        if isinstance(trainer, TrainerProcesses):
            trainer.close()

    def _make_runner(self, config: TrainConfig, **kwargs) -> RunHandle:
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
        return session

    def sessions(self) -> dict[str, Session]:
        """A copy of the table (session id → session)."""
        with self._lock:
            return dict(self._sessions)

    def create(self, sid: str, config: TrainConfig, csv_bytes: bytes | None = None, engine=None) -> Session:
        """Replace `sid`'s run with a new one (not started).

        Raises (ConfigError, DataError, ServerBusy) before touching the old run,
        so a rejected setup never loses the visitor's current run.
        """
        self._ensure_housekeeper()
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
        """Stop `sid`'s run and forget it (tab closed, evicted or replaced)."""
        with self._lock:
            session = self._sessions.pop(sid, None)
            if sid in self._queue:
                self._queue.remove(sid)
        if session is not None:
            if not isinstance(session.runner, RemoteRun):
                with self._lock:
                    self._released_cpu += session.runner.cpu_seconds
            try:
                session.runner.close()
            except Exception:  # e.g. a trainer process that does not answer: the session is gone anyway
                log.exception("the run of session %s did not close", sid[:8])
            self._wake.set()  # its share may let a waiting visitor in

    def release_all(self) -> None:
        for sid in list(self.sessions()):
            self.release(sid)

    # --- the budget --------------------------------------------------------------------

    def capacity_units(self) -> tuple[float, bool]:
        """(cost units/s the trainers give, whether measured while training): env
        GAN_CLASSROOM_STEP_BUDGET (units/s per core) overrides the measurement."""
        env = os.environ.get("GAN_CLASSROOM_STEP_BUDGET")
        if env:
            return _env_float("GAN_CLASSROOM_STEP_BUDGET", 1.0) * self.training_cores(), False
        capacity = self.trainer.capacity()
        return capacity["units_per_s"], capacity["measured"]

    @property
    def max_active(self) -> float:
        """Cost units that may train at once: a fixed budget if one was set, else the measured
        capacity's TRAINING_SHARE divided by the rate promised each student."""
        if self._fixed_max_active is not None:
            return self._fixed_max_active
        units, _ = self.capacity_units()
        return max(1.0, units * TRAINING_SHARE / self.min_rate)

    @max_active.setter
    def max_active(self, value: float) -> None:
        self._fixed_max_active = value

    def training_cores(self) -> int:
        """Cores that train: one per trainer process (each steps its cohorts on one thread), else
        one per trainer thread."""
        return min(self._processes, default_threads()) if self._processes else default_threads()

    def _cost(self, runner: RunHandle, max_active: float) -> float:
        """Budget units of a run: `step_cost` for 2-D, a whole core's share for digits."""
        config = runner.config
        if config.is_image:
            return max(1.0, max_active / self.training_cores())
        return step_cost(config)

    def _running(self) -> int:
        return sum(1 for s in self._sessions.values() if s.runner.state() == "running")

    def _running_cost(self, max_active: float) -> float:
        return sum(self._cost(s.runner, max_active) for sid, s in self._sessions.items()
                   if s.runner.state() == "running" or sid in self._starting)

    # --- admission ------------------------------------------------------------------------

    def request_start(self, sid: str) -> int:
        """Start (or resume) `sid`'s run if the budget has room now; else queue it (the
        housekeeping thread starts it when its turn comes). Returns 0 when it runs, else its
        1-based position in the queue."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                raise KeyError(sid)
            if session.runner.state() == "running":
                return 0
            if sid not in self._queue:
                self._queue.append(sid)
        self.admit(only=sid)
        self._wake.set()
        return self.queue_position(sid)

    def cancel_start(self, sid: str) -> None:
        with self._lock:
            if sid in self._queue:
                self._queue.remove(sid)

    def admit(self, only: str | None = None) -> None:
        """Start queued runs while the budget has room (in queue order; a heavy digits run
        waiting for a core does not hold up lighter 2-D runs behind it). With `only`, start that
        run alone if it fits (a visitor's own Start); without, also take turns: when the head of
        the queue does not fit and `turn_s` > 0, the run that has trained longest beyond `turn_s`
        is paused and queued again; it resumes when its turn comes."""
        max_active = self.max_active
        to_pause, to_resume = [], []
        with self._lock:
            now = self._clock()
            free = max_active - self._running_cost(max_active)
            head = self._sessions.get(self._queue[0]) if self._queue else None
            if only is None and head is not None and self.turn_s > 0 \
                    and free < min(self._cost(head.runner, max_active), max_active):
                running = [(sid, s) for sid, s in self._sessions.items()
                           if s.runner.state() == "running" and sid not in self._queue]
                sid, longest = min(running, key=lambda item: item[1].running_since, default=(None, None))
                if longest is not None and now - longest.running_since >= self.turn_s:
                    to_pause.append(longest.runner)
                    longest.running_since = now
                    self._queue.append(sid)
                    free += self._cost(longest.runner, max_active)
            for sid in list(self._queue):
                session = self._sessions.get(sid)
                if session is None:
                    self._queue.remove(sid)
                    continue
                if only is not None and sid != only:
                    continue
                cost = self._cost(session.runner, max_active)
                if cost > free and free < max_active:  # a run bigger than the budget runs alone
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
                    session = self._sessions.get(sid)
                    orphan = session is None or session.runner is not runner
            if orphan:  # released or replaced (a teacher's push) while it started: nobody owns it now
                try:
                    runner.close()
                except Exception:
                    log.exception("a run of session %s released while it started did not close", sid[:8])

    def queue_position(self, sid: str) -> int:
        with self._lock:
            return self._queue.index(sid) + 1 if sid in self._queue else 0

    # --- housekeeping ---------------------------------------------------------------------

    def _ensure_housekeeper(self) -> None:
        if not self._housekeeping or self._closing.is_set():
            return
        with self._lock:
            if self._housekeeper is None or not self._housekeeper.is_alive():
                self._housekeeper = threading.Thread(target=self._housekeep, name="sessions-housekeeping",
                                                     daemon=True)
                self._housekeeper.start()

    def _housekeep(self) -> None:
        """Admit the queue every HOUSEKEEPING_S (or when woken), evict idle sessions every SWEEP_S."""
        last_sweep = time.monotonic()
        while not self._closing.is_set():
            self._wake.wait(HOUSEKEEPING_S)
            self._wake.clear()
            if self._closing.is_set():
                return
            try:
                if time.monotonic() - last_sweep >= SWEEP_S:
                    last_sweep = time.monotonic()
                    self.sweep()
                self.admit()
            except Exception:  # a trainer process that failed: its runs say so; keep serving
                log.exception("housekeeping failed")

    def add_sweeper(self, sweeper: Callable[[], None]) -> None:
        """Run `sweeper` on the housekeeping thread with each sweep (never on a visitor's request)."""
        self._sweepers.append(sweeper)

    def sweep(self) -> list[str]:
        """Evict sessions idle for longer than `idle_timeout_s`, then run the sweepers; returns the
        evicted ids."""
        now = self._clock()
        with self._lock:
            stale = [sid for sid, s in self._sessions.items() if now - s.last_seen > self.idle_timeout_s]
        for sid in stale:
            self.release(sid)
        for sweeper in list(self._sweepers):
            sweeper()
        return stale

    # --- accounting --------------------------------------------------------------------------

    def stats(self) -> dict:
        max_active = self.max_active
        with self._lock:
            return dict(sessions=len(self._sessions), running=self._running(), queued=len(self._queue),
                        max_active=round(max_active, 1))

    def capacity(self) -> dict:
        """What this server promises: the measured capacity, how many cost units train at once,
        and the steps/s each student gets when the budget is full and now."""
        units, measured = (None, False) if self._fixed_max_active is not None else self.capacity_units()
        max_active = self.max_active
        with self._lock:
            used = self._running_cost(max_active)
            runs = sum(1 for s in self._sessions.values() if s.runner.state() == "running")
        budget = max_active * self.min_rate
        return dict(trainer_cores=self.training_cores(), trainer_processes=self._processes,
                    measured_units_per_s=None if units is None else round(units), capacity_measured=measured,
                    promised_steps_per_s=self.min_rate, budget_units=round(max_active, 1),
                    budget_units_used=round(used, 1), runs_training=runs,
                    steps_per_s_each_now=round(budget / max(1.0, used)) if used else None,
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
        return (f"**The class is full — position {position} in the queue.** {running} runs train here now, "
                f"each at {self.min_rate:.0f} steps/s or more; {turn}.")

    def local_training_cpu(self) -> float:
        """CPU seconds trainer threads in *this* process have spent (0 with trainer processes),
        counting runs since released, so the total never goes back."""
        with self._lock:
            runners = [s.runner for s in self._sessions.values()]
            released = self._released_cpu
        return released + sum(r.cpu_seconds for r in runners if not isinstance(r, RemoteRun))

    def running_rates(self) -> list[float]:
        """Steps/s of every run that is training now (read without fetching a snapshot: a
        benchmark asks every 5 s during a class)."""
        with self._lock:
            runners = [s.runner for s in self._sessions.values()]
        return [round(r.telemetry.rate, 1) for r in runners if r.state() == "running"]
