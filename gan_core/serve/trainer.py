"""Trainer threads for a whole class: one per core, each stepping cohorts of runs.

`Trainer` owns `n_threads` workers (one per CPU core by default). Each worker
thread owns the runs assigned to it and, for the 2-D runs of one network shape,
one `cohort.Cohort`: every round it advances every running run by one step —
a cohort step for the members, `Engine.step()` for runs that must train solo
(WGAN-GP, R1, a paused run doing single steps) — so every active run moves at
about the same rate (fair shares). New runs go to the least-loaded worker;
when the load drifts apart by more than one run, a run moves across, keeping
its state (it leaves one cohort and joins another, between steps).

`CohortRunner` is one run's handle (a `handle.RunHandle`, like `runner.Runner`; what the two
share is `handle.RunControls`), so the classroom can use either. Its `Engine` is always the source of the run's
data, RNG and config; while it is a cohort member its weights live in the
cohort's stacks and the worker exports them before an evaluation frame, a
checkpoint or a command (and reloads them after a rewind). A change of batch
size changes the cohort key: the run leaves its cohort and joins a matching
one, weights and Adam state carried across. `to_bundle` / `from_bundle` hand a run over to
another process (`processes.py`) with everything it has.

Each worker measures what it trains while a class is on (`capacity.CapacityMeter`), so
admission knows what this box gives.

Threads and ownership: one Condition (`Trainer.cond`) guards every run's
control fields and the workers' run lists; a worker thread is the only one
that touches its cohorts and the engines of its runs while they are attached.
A worker with no runs exits, so no thread outlives the class.
Not here: admission (classroom/sessions.py), the step itself (`cohort.py`, `engine.py`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ..checkpoints import capture, pack_engine, unpack_engine
from ..config import TrainConfig
from ..engine import Engine
from .capacity import FRAME_SHARE, CapacityMeter, calibrate, step_cost
from .cohort import Cohort, cohort_key, solo_reason
from .handle import RunControls, draws_every_step
from .runner import Runner

if TYPE_CHECKING:
    from .handle import RunHandle

log = logging.getLogger(__name__)

MEASURE_MIN_RUNS = 4  # a trainer thread's capacity is measured while it trains at least this many runs
# After each chunk every run on the thread has its rows recorded and its weights checked: with 15
# runs and 0.05-s chunks that took ~5 % of a class's trainer process, with 0.12-s chunks ~3 %
# (py-spy, evaluation frames not counted). So a chunk lasts at least this long per run; a live
# change, a command or a stop still interrupts it at once, a new run waits for its end.
CHUNK_S_PER_RUN = 0.008


def default_threads() -> int:
    """One trainer thread per core (env GAN_CLASSROOM_TRAINER_THREADS overrides)."""
    env = os.environ.get("GAN_CLASSROOM_TRAINER_THREADS")
    return max(1, int(env)) if env else max(1, os.cpu_count() or 1)


def new_run(config: TrainConfig, trainer: "Trainer", **kwargs: Any):
    """A run handle for `config`: digits (and everything when env GAN_CLASSROOM_COHORTS=0) on
    a `runner.Runner` thread of their own, 2-D runs on `trainer`'s threads; either thread calls
    `trainer.on_thread_start` first. `kwargs` go to the handle (csv_bytes, name, engine: a loaded
    run)."""
    engine = kwargs.get("engine")
    image = engine.data.is_image if engine is not None else config.is_image
    if image or os.environ.get("GAN_CLASSROOM_COHORTS", "1") == "0":
        return Runner(config, on_thread_start=trainer.on_thread_start, **kwargs)
    return CohortRunner(config, trainer=trainer, **kwargs)


class Trainer:
    """The class's trainer threads. Thread-safe; create one per server."""

    def __init__(self, n_threads: int | None = None, chunk_s: float = 0.05,
                 on_thread_start: Callable[[], object] | None = None) -> None:
        self.n_threads = n_threads or default_threads()
        self.chunk_s = chunk_s
        self.on_thread_start = on_thread_start  # called first on each trainer thread (its priority)
        self.cond = threading.Condition()
        self._workers = [_Worker(self, i) for i in range(self.n_threads)]
        self._meter: CapacityMeter | None = None  # made by the first `capacity()` (it calibrates)
        self._meter_lock = threading.Lock()

    def meter(self) -> CapacityMeter:
        """The capacity meter of one trainer thread here, calibrated on first use (~0.3 s of this
        thread's time; a trainer process does it before it serves)."""
        with self._meter_lock:
            if self._meter is None:
                self._meter = CapacityMeter(calibrate())
            return self._meter

    def capacity(self) -> dict:
        """Cost units per second these trainer threads give (see `capacity.py`), and whether that
        was measured while training (not only calibrated)."""
        meter = self.meter()
        return dict(units_per_s=meter.units_per_s * self.n_threads, measured=meter.measured)

    def attach(self, run: "CohortRunner") -> None:
        """Give `run` to the least-loaded worker (caller holds `cond`)."""
        worker = min(self._workers, key=lambda w: (w.load(), w.index))
        worker.runs.append(run)
        run._worker = worker
        worker.ensure_thread()
        self.cond.notify_all()

    def _rebalance(self) -> None:
        """Move one run from the busiest worker to the idlest when that evens their load
        (caller holds `cond`; the move happens on the busy worker's thread)."""
        loads = sorted(self._workers, key=lambda w: w.load())
        idle, busy = loads[0], loads[-1]
        gap = busy.load() - idle.load()
        # Moving a run of cost c narrows the gap only if c < gap (else it just swaps sides).
        movable = [r for r in busy.runs if r._wants_rounds() and r._moving is None and step_cost(r._config) < gap]
        if movable:
            movable[-1]._moving = idle

    def threads_alive(self) -> int:
        with self.cond:
            return sum(1 for w in self._workers if w.thread is not None and w.thread.is_alive())

    def stats(self) -> dict[str, Any]:
        """Per worker: runs, runs training now, cohort sizes and run-steps/s (for `server_stats`)."""
        with self.cond:
            workers = [dict(runs=len(w.runs), training=sum(1 for r in w.runs if r._wants_rounds()),
                            cohorts=list(w.cohort_sizes), run_steps_per_s=round(w.run_steps_per_s, 1))
                       for w in self._workers]
        return dict(threads=self.n_threads, workers=workers)


