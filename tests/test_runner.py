"""Tests for gan_core/serve/runner.py: the training thread's life cycle, exact single
steps, live changes, NaN and error handling — all on a tiny 2-D run."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from gan_core import engine as engine_mod
from gan_core.config import ConfigError, TrainConfig
from gan_core.serve.runner import Runner



def settled(runner: Runner, state: str, step: int | None = None):
    snap = runner.snapshot()
    return snap.state == state and (step is None or snap.step == step) and snap


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def test_new_runner_is_idle_with_config_and_no_thread(make_runner, tiny):
    runner = make_runner(tiny(seed=3))
    snap = runner.snapshot()
    assert snap.state == "idle" and snap.step == 0 and snap.device == "cpu"
    assert snap.config == runner.config == tiny(seed=3)
    assert not runner.is_alive and runner.name not in thread_names()


def test_step_n_from_idle_runs_exactly_n_steps_then_stays_paused(make_runner, wait_until):
    runner = make_runner()
    runner.step(5)
    snap = wait_until(lambda: settled(runner, "paused", 5), what="5 steps")
    assert len(snap.recent) == 5 and list(snap.column("step", recent=True)) == [1, 2, 3, 4, 5]
    # A frame is rendered after every single-step request (it is published just after the stats).
    wait_until(lambda: runner.snapshot().frame.step == 5, what="frame at step 5")
    time.sleep(0.1)
    assert runner.engine.step_count == 5 and runner.snapshot().step == 5
    runner.step(3)
    wait_until(lambda: settled(runner, "paused", 8), what="3 more steps")
    time.sleep(0.05)
    assert runner.engine.step_count == 8
    with pytest.raises(ValueError, match="between 1 and 100000"):
        runner.step(0)


def test_single_steps_longer_than_the_stats_buffer(make_runner, wait_until, monkeypatch):
    """step(n) for n beyond the per-chunk stats buffer (4096 rows normally) must not crash."""
    monkeypatch.setattr(engine_mod, "STATS_CAPACITY", 8)
    runner = make_runner()
    runner.step(20)
    snap = wait_until(lambda: settled(runner, "paused", 20) or settled(runner, "error"), what="20 steps")
    assert snap.state == "paused", snap.message
    assert runner.engine.step_count == 20 and len(snap.recent) == 20


def test_pause_stops_advancing_and_resume_continues(make_runner, wait_until):
    runner = make_runner()
    runner.start()
    assert runner.state() == "running" and runner.is_alive
    wait_until(lambda: runner.snapshot().step >= 20, what="training progress")
    runner.pause()
    paused = wait_until(lambda: settled(runner, "paused"), what="pause")
    time.sleep(0.1)
    assert runner.snapshot().step == paused.step == runner.engine.step_count
    runner.step(5)  # from paused: exactly five more
    wait_until(lambda: settled(runner, "paused", paused.step + 5), what="5 steps from paused")
    time.sleep(0.05)
    assert runner.engine.step_count == paused.step + 5
    runner.resume()
    wait_until(lambda: runner.snapshot().step > paused.step + 15, what="resume")
    assert runner.state() == "running"


def test_stop_joins_the_thread(make_runner, wait_until):
    runner = make_runner(name="gan-stop-me")
    runner.start()
    wait_until(lambda: runner.snapshot().step > 0, what="progress")
    assert "gan-stop-me" in thread_names()
    runner.stop()
    assert not runner.is_alive
    assert "gan-stop-me" not in thread_names()
    assert runner.state() == "stopped"
    step = runner.engine.step_count
    time.sleep(0.05)
    assert runner.engine.step_count == step
    runner.stop()  # idempotent


def test_stop_during_a_long_single_step_request_finishes_the_current_step_only(make_runner, wait_until):
    runner = make_runner()
    real_step = runner.engine.step
    in_step, release = threading.Event(), threading.Event()

    def held_step():
        in_step.set()
        release.wait(30)  # hold the training thread inside a step until stop() was asked
        real_step()

    runner.engine.step = held_step
    runner.step(3000)
    assert in_step.wait(30), "the training thread never started a step"
    stopper = threading.Thread(target=runner.stop, kwargs=dict(timeout=30), name="test-stopper")
    stopper.start()
    wait_until(lambda: runner._stop, what="stop requested")  # stop() set its flag and is waiting
    assert runner.is_alive  # ... for the step in progress
    release.set()
    stopper.join(30)
    assert not stopper.is_alive() and not runner.is_alive
    assert runner.engine.step_count < 3000  # "it finishes the current step", not the request


def test_update_refuses_wgan_gp_for_a_digits_d_with_batchnorm(make_runner):
    runner = make_runner(TrainConfig(dataset="digits", width=4, z_dim=4, batch_size=8, device="cpu"))
    with pytest.raises(ConfigError, match="WGAN-GP needs a discriminator without BatchNorm"):
        runner.update(loss="wgan-gp")
    assert runner.config.loss == runner.engine.config.loss == "nonsaturating"  # nothing queued or applied
    runner.update(loss="hinge")  # other losses are fine
    assert runner.engine.config.loss == "hinge"


def test_start_resume_restart_after_stop(make_runner, wait_until):
    runner = make_runner()
    runner.start()
    wait_until(lambda: runner.snapshot().step > 0, what="progress")
    runner.stop()
    step = runner.engine.step_count
    runner.resume()  # not alive: starts again from where it stopped
    wait_until(lambda: runner.snapshot().step > step + 5, what="restart")
    assert runner.is_alive


def test_reset_returns_to_step_zero_with_fresh_telemetry(make_runner, wait_until, tiny):
    runner = make_runner()
    first_weights = [p.detach().clone() for p in runner.engine.G.parameters()]
    runner.start()
    wait_until(lambda: runner.snapshot().step > 10 and runner.snapshot().frame is not None, what="progress")
    old_engine = runner.engine
    runner.reset()
    assert not runner.is_alive
    snap = runner.snapshot()
    assert snap.state == "idle" and snap.step == 0 and snap.message == ""
    assert len(snap.history) == 0 and len(snap.recent) == 0 and snap.frame is None and len(snap.coverage) == 0
    assert runner.engine is not old_engine and runner.engine.step_count == 0
    for p, q in zip(runner.engine.G.parameters(), first_weights):
        assert torch.equal(p, q)  # same seed: the same fresh weights
    runner.reset(tiny(seed=9, width=16))  # a reset may change frozen fields
    assert runner.config.width == 16 and runner.snapshot().config.seed == 9
    runner.step(2)
    wait_until(lambda: settled(runner, "paused", 2), what="steps after reset")


def test_nan_weights_pause_the_run_with_a_message(make_runner, wait_until, tiny):
    runner = make_runner(tiny(loss="nonsaturating"))
    with torch.no_grad():
        next(runner.engine.D.parameters())[0, 0] = float("nan")
    runner.start()
    snap = wait_until(lambda: settled(runner, "paused"), what="NaN pause")
    assert "NaN" in snap.message and f"step {snap.step}" in snap.message
    assert snap.step >= 1 and not np.isfinite(snap.recent[-1, 2:]).all()
    assert runner.is_alive  # waiting, not crashed
    time.sleep(0.05)
    assert runner.snapshot().step == snap.step  # stays paused
    runner.stop()
    assert not runner.is_alive


def test_a_step_that_raises_puts_the_run_in_error_and_reset_recovers(make_runner, wait_until):
    runner = make_runner()

    def boom():
        raise RuntimeError("boom: simulated failure")

    runner.engine.step = boom
    runner.start()
    snap = wait_until(lambda: settled(runner, "error"), what="error state")
    assert "boom: simulated failure" in snap.message and "RuntimeError" in snap.message
    assert "step 0" in snap.message
    wait_until(lambda: not runner.is_alive, what="thread exit")
    runner.reset()
    assert runner.state() == "idle"
    runner.start()
    wait_until(lambda: runner.snapshot().step > 5, what="training after reset")
    assert runner.state() == "running"


def test_invalid_update_raises_and_changes_nothing(make_runner):
    runner = make_runner()
    before = runner.config
    with pytest.raises(ConfigError, match="d_lr"):
        runner.update(d_lr=5.0)
    with pytest.raises(ConfigError, match="width cannot change"):
        runner.update(width=32)
    assert runner.config == before
    assert runner.engine.d_opt.param_groups[0]["lr"] == before.d_lr


def test_update_while_idle_applies_now(make_runner):
    runner = make_runner()
    new = runner.update(d_lr=2e-3, label_smoothing=0.1)
    assert runner.config == new
    assert runner.engine.d_opt.param_groups[0]["lr"] == 2e-3 and runner.engine.real_target == pytest.approx(0.9)
    assert runner.snapshot().config == new


def test_update_while_running_takes_effect_without_resetting(make_runner, wait_until):
    runner = make_runner()
    runner.start()
    wait_until(lambda: runner.snapshot().step > 10, what="progress")
    step_before = runner.snapshot().step
    runner.update(d_lr=4e-3, n_critic=2)
    wait_until(lambda: runner.engine.d_opt.param_groups[0]["lr"] == 4e-3, what="live lr")
    wait_until(lambda: runner.snapshot().config.n_critic == 2, what="config published")
    assert runner.snapshot().step >= step_before
    d_state = next(iter(runner.engine.d_opt.state.values()))
    assert float(d_state["step"]) > step_before  # Adam state carried on, not reset
    wait_until(lambda: runner.snapshot().step > step_before + 10, what="progress after update")
    assert runner.state() == "running"


def test_max_steps_finishes_exactly(make_runner, wait_until):
    runner = make_runner(max_steps=30)
    runner.start()
    snap = wait_until(lambda: settled(runner, "finished"), what="finish")
    assert snap.step == 30 and "30" in snap.message
    time.sleep(0.05)
    assert runner.engine.step_count == 30


def test_rewind_while_running_restores_exactly_and_pauses(make_runner, wait_until):
    runner = make_runner(checkpoint_interval_s=3600)
    runner.start()
    wait_until(lambda: runner.snapshot().step > 30)
    index = runner.checkpoint_now()  # captured on the training thread, between steps
    ckpt = runner.checkpoints.get(index)
    wait_until(lambda: runner.snapshot().step > ckpt.step + 30)
    assert runner.rewind(index) == ckpt.step
    snap = wait_until(lambda: settled(runner, "paused", ckpt.step))
    assert "Rewound" in snap.message
    assert snap.history[-1, 0] <= ckpt.step, "the abandoned future is gone from the plots"
    for name, value in runner.engine.G.state_dict().items():
        assert torch.equal(value, ckpt.g_state[name])
    # ... and continuing from there works, with a different learning rate.
    runner.update(d_lr=2e-3)
    runner.step(5)
    wait_until(lambda: settled(runner, "paused", ckpt.step + 5))
    assert runner.engine.d_opt.param_groups[0]["lr"] == 2e-3


def test_commands_run_inline_when_no_thread(make_runner):
    runner = make_runner()
    index = runner.checkpoint_now()
    assert runner.checkpoints.get(index).step == 0
    assert runner.rewind(index) == 0


def test_telemetry_truncate_after_drops_the_future():
    from gan_core.telemetry import Telemetry

    tel = Telemetry(history_capacity=8, recent=16)
    steps = np.arange(1, 41)
    tel.record_steps(steps, steps * 0.1, np.ones((40, 7)), 10.0)
    tel.truncate_after(25)
    snap = tel.snapshot()
    assert snap.step == 25
    assert snap.history[:, 0].max() <= 25 and snap.recent[:, 0].max() == 25
    assert np.all(np.diff(snap.recent[:, 0]) == 1)
    tel.record_steps(np.arange(26, 31), np.zeros(5), np.zeros((5, 7)), 10.0)
    assert tel.snapshot().recent[-1, 0] == 30
