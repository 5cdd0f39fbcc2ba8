"""The run handle: one protocol for steering a run, and the behaviour every local handle shares.

`RunHandle` (a `typing.Protocol`) is everything the page may do with a run, wherever it trains:
`runner.Runner` (a thread of its own), `trainer.CohortRunner` (a trainer thread that steps it,
often inside a cohort) and `processes.RemoteRun` (a run in a trainer process) implement it, and
`tests/test_handle.py` checks all three against it, signature by signature.

`RunControls` is the one implementation of what the two local handles share, so they cannot
drift apart: the fields every handle keeps (declared and set here), commands run between two
steps (rewind, save, single D/G updates, checkpoints), live changes, slow motion, and
`_after_chunk` — what happens after each chunk of steps, whoever stepped it: statistics into
the telemetry, a pause with one message when a statistic *or* a weight is NaN/Inf, an
evaluation frame when due (every step at `SLOW_STEPS_PER_S` or slower, so slow motion draws
every step), a checkpoint when due, digit scores, and "finished" at `max_steps`.

A subclass provides how it is stepped: `_owned()` (a training thread owns the engine, so
commands are queued for it), `_wall_s()` (the telemetry's wall-time column), `_sync_weights()`
and `_weights_finite()` (a cohort member's weights live in the cohort's stacks), and `stop()`.
Threads: every field below marked (cond) is guarded by `self._cond`; the thread that steps the
run is the only writer of the engine and the telemetry.

Not here: how steps are scheduled (runner.py, trainer.py), the step itself (`gan_core.engine`).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from ..checkpoints import CheckpointInfo, CheckpointRing, capture, restore, save_run
from ..config import TrainConfig
from ..engine import Engine
from ..telemetry import History, Snapshot, Telemetry
from ..timelapse import TimelapseFrame, TimelapseRecorder

log = logging.getLogger(__name__)

MAX_SPEED_LIMIT = 10_000.0  # steps/s: the fastest pace a slowed run may be set to
SLOW_STEPS_PER_S = 10.0  # at or below this speed limit every step publishes its evaluation frame
NAN_MESSAGE = ("Paused at step {step:,}: a loss or weight became NaN/Inf (training diverged). "
               "Lower the learning rates, then reset or rewind.")
COMMAND_TIMEOUT_S = 30.0


def draws_every_step(speed_limit: float | None) -> bool:
    """Slow motion: every step is followed by its own evaluation frame (one step per chunk)."""
    return speed_limit is not None and speed_limit <= SLOW_STEPS_PER_S


class TelemetryView(Protocol):
    """What a handle's `telemetry` offers a reader."""

    @property
    def version(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def rate(self) -> float: ...

    def snapshot(self) -> Snapshot: ...


class SnapshotView(Protocol):
    """What a reader makes of a run's snapshots (a page's figures), kept with the run: called with
    the run's snapshot and the reader's arguments, it answers what the reader needs, and may keep
    what it built for the next call. Thread-safe: readers may call it at once."""

    def __call__(self, snap: Snapshot, *args: Any) -> Any: ...


class RunUnreachable(RuntimeError):
    """A run that can no longer be asked (`RunHandle.view`): closed, or its trainer process
    stopped. `state` and `message` say what its status line should now."""

    def __init__(self, state: str, message: str = "") -> None:
        super().__init__(message or f"the run is {state}")
        self.state, self.message = state, message


class CheckpointList(Protocol):
    def list(self) -> list[CheckpointInfo]: ...

    def __len__(self) -> int: ...


class TimelapseView(Protocol):
    def frames(self) -> list[TimelapseFrame]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class RunHandle(Protocol):
    """Steering one run: what the classroom may call, on any handle."""

    name: str

    @property
    def telemetry(self) -> TelemetryView: ...

    @property
    def checkpoints(self) -> CheckpointList: ...

    @property
    def timelapse(self) -> TimelapseView: ...

    @property
    def config(self) -> TrainConfig:
        """The live config, including changes queued for the next step."""

    @property
    def speed_limit(self) -> float | None: ...

    @property
    def cpu_seconds(self) -> float:
        """CPU time spent on this run so far."""

    @property
    def is_alive(self) -> bool:
        """Whether a training thread owns the run now."""

    def state(self) -> str: ...

    def snapshot(self) -> Snapshot: ...

    def view(self, make: Callable[[], SnapshotView], *args: Any) -> Any:
        """`make()`'s answer to the run's snapshot and `args` (see `SnapshotView`); `make()` is made
        once per run and kept with it, where the run trains: for a run in a trainer process both
        happen there, so building from a snapshot costs the web server nothing, and only the answer
        crosses (`make`, `args` and the answer must pickle; `make` by reference, a class or
        function at module level, to be the same maker there at every call: one that pickles by
        value, such as a `functools.partial`, gets a new view each time). Raises `RunUnreachable`
        when the run can no longer be asked (only a `RemoteRun`: a local run is always there)."""

    def start(self, paused: bool = False) -> None: ...

    def pause(self, message: str | None = None) -> None: ...

    def resume(self) -> None: ...

    def step(self, n: int = 1) -> None: ...

    def step_d(self) -> int: ...

    def step_g(self) -> int: ...

    def update(self, **changes: Any) -> TrainConfig: ...

    def set_speed(self, steps_per_s: float | None) -> None: ...

    def rewind(self, index: int) -> int: ...

    def save(self, target) -> object: ...

    def reset(self, config: TrainConfig | None = None, csv_bytes: bytes | None = None) -> None: ...

    def checkpoint_now(self) -> int: ...

    def publish_frame(self) -> None: ...

    def open_loaded(self, history: History | None, timelapse: TimelapseRecorder, message: str) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def close(self) -> None: ...


def check_speed(steps_per_s: float | None) -> float | None:
    """A speed limit as `set_speed` takes it (None: full speed); ValueError if absurd."""
    if steps_per_s is None:
        return None
    if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, (int, float)) \
            or not 0 < steps_per_s <= MAX_SPEED_LIMIT:
        raise ValueError(f"speed must be between 0 and {MAX_SPEED_LIMIT:g} steps per second "
                         f"(or None for full speed), got {steps_per_s!r}")
    return float(steps_per_s)


