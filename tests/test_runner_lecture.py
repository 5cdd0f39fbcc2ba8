"""Tests for the lecture controls of gan_core/serve/runner.py: the speed limit (slow motion) and
single D-only / G-only updates, on a tiny 2-D run. Timing checks use lower bounds that the
throttle guarantees and generous upper bounds (the CI box is shared)."""

from __future__ import annotations

import math
import time

import pytest




def test_speed_limit_paces_the_running_gan(make_runner, wait_until):
    runner = make_runner()
    runner.set_speed(20)
    runner.start()
    wait_until(lambda: runner.snapshot().step >= 2, what="first steps")
    t0, s0 = time.perf_counter(), runner.snapshot().step
    wait_until(lambda: runner.snapshot().step >= s0 + 10, what="10 more steps")
    elapsed = time.perf_counter() - t0
    assert elapsed >= 0.8 * 10 / 20, f"10 steps at 20 steps/s took only {elapsed:.2f} s"
    assert runner.snapshot().step < s0 + 10 + 20 * (time.perf_counter() - t0) + 3


def test_slow_motion_publishes_a_frame_for_every_step(make_runner, wait_until):
    runner = make_runner(eval_interval_s=60.0)  # without slow motion only the first frame would show
    runner.set_speed(10)
    runner.start()
    wait_until(lambda: runner.snapshot().step >= 6, what="6 steps")
    runner.pause()
    wait_until(lambda: runner.state() == "paused")
    steps = [f.step for f in runner.timelapse.frames()]
    last = runner.snapshot().step
    assert set(range(1, last + 1)) <= set(steps), f"frames at steps {steps}, last step {last}"


def test_speed_changes_act_on_the_running_gan_without_restart(make_runner, wait_until):
    runner = make_runner()
    runner.set_speed(5)
    runner.start()
    wait_until(lambda: runner.snapshot().step >= 1)
    engine = runner.engine
    runner.set_speed(None)  # back to full speed at once
    wait_until(lambda: runner.snapshot().step > 300, what="full speed again")
    assert runner.engine is engine and runner.speed_limit is None
    runner.set_speed(1)
    time.sleep(0.05)
    s = runner.snapshot().step
    time.sleep(0.5)
    assert runner.snapshot().step - s <= 2, "1 step/s: at most one step (plus one in flight) in 0.5 s"


def test_pause_wakes_a_slow_run_at_once(make_runner, wait_until):
    runner = make_runner()
    runner.set_speed(0.2)  # one step every 5 s
    runner.start()
    wait_until(lambda: runner.snapshot().step >= 1)
    t0 = time.perf_counter()
    runner.pause()
    wait_until(lambda: runner.state() == "paused", timeout=3, what="paused within 3 s, not after the 5 s wait")
    assert time.perf_counter() - t0 < 3
    runner.step(3)  # single steps while paused are not throttled
    wait_until(lambda: runner.snapshot().step >= 4, timeout=3, what="3 unthrottled steps")


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, 1e9, True, "fast"])
def test_bad_speed_is_a_clear_error_and_keeps_the_old_one(make_runner, bad):
    runner = make_runner()
    runner.set_speed(10)
    with pytest.raises(ValueError, match="steps per second"):
        runner.set_speed(bad)
    assert runner.speed_limit == 10


def weights(module) -> list:
    return [p.detach().clone() for p in module.parameters()]


def same(a: list, b: list) -> bool:
    return all(x.equal(y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("network", ["d", "g"])
def test_single_update_moves_one_network_only(make_runner, wait_until, network):
    runner = make_runner()
    runner.step(2)
    wait_until(lambda: runner.snapshot().state == "paused" and runner.snapshot().step == 2)
    engine = runner.engine
    g0, d0 = weights(engine.G), weights(engine.D)
    d_count, g_count = engine.d_updates, engine.g_updates
    version = runner.snapshot().version
    count = runner.step_d() if network == "d" else runner.step_g()
    snap = runner.snapshot()
    if network == "d":
        assert (engine.d_updates, engine.g_updates) == (d_count + 1, g_count) and count == d_count + 1
        assert same(weights(engine.G), g0) and not same(weights(engine.D), d0)
        assert "D updated once" in snap.message and "G unchanged" in snap.message
    else:
        assert (engine.d_updates, engine.g_updates) == (d_count, g_count + 1) and count == g_count + 1
        assert same(weights(engine.D), d0) and not same(weights(engine.G), g0)
        assert "G updated once" in snap.message and "D unchanged" in snap.message
    assert snap.state == "paused" and snap.last_update == network
    assert snap.version > version and snap.frame is not None
    time.sleep(0.1)
    assert runner.snapshot().step == snap.step, "still paused: no training step followed"


def test_single_update_pauses_a_running_gan_and_resume_trains_both(make_runner, wait_until):
    runner = make_runner()
    runner.start()
    wait_until(lambda: runner.snapshot().step > 20)
    runner.step_d()
    assert runner.state() == "paused" and runner.snapshot().last_update == "d"
    step = runner.snapshot().step
    time.sleep(0.1)
    assert runner.snapshot().step == step
    runner.resume()
    wait_until(lambda: runner.snapshot().step > step + 5)
    assert runner.snapshot().last_update == "both"


def test_single_update_before_the_thread_starts(make_runner):
    runner = make_runner()
    assert runner.step_g() == 1 and runner.engine.g_updates == 1
    assert runner.snapshot().last_update == "g" and runner.state() == "paused"
