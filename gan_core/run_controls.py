"""What every run handle shares, whoever steps it: commands run between two steps,
rewind, save, checkpoints, live changes and publishing a frame.

`runner.Runner` (a run on its own thread) and `trainer.CohortRunner` (a run stepped by
a shared trainer thread) both inherit this, so the two cannot drift apart. A subclass
provides `_cond` (the condition guarding its fields), `_owned()` (whether a training
thread currently owns the engine, so commands must be queued for it) and
`_publish_frame(safe)`.

Not here: how steps are scheduled (the subclasses), the step itself (`engine.py`).
"""

from __future__ import annotations

import threading

from .checkpoints import capture, restore, save_run
from .config import TrainConfig
from .timelapse import TimelapseRecorder


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