class _Worker:
    """One trainer thread: its runs (guarded by `trainer.cond`) and its cohorts (its own)."""

    def __init__(self, trainer: Trainer, index: int) -> None:
        self.trainer = trainer
        self.index = index
        self.runs: list[CohortRunner] = []
        self.thread: threading.Thread | None = None
        self.cohorts: dict = {}  # CohortKey -> Cohort; worker thread only
        self.cohort_sizes: tuple[int, ...] = ()  # published copy for stats()
        self.run_steps_per_s = 0.0
        self.frame_s = 0.015  # running mean of one evaluation frame's wall time (worker thread)
        self.slept = False  # the last chunk waited for a slowed run's next step (worker thread)

    def load(self) -> float:
        return sum(step_cost(r._config) for r in self.runs if r._wants_rounds() and r._moving is None)

    def ensure_thread(self) -> None:  # caller holds cond
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._loop, name=f"gan-trainer-{self.index}", daemon=True)
            self.thread.start()

    # --- the loop ------------------------------------------------------------------------

    def _loop(self) -> None:
        if self.trainer.on_thread_start is not None:
            self.trainer.on_thread_start()
        cond = self.trainer.cond
        rate_t, rate_steps = time.perf_counter(), 0
        while True:
            loop_t0, waited = time.perf_counter(), False
            with cond:
                while self.runs and not any(r._has_work() for r in self.runs):
                    self.run_steps_per_s = 0.0
                    waited = True
                    cond.wait(1.0)
                if not self.runs:
                    self.thread = None
                    self.cohorts.clear()
                    self.cohort_sizes = ()
                    self.run_steps_per_s = 0.0
                    return
                runs = list(self.runs)
            shared = self._shared_keys(runs)
            for run in runs:
                self._service(run, shared)
            with cond:
                runs = [r for r in self.runs if r._worker is self]
            cpu0 = time.thread_time()
            stepped = self._chunk(runs)
            cpu = time.thread_time() - cpu0
            # A frame costs ~5 ms on an idle core (surface, coverage, G's arrows), more on a busy
            # box: frames come rarer as the class grows or the box slows, so that they take at
            # most FRAME_SHARE of the thread and training keeps the rest (15 runs: a frame each
            # ~1.5 s, about as often as a class's pages poll).
            frame_every = len(runs) * self.frame_s / FRAME_SHARE
            for run in stepped:
                run.cpu_seconds += cpu / max(1, len(stepped))
                run._eval_every = max(run.eval_interval_s, frame_every)
                self._after_chunk(run)
            now = time.perf_counter()
            rate_steps += sum(stepped.values())
            meter = self.trainer._meter  # measured only once someone asked for the capacity
            if meter is not None:
                units = sum(n * step_cost(run.engine.config) for run, n in stepped.items())
                meter.add(units, now - loop_t0, saturated=not waited and not self.slept and len(stepped) >= MEASURE_MIN_RUNS)
            if now - rate_t >= 1.0:
                self.run_steps_per_s = rate_steps / (now - rate_t)
                rate_t, rate_steps = now, 0
            with cond:
                self.trainer._rebalance()

    def _leave(self, run: "CohortRunner") -> None:
        cohort, run._cohort = run._cohort, None
        if cohort is not None:
            cohort.leave(run.engine)
            if not len(cohort):
                del self.cohorts[cohort.key]
            self._publish_sizes()

    def _publish_sizes(self) -> None:
        self.cohort_sizes = tuple(len(c) for c in self.cohorts.values())

    @staticmethod
    def _cohort_wanted(run: "CohortRunner"):
        """The cohort key `run` would train in now, or None (paused, stepping singly, or solo-only)."""
        with run.trainer.cond:
            running = run._wants_rounds() and not run._paused and not run._stop and run._speed_limit is None
        if running and solo_reason(run.engine.config) is None:
            return cohort_key(run.engine.config, run.engine.device)
        return None

    def _shared_keys(self, runs: list["CohortRunner"]) -> set:
        """Keys wanted by two or more runs: a run alone with its shape takes the engine's own step
        (`Engine.step`). Since the faster cohort step, a cohort of one measured 1,996 steps/s
        against `Engine.step`'s 1,408 at batch 64 (`python -m benchmarks cohort`, implementations)."""
        counts: dict = {}
        for run in runs:
            key = self._cohort_wanted(run)
            if key is not None:
                counts[key] = counts.get(key, 0) + 1
        return {k for k, n in counts.items() if n > 1}

    def _service(self, run: "CohortRunner", shared: set) -> None:
        """Between rounds: stop / move / commands / live config / cohort membership of `run`."""
        cond = self.trainer.cond
        with cond:
            stopping, target = run._stop, run._moving
        if stopping or target is not None:
            self._leave(run)
            with cond:
                self.runs.remove(run)
                run._moving = None
                if stopping:
                    run._worker = None
                    run._detached.set()
                else:
                    target.runs.append(run)
                    run._worker = target
                    target.ensure_thread()
                cond.notify_all()
            return
        cohort = run._cohort
        with cond:
            has_commands = bool(run._commands)
        if has_commands:
            run._sync_weights()  # commands (save, checkpoint, rewind) see the current weights
            run._run_commands()
            if cohort is not None:
                cohort.reload(run.engine)  # a rewind may have changed them
        run._apply_pending()  # live config: hyperparameters only; the cohort reads them every step
        wanted = self._cohort_wanted(run)
        if wanted not in shared:
            wanted = None
        if cohort is not None and cohort.key != wanted:
            self._leave(run)  # paused, now solo (loss/R1), or its shape changed (batch size)
            cohort = None
        if cohort is None and wanted is not None:
            target = self.cohorts.get(wanted)
            if target is None:
                target = self.cohorts[wanted] = Cohort(wanted)
            target.join(run.engine)
            run._cohort = target
            self._publish_sizes()
        if not run._wants_rounds() and run.telemetry.state == "running":
            run.telemetry.set_status("paused")

    def _chunk(self, runs: list["CohortRunner"]) -> dict:
        """Rounds of one step per running run until the chunk time is up; returns {run: steps}."""
        cohorts = [c for c in self.cohorts.values() if len(c)]
        members = {id(e) for c in cohorts for e in c.members}
        solo = [r for r in runs if id(r.engine) not in members and r._wants_rounds()]
        stepped: dict[CohortRunner, int] = {}
        in_cohort = [r for r in runs if id(r.engine) in members]
        room = min([r.engine.stats_room() for r in runs] + [4000])
        deadline = time.perf_counter() + max(self.trainer.chunk_s, CHUNK_S_PER_RUN * len(runs))
        rounds = 0
        self.slept = False
        while rounds < room and (solo or cohorts):
            for cohort in cohorts:
                cohort.step()
            for run in list(solo):
                if not run._due():
                    continue
                run.engine.step()
                stepped[run] = stepped.get(run, 0) + 1
                if not run._take_budget_step() or run._one_step_per_chunk():
                    solo.remove(run)
            if not cohorts and not any(r._due(consume=False) for r in solo):
                time.sleep(0.002)  # only slowed runs, none due yet
                self.slept = True
            rounds += 1
            if time.perf_counter() >= deadline or any(r._interrupt() for r in in_cohort) \
                    or any(r._interrupt() for r in solo):
                break
        for run in in_cohort:
            stepped[run] = stepped.get(run, 0) + rounds
        return stepped

    def _after_chunk(self, run: "CohortRunner") -> None:
        try:
            frame_s = run._after_chunk()
            if frame_s is not None:
                self.frame_s = 0.8 * self.frame_s + 0.2 * frame_s
        except Exception as exc:  # a failed evaluation is reported on that run only
            run._fail(exc)