class RunControls:
    """The run-handle behaviour shared by `Runner` and `CohortRunner` (see the module docstring)."""

    def __init__(self, config: TrainConfig, *, cond: threading.Condition, csv_bytes: bytes | None,
                 engine: Engine | None, name: str, eval_interval_s: float, checkpoint_interval_s: float,
                 score_interval_s: float, max_steps: int | None) -> None:
        # A prebuilt engine (a loaded run file) or a new one; raises on a bad config or data.
        self._engine = engine if engine is not None else Engine(config, csv_bytes)
        self._check_engine(self._engine)
        self.name = name
        self.eval_interval_s = eval_interval_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.score_interval_s = score_interval_s  # digit IS/FD: ~0.3 s of CPU each
        self.max_steps = max_steps
        self._csv_bytes = csv_bytes
        self.telemetry = Telemetry()
        self._views: dict[Callable[[], SnapshotView], SnapshotView] = {}  # (cond) `view`'s, by maker
        self.checkpoints = CheckpointRing()  # thread-safe
        self.timelapse = TimelapseRecorder()  # thread-safe
        self.cpu_seconds = 0.0  # written by the stepping thread, read by anyone
        self._cond = cond
        self._config = self._engine.config  # (cond)
        self._pending_config: TrainConfig | None = None  # (cond) live changes for the next step
        self._paused = False  # (cond)
        self._stop = False  # (cond)
        self._pending_steps = 0  # (cond) single steps owed while paused
        self._commands: list[tuple] = []  # (cond) (fn, done Event, result list), run between two steps
        self._speed_limit: float | None = None  # (cond) steps/s; None = as fast as it goes
        self._next_step_at = 0.0  # (cond) perf_counter time the next slowed step may start
        # Bookkeeping of the stepping thread (`_after_chunk`):
        now = time.perf_counter()
        self._last_eval = self._last_checkpoint = self._last_score = 0.0
        self._eval_every = eval_interval_s  # a trainer stretches it for a big class
        self._rate = 0.0
        self._rate_steps, self._rate_t = self._engine.step_count, now
        self.telemetry.set_status("idle", "", device=str(self._engine.device), config=self._config)

    # --- what a subclass provides ------------------------------------------------------------

    def _owned(self) -> bool:
        """Whether a training thread owns the engine now (commands are then queued for it)."""
        raise NotImplementedError

    def _wall_s(self) -> float:
        """The telemetry's wall-time column for steps recorded now."""
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        raise NotImplementedError

    def _sync_weights(self) -> None:
        """Bring the engine's own tensors up to date before they are read (a cohort's stacks)."""

    def _weights_finite(self) -> bool:
        return self._engine.parameters_finite()

    def _check_engine(self, engine: Engine) -> None:
        """Raise if this handle cannot train `engine` (a cohort handle refuses digits)."""

    # --- reading (any thread) ---------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The engine; only safe to touch from outside while no thread steps it."""
        return self._engine

    @property
    def config(self) -> TrainConfig:
        with self._cond:
            return self._pending_config or self._config

    @property
    def speed_limit(self) -> float | None:
        with self._cond:
            return self._speed_limit

    def state(self) -> str:
        return self.telemetry.state

    def snapshot(self) -> Snapshot:
        return self.telemetry.snapshot()

    def view(self, make: Callable[[], SnapshotView], *args: Any) -> Any:
        with self._cond:
            made = self._views.get(make)
            if made is None:
                made = self._views[make] = make()
        return made(self.snapshot(), *args)

    # --- controls (any thread) ----------------------------------------------------------------

    def update(self, **changes: Any) -> TrainConfig:
        """Change live hyperparameters; they take effect at the next step. Raises `ConfigError`
        (nothing changed) on an invalid value."""
        with self._cond:
            new = (self._pending_config or self._config).with_live(**changes)
            self._pending_config = new
            owned = self._owned()
            self._cond.notify_all()
        if not owned:
            self._apply_pending()
        return new

    def set_speed(self, steps_per_s: float | None) -> None:
        """Limit the running GAN to `steps_per_s` steps per second (None: as fast as it can); acts
        on the running thread at once (no restart). `step()` while paused is not throttled."""
        limit = check_speed(steps_per_s)
        with self._cond:
            self._speed_limit = limit
            # The new pace starts now: one step at once, the next 1/speed later.
            self._next_step_at = time.perf_counter()
            self._cond.notify_all()

    def _book_slowed_steps(self, start: float, n: int, limit: float) -> None:
        """(cond held) `n` steps of a slowed run, begun at `start`, take the next n/limit seconds of
        its schedule. A step that starts late does not give the next ones its missed time, so a
        stalled run never catches up in a burst (which would skip slow motion's frames)."""
        self._next_step_at = max(self._next_step_at, start) + n / limit

    def step_d(self) -> int:
        """One discriminator update only (G unchanged), then stay paused; returns D's update count."""
        return self._single_update("d")

    def step_g(self) -> int:
        """One generator update only (D unchanged), then stay paused; returns G's update count."""
        return self._single_update("g")

    def _single_update(self, network: str) -> int:
        """Pause, then run `Engine.d_update()` or `g_update()` once between two steps (GAN Lab's
        per-network steps), publish a frame and say on the page which network moved. The engine
        counts a single update as one step, with its own stats row."""

        def do_update() -> int:
            with self._cond:
                self._paused = True
                self._pending_steps = 0
            self._apply_pending()
            engine = self._engine
            if network == "d":
                engine.d_update()
                count, moved, still = engine.d_updates, "D", "G"
            else:
                engine.g_update()
                count, moved, still = engine.g_updates, "G", "D"
            stats = engine.drain_stats()  # the update's row (the other network's columns repeat)
            self.telemetry.record_steps(np.array([engine.step_count]), np.array([self._wall_s()]), stats, 0.0)
            self.telemetry.record_update(network)
            if np.isfinite(stats).all() and engine.parameters_finite():
                message = f"{moved} updated once (step {engine.step_count:,}, {moved} update #{count:,}): {still} unchanged."
            else:
                message = NAN_MESSAGE.format(step=engine.step_count)
            self.telemetry.set_status("paused", message, step=engine.step_count)
            self._publish_frame(safe=True)
            return count

        return self._call(do_update)

    def reset(self, config: TrainConfig | None = None, csv_bytes: bytes | None = None) -> None:
        """Stop, rebuild the engine (fresh weights, step 0) and clear telemetry."""
        config = config or self.config
        engine = Engine(config, csv_bytes if csv_bytes is not None else self._csv_bytes)
        self._check_engine(engine)
        self.stop()
        with self._cond:
            self._engine = engine
            self._config = config
            self._pending_config = None
            if csv_bytes is not None:
                self._csv_bytes = csv_bytes
        self.checkpoints.clear()
        self.timelapse.clear()
        self.telemetry.reset()
        self.telemetry.set_status("idle", "", device=str(engine.device), config=config, step=0, rate=0.0)

    def close(self) -> None:
        """Stop for good (the visitor left); the same as `stop()` for a run in this process."""
        self.stop()

    def rewind(self, index: int) -> int:
        """Restore checkpoint `index` (weights, Adam state, RNG, step, live config); the run
        pauses there so new hyperparameters can be set before it continues. Returns the step."""
        ckpt = self.checkpoints.get(index)  # raises CheckpointError for an unknown index

        def do_rewind():
            self._engine.drain_stats()
            restore(self._engine, ckpt)
            with self._cond:
                self._config = self._engine.config
                self._pending_config = None
                self._paused = True
                self._pending_steps = 0
            self.checkpoints.drop_after(ckpt.step)
            self.telemetry.truncate_after(ckpt.step)
            self.telemetry.set_status("paused", f"Rewound to step {ckpt.step:,}. Change the settings, then Resume.",
                                      config=self._engine.config, step=ckpt.step)
            self._publish_frame(safe=True)
            return ckpt.step

        return self._call(do_rewind)

    def save(self, target) -> object:
        """Write the run, its plots' data and its time-lapse to a `.safetensors` file (see
        `checkpoints.save_run`)."""
        return self._call(lambda: save_run(self._engine, target, history=self.telemetry.history(),
                                           extra_tensors=self.timelapse.to_tensors()))

    def open_loaded(self, history: History | None, timelapse: TimelapseRecorder, message: str) -> None:
        """A run rebuilt from a run file (not started): its plots' history and its time-lapse back
        (so curves and a GIF made later start at step 0), paused at its step with `message`, a
        checkpoint there (rewindable to the loaded step) and a fresh look at G and D."""

        def do_open() -> None:
            step = self._engine.step_count
            if history is not None:
                self.telemetry.restore(history, step)
            self.timelapse = timelapse
            self.telemetry.set_status("paused", message, step=step)
            self.checkpoints.add(capture(self._engine))
            self._publish_frame(safe=True)

        self._call(do_open)

    def publish_frame(self) -> None:
        """Evaluate the current weights and publish the frame, e.g. for a new or loaded run before Start."""
        self._call(lambda: self._publish_frame(safe=True))

    def checkpoint_now(self) -> int:
        return self._call(lambda: self.checkpoints.add(capture(self._engine)))

    # --- between two steps (the stepping thread, or here when none owns the run) ------------------

    def _call(self, fn, timeout: float = COMMAND_TIMEOUT_S):
        """Run `fn` on the training thread between two steps (or here if none owns the run)."""
        with self._cond:
            owned = self._owned()
            if owned:
                done, result = threading.Event(), []
                self._commands.append((fn, done, result))
                self._cond.notify_all()
        if not owned:
            return fn()
        if not done.wait(timeout):
            raise TimeoutError("the training thread did not answer in time")
        ok, value = result[0]
        if not ok:
            raise value
        return value

    def _run_commands(self) -> None:
        with self._cond:
            commands, self._commands = self._commands, []
        for fn, done, result in commands:
            try:
                result.append((True, fn()))
            except Exception as exc:  # handed back to the caller
                result.append((False, exc))
            done.set()

    def _apply_pending(self) -> None:
        """Apply queued live changes to the engine."""
        with self._cond:
            cfg, self._pending_config = self._pending_config, None
        if cfg is not None:
            old = self._engine.config
            self._engine.apply(cfg)
            with self._cond:
                self._config = cfg
            self.telemetry.set_status(config=cfg)
            self.telemetry.record_change(self._engine.step_count, old, cfg)  # marked on the plots

    def _publish_frame(self, safe: bool = False) -> None:
        try:
            frame = self._engine.evaluate()
            self.telemetry.record_frame(frame)
            self.timelapse.add(frame)
        except Exception:
            if not safe:
                raise

    def _pause_with(self, message: str, state: str = "paused") -> None:
        """Stop stepping (owed single steps dropped) and say why on the page."""
        with self._cond:
            self._paused = True
            self._pending_steps = 0
            self._cond.notify_all()
        self.telemetry.set_status(state, message)

    def _fail(self, exc: BaseException) -> None:
        """A step or an evaluation raised: the run shows the error; a later start or reset works."""
        log.exception("run %s failed", self.name)
        reason = traceback.format_exception_only(type(exc), exc)[-1].strip()
        self._pause_with(f"Training stopped with an error at step {self._engine.step_count:,}: {reason}", "error")

    def _after_chunk(self) -> float | None:
        """After a chunk of steps (the stepping thread): see the module docstring. Returns the
        seconds an evaluation frame took, if one was drawn."""
        engine, tel = self._engine, self.telemetry
        stats = engine.drain_stats()
        if not len(stats):
            return None
        now = time.perf_counter()
        steps = np.arange(engine.step_count - len(stats) + 1, engine.step_count + 1)
        if now - self._rate_t >= 0.5:
            self._rate = max(0, engine.step_count - self._rate_steps) / (now - self._rate_t)  # ≥ 0 after a rewind
            self._rate_steps, self._rate_t = engine.step_count, now
        with self._cond:
            paused, limit = self._paused, self._speed_limit
        if not paused and tel.state != "running":
            tel.set_status("running", "")
        tel.record_steps(steps, np.full(len(stats), self._wall_s()), stats, self._rate)
        if not np.isfinite(stats).all() or not self._weights_finite():
            self._sync_weights()
            self._pause_with(NAN_MESSAGE.format(step=engine.step_count))
            self._publish_frame(safe=True)
            return None
        due_eval = paused or draws_every_step(limit) or now - self._last_eval >= self._eval_every
        due_checkpoint = now - self._last_checkpoint >= self.checkpoint_interval_s
        if due_eval or due_checkpoint:
            self._sync_weights()
        frame_s = None
        if due_eval:
            self._publish_frame()
            self._last_eval = time.perf_counter()
            frame_s = self._last_eval - now
        if due_checkpoint:
            self.checkpoints.add(capture(engine))
            self._last_checkpoint = time.perf_counter()
        if engine.data.is_image and due_eval and self._last_eval - self._last_score >= self.score_interval_s:
            scores = engine.digit_scores()
            if scores is not None:
                tel.record_digit_scores(engine.step_count, scores.inception_score, scores.frechet_distance)
            self._last_score = time.perf_counter()
        if self.max_steps is not None and engine.step_count >= self.max_steps:
            self._sync_weights()
            self._publish_frame()
            self._pause_with(f"Reached {self.max_steps:,} steps.", "finished")
        elif paused and tel.state == "running":
            tel.set_status("paused")
        return frame_s
