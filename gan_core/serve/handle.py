"""What every run handle shares, whoever steps it: commands run between two steps,
rewind, save, checkpoints, live changes and publishing a frame.

`runner.Runner` (a run on its own thread) and `trainer.CohortRunner` (a run stepped by
a shared trainer thread) both inherit this, so the two cannot drift apart. A subclass
provides `_cond` (the condition guarding its fields), `_owned()` (whether a training
thread currently owns the engine, so commands must be queued for it), `_wall_s()` (the
telemetry's wall-time column), `stop()` and `_publish_frame(safe)`.

Not here: how steps are scheduled (the subclasses), the step itself (`engine.py`).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..checkpoints import capture, restore, save_run
from ..config import TrainConfig
from ..engine import Engine
from ..timelapse import TimelapseRecorder

MAX_SPEED_LIMIT = 10_000.0  # steps/s: the fastest pace a slowed run may be set to


class RunControls:
    """Mixin of the run-handle methods that do not depend on how the run is stepped."""

    _cond: threading.Condition

    def _owned(self) -> bool:
        raise NotImplementedError

    @property
    def config(self) -> TrainConfig:
        """The live config, including changes queued for the next step."""
        with self._cond:
            return self._pending_config or self._config

    def _check_engine(self, engine: Engine) -> None:
        """Raise if this handle cannot train `engine` (a cohort handle refuses digits)."""

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
                message = (f"{moved}'s weights became NaN/Inf after a single update. Lower the learning "
                           "rates, then reset or rewind.")
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

    @property
    def speed_limit(self) -> float | None:
        with self._cond:
            return self._speed_limit

    def set_speed(self, steps_per_s: float | None) -> None:
        """Limit the running GAN to `steps_per_s` steps per second (None: as fast as it can).

        Acts at once on the running thread (no restart); `step()` while paused is not throttled.
        """
        if steps_per_s is not None:
            if isinstance(steps_per_s, bool) or not isinstance(steps_per_s, (int, float)) \
                    or not 0 < steps_per_s <= MAX_SPEED_LIMIT:
                raise ValueError(f"speed must be between 0 and {MAX_SPEED_LIMIT:g} steps per second "
                                 f"(or None for full speed), got {steps_per_s!r}")
            steps_per_s = float(steps_per_s)
        with self._cond:
            self._speed_limit = steps_per_s
            # The new pace starts now: one step at once, the next 1/speed later. (0.0 here let a
            # cohort-trained run take two at once: its catch-up allowance reaches 0.5 s back.)
            self._next_step_at = time.perf_counter()
            self._cond.notify_all()

    def _publish_frame(self, safe: bool = False) -> None:
        try:
            frame = self._engine.evaluate()
            self.telemetry.record_frame(frame)
            self.timelapse.add(frame)
        except Exception:
            if not safe:
                raise


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

    def adopt_timelapse(self, recorder: TimelapseRecorder) -> None:
        """Continue `recorder` (the time-lapse saved with a loaded run: `TimelapseRecorder.from_tensors`),
        so a GIF made later covers the whole run, not only what follows the load."""

        def adopt() -> None:
            self.timelapse = recorder

        self._call(adopt)

    def publish_frame(self) -> None:
        """Evaluate the current weights and publish the frame, e.g. for a new or loaded run before Start."""
        self._call(lambda: self._publish_frame(safe=True))

    def checkpoint_now(self) -> int:
        return self._call(lambda: self.checkpoints.add(capture(self._engine)))

    def _call(self, fn, timeout: float = 30.0):
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
        """Apply queued live changes (training thread, or here when none owns the run)."""
        with self._cond:
            cfg, self._pending_config = self._pending_config, None
        if cfg is not None:
            old = self._engine.config
            self._engine.apply(cfg)
            with self._cond:
                self._config = cfg
            self.telemetry.set_status(config=cfg)
            self.telemetry.record_change(self._engine.step_count, old, cfg)  # marked on the plots