class CohortRunner(RunControls):
    """One run trained by a `Trainer` (a `RunHandle`, like `runner.Runner`)."""

    def __init__(self, config: TrainConfig, *, trainer: Trainer, csv_bytes: bytes | None = None,
                 eval_interval_s: float = 0.25, checkpoint_interval_s: float = 10.0,
                 max_steps: int | None = None, engine: Engine | None = None, name: str = "gan-run",
                 score_interval_s: float = 5.0) -> None:
        super().__init__(config, cond=trainer.cond, csv_bytes=csv_bytes, engine=engine, name=name,
                         eval_interval_s=eval_interval_s, checkpoint_interval_s=checkpoint_interval_s,
                         score_interval_s=score_interval_s, max_steps=max_steps)
        self.trainer = trainer
        self._paused = True  # attached by start()
        self._worker: _Worker | None = None  # (cond) the worker that steps it
        self._moving: _Worker | None = None  # (cond) the worker it moves to next
        self._detached = threading.Event()
        self._cohort: Cohort | None = None  # the cohort it trains in (its worker's thread only)
        self._t0 = time.perf_counter()  # the telemetry's wall-time origin

    # --- RunControls hooks -----------------------------------------------------------------------

    def _owned(self) -> bool:
        return self._worker is not None

    def _check_engine(self, engine: Engine) -> None:
        if engine.data.is_image:
            raise ValueError("digit runs train on their own thread (runner.Runner), not in a cohort")

    def _wall_s(self) -> float:
        return time.perf_counter() - self._t0

    def _sync_weights(self) -> None:
        if self._cohort is not None:
            self._cohort.export(self._engine)

    def _weights_finite(self) -> bool:
        if self._cohort is not None:
            return self._cohort.parameters_finite(self._engine)
        return self._engine.parameters_finite()

    # --- handing a run to another process ------------------------------------------------------

    def to_bundle(self) -> dict:
        """Stop the run and return everything it has, for `from_bundle` in another process: its
        engine as a run file's bytes, telemetry, checkpoints, time-lapse, live changes, speed,
        timers and controls as they were before the stop (training, paused, owed single steps)."""
        controls = self.controls()
        self.stop()
        with self._cond:
            pending, speed = self._pending_config, self._speed_limit
        now = time.perf_counter()
        return dict(engine=pack_engine(self._engine), pending=pending, controls=controls, speed=speed,
                    since_checkpoint=now - self._last_checkpoint, since_eval=now - self._last_eval,
                    wall_s=self._wall_s(), cpu_seconds=self.cpu_seconds,
                    kwargs=dict(csv_bytes=self._csv_bytes, name=self.name, eval_interval_s=self.eval_interval_s,
                                checkpoint_interval_s=self.checkpoint_interval_s, max_steps=self.max_steps),
                    telemetry=self.telemetry, checkpoints=self.checkpoints, timelapse=self.timelapse)

    @classmethod
    def from_bundle(cls, bundle: dict, trainer: Trainer) -> "CohortRunner":
        """The run `to_bundle` handed over, on `trainer`, continuing as it was (`continue_as`)."""
        engine = unpack_engine(bundle["engine"])
        run = cls(engine.config, trainer=trainer, engine=engine, **bundle["kwargs"])
        run.telemetry, run.checkpoints, run.timelapse = bundle["telemetry"], bundle["checkpoints"], bundle["timelapse"]
        run.cpu_seconds = bundle["cpu_seconds"]
        run._t0 = time.perf_counter() - bundle["wall_s"]  # the wall-time column goes on
        with trainer.cond:
            run._pending_config = bundle["pending"]
        run.set_speed(bundle["speed"])
        now = time.perf_counter()
        run._last_checkpoint, run._last_eval = now - bundle["since_checkpoint"], now - bundle["since_eval"]
        run.continue_as(bundle["controls"])
        return run

    def controls(self) -> dict:
        """Whether it trains, is paused or owes single steps: what `continue_as` puts back."""
        with self._cond:
            return dict(paused=self._paused, steps=self._pending_steps, state=self.state())

    def continue_as(self, controls: dict) -> None:
        """Go on as `controls` (from `controls()` or a bundle) say: training, paused, or paused with
        single steps still owed."""
        if not controls["paused"]:
            self.start()
        elif controls["steps"]:
            self.step(controls["steps"])
        else:
            self.telemetry.set_status(controls["state"], rate=0.0)

    # --- controls (any thread) -------------------------------------------------------------------

    @property
    def is_alive(self) -> bool:
        with self._cond:
            return self._worker is not None

    @property
    def solo_reason(self) -> str | None:
        """Why this run trains on its own instead of in a cohort (None if it shares)."""
        return solo_reason(self.config)

    def start(self, paused: bool = False) -> None:
        """Start (or resume) training; `paused=True` attaches the run without stepping."""
        with self._cond:
            attached = self._worker is not None
        if not attached and len(self.checkpoints) == 0:
            self.checkpoints.add(capture(self._engine))  # step 0 (or the loaded step): always rewindable
            self._last_checkpoint = time.perf_counter()  # the next one checkpoint_interval_s from now
        with self._cond:
            self._paused = paused
            self._stop = False
            if not paused:
                self._pending_steps = 0
            if self._worker is None:
                self._detached.clear()
                self.trainer.attach(self)
            self._cond.notify_all()
        self.telemetry.set_status("paused" if paused else "running", "")

    def pause(self, message: str | None = None) -> None:
        with self._cond:
            self._paused = True
            self._pending_steps = 0
            self._cond.notify_all()
        # The worker says "paused" once the run is out of its round (after the current step).
        if message is not None:
            self.telemetry.set_status(message=message)

    def resume(self) -> None:
        self.start()

    def step(self, n: int = 1) -> None:
        """Run exactly `n` more steps (on its own, out of its cohort), then stay paused."""
        if not 1 <= int(n) <= 100_000:
            raise ValueError("n must be between 1 and 100000")
        with self._cond:
            attached = self._worker is not None
            self._paused = True
            self._pending_steps += int(n)
            self._cond.notify_all()
        if not attached:
            self.start(paused=True)  # keeps the steps owed

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            attached = self._worker is not None
            self._cond.notify_all()
        if attached and not self._detached.wait(timeout):
            raise TimeoutError(f"run {self.name} did not leave its trainer within {timeout} s")
        with self._cond:
            self._stop = False
            self._paused = True
            self._pending_steps = 0
        self._run_commands()
        if self.state() in ("running", "paused"):
            self.telemetry.set_status("stopped")
        self.telemetry.set_status(rate=0.0)

    # --- called by the worker (and here when detached) ------------------------------------

    def _wants_rounds(self) -> bool:
        """Runs this round: running, or paused with single steps owed."""
        return not self._stop and (not self._paused or self._pending_steps > 0)

    def _has_work(self) -> bool:
        return self._wants_rounds() or bool(self._commands) or self._stop or self._moving is not None \
            or self._pending_config is not None or (self._paused and self.telemetry.state == "running")

    def _interrupt(self) -> bool:
        """Something a chunk should stop for (unlocked peek; acted on under the lock)."""
        return bool(self._commands) or self._stop or self._pending_config is not None or self._moving is not None \
            or (self._paused and self._pending_steps == 0)

    def _due(self, consume: bool = True) -> bool:
        """A slowed run steps when its next slot comes (paused single steps are never throttled)."""
        with self._cond:
            limit = self._speed_limit
            if limit is None or self._paused:
                return True
            now = time.perf_counter()
            if now < self._next_step_at:
                return False
            if consume:
                self._book_slowed_steps(now, 1, limit)
            return True

    def _one_step_per_chunk(self) -> bool:
        """Slow motion: the chunk ends for this run after one step, so that step gets its frame."""
        with self._cond:
            return not self._paused and draws_every_step(self._speed_limit)

    def _take_budget_step(self) -> bool:
        """Count one solo step against a step(n) budget; False when the run should stop stepping."""
        with self._cond:
            if not self._paused:
                return not (self.max_steps is not None and self._engine.step_count >= self.max_steps)
            self._pending_steps = max(0, self._pending_steps - 1)
            return self._pending_steps > 0


if TYPE_CHECKING:  # checked by a type checker: a CohortRunner is a RunHandle
    def _is_a_handle(run: CohortRunner) -> RunHandle:
        return run
