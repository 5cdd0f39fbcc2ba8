"""Tests for gan_core/serve/processes.py: runs trained in trainer processes keep every control of a
run handle, train bit-identically to a run in this process, fail clearly when their process
dies, and leave nothing behind (no run, no thread, no process)."""

from __future__ import annotations

import dataclasses
import functools
import io
import operator
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_core.checkpoints import CheckpointError, read_run_bytes
from gan_core.config import ConfigError
from gan_core.engine import Engine
from gan_core.records import N_STATS, EvalFrame
from gan_core.serve.handle import RunUnreachable
from gan_core.serve.processes import FRAMES, TABLES, RemoteRun, TrainerProcesses, apply_patch, snapshot_patch
from gan_core.telemetry import Snapshot, Telemetry

from configs import tiny_config


@pytest.fixture(scope="module")
def pool():
    pool = TrainerProcesses(2, chunk_s=0.01, balance_s=None)  # runs stay put unless a test moves them
    pool.start()
    children = list(pool._children)
    yield pool
    pool.close()
    assert all(c.process.poll() is not None for c in children), "close() ends every trainer process"


@pytest.fixture
def make(pool, tiny):
    made = []

    def make_run(**overrides) -> RemoteRun:
        made.append(pool.create(tiny(**overrides), name=f"gan-p{len(made)}"))
        return made[-1]

    yield make_run
    for run in made:
        if run.child.alive:
            run.close()
    assert pool.runs_alive() == 0


def engine_of(run: RemoteRun) -> Engine:
    """The run as its child holds it, through a run file's bytes."""
    buffer = io.BytesIO()
    run.save(buffer)
    return read_run_bytes(buffer.getvalue(), "cpu")[0]


def test_runs_spread_over_the_processes_and_train(make, pool, wait_until):
    runs = [make(seed=i) for i in range(4)]
    assert sorted(r.child.index for r in runs) == [0, 0, 1, 1]
    for run in runs:
        run.start()
    wait_until(lambda: all(r.snapshot().step > 50 for r in runs), what="every run advances")
    assert all(r.state() == "running" for r in runs)
    assert sum(w["training"] for w in pool.stats()["workers"]) == 4
    assert pool.threads_alive() == 4


def test_single_steps_match_a_run_trained_here_bit_for_bit(make, tiny):
    run = make(seed=3)
    run.step(40)
    deadline = time.monotonic() + 10
    while run.snapshot().step < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    here = Engine(tiny(seed=3))
    for _ in range(40):
        here.step()
    there = engine_of(run)
    assert there.step_count == here.step_count == 40
    for a, b in zip(there.G.state_dict().values(), here.G.state_dict().values()):
        assert torch.equal(a, b)


def test_controls_pause_update_rewind_and_bad_values(make, wait_until):
    run = make(seed=1)
    run.start()
    wait_until(lambda: run.snapshot().step > 20, what="training")
    run.pause()
    wait_until(lambda: run.state() == "paused", what="paused")
    step = run.snapshot().step
    time.sleep(0.1)
    assert run.snapshot().step == step
    new = run.update(d_lr=1e-3, n_critic=2)
    assert new.d_lr == 1e-3 and run.config.n_critic == 2  # the view follows the call at once
    assert run.checkpoint_now() >= 1 and len(run.checkpoints.list()) >= 2
    back_to = run.rewind(run.checkpoints.list()[0].index)
    assert back_to == 0 and run.snapshot().step == 0 and run.state() == "paused"
    with pytest.raises(CheckpointError, match="not kept"):
        run.rewind(999)
    with pytest.raises(ValueError, match="speed"):
        run.set_speed(-5)
    with pytest.raises(ConfigError):
        run.update(d_lr=50.0)
    assert run.config.d_lr == 1e-3  # a rejected change changed nothing


def test_a_bad_config_raises_and_leaves_nothing(pool, tiny):
    from gan_core.data import DataError

    before = pool.runs_alive()
    with pytest.raises(DataError, match="expected 2 columns"):  # the engine's own error, across
        pool.create(tiny(dataset="csv"), csv_bytes=b"x,y\n1\n")
    assert pool.runs_alive() == before


def test_a_loaded_run_continues_in_a_process(make, pool, tiny):
    source = Engine(tiny(seed=5))
    for _ in range(30):
        source.step()
    run = pool.create(source.config, engine=source, name="gan-loaded")
    try:
        assert run.snapshot().step == 0  # telemetry starts empty; the engine is at step 30
        run.step(10)
        deadline = time.monotonic() + 10
        while engine_of(run).step_count < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(10):
            source.step()
        there = engine_of(run)
        assert there.step_count == 40
        for a, b in zip(there.D.state_dict().values(), source.D.state_dict().values()):
            assert torch.equal(a, b)
    finally:
        run.close()


# A `RunHandle.view` maker: its view reads one field of the snapshot. A partial pickles by value,
# so the child makes a new view at each call (this one keeps nothing between calls).
STATE_OF = functools.partial(operator.attrgetter, "state")


def test_a_view_is_made_and_answered_in_the_process(make, wait_until):
    run = make()
    run.step(3)
    wait_until(lambda: run.snapshot().step == 3)
    assert run.view(functools.partial(operator.attrgetter, "step")) == 3
    assert run.view(STATE_OF) == run.state()


def test_a_dead_process_fails_its_runs_clearly(tiny):
    pool = TrainerProcesses(1, chunk_s=0.01)
    try:
        run = pool.create(tiny(), name="gan-doomed")
        run.start()
        pool._children[0].process.kill()
        deadline = time.monotonic() + 10
        while run.state() != "error" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run.state() == "error" and not run.is_alive
        snap = run.snapshot()
        assert snap.state == "error" and "Press Start" in snap.message  # what the status line shows
        with pytest.raises(RunUnreachable) as gone:
            run.view(STATE_OF)
        assert gone.value.state == "error" and "Press Start" in gone.value.message
        with pytest.raises(RuntimeError, match="trainer process"):
            run.pause()
        run.close()  # no hang, no error: the visitor can still leave
        fresh = pool.create(tiny(), name="gan-next")  # a new process replaces the dead one
        fresh.step(3)
        deadline = time.monotonic() + 10
        while fresh.snapshot().step < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fresh.snapshot().step == 3
        fresh.close()
    finally:
        pool.close()


SERVER = """
import sys, time
sys.path[:0] = {paths!r}
from configs import tiny_config
from gan_core.serve.processes import TrainerProcesses
pool = TrainerProcesses(1, chunk_s=0.01)
pool.create(tiny_config(), name="gan-orphan").start()
print(pool._children[0].process.pid, flush=True)
time.sleep(120)
"""


def test_a_process_exits_when_its_server_is_killed():
    import os
    import signal
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    code = SERVER.format(paths=[str(here.parent), str(here)])
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        import select

        assert select.select([server.stdout], [], [], 60)[0], "the server did not start its trainer process"
        child = int(server.stdout.readline())
        os.kill(server.pid, signal.SIGKILL)  # no atexit, no "close": the child only sees end of file
        server.wait(10)
        def running() -> bool:  # a zombie (exited, not yet reaped by init) counts as gone
            try:
                return Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
            except OSError:
                return False

        deadline = time.monotonic() + 30
        while running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(), "the trainer process outlived its server"
    finally:
        server.kill()


def test_a_closed_run_reads_as_stopped_and_refuses_controls(pool, tiny):
    run = pool.create(tiny(seed=7), name="gan-left")
    run.start()
    run.close()
    run.close()  # twice is harmless (release after an unload)
    assert run.snapshot().state == "stopped"  # a tick that still holds the old session
    with pytest.raises(RunUnreachable) as gone:
        run.view(STATE_OF)
    assert gone.value.state == "stopped"
    with pytest.raises(RuntimeError, match="closed"):
        run.resume()
    assert pool.runs_alive() == 0


def test_a_moved_run_goes_on_bit_for_bit_with_everything_it_had(make, pool, wait_until):
    run = make(seed=4)
    run.start()
    wait_until(lambda: run.snapshot().step > 30 and len(run.timelapse) >= 2, what="training")
    run.update(g_lr=5e-4)
    run.checkpoint_now()
    run.pause()
    wait_until(lambda: run.state() == "paused", what="paused")
    before, here = run.snapshot(), engine_of(run)
    kept, frames = run.checkpoints.list(), len(run.timelapse)
    source = run.child
    (target,) = [c for c in pool._children if c is not source]
    run._move(target)
    assert run.child is target and run.id in target.runs and run.id not in source.runs
    after = run.snapshot()
    assert after.step == before.step and after.state == "paused" and len(after.history) == len(before.history)
    assert [e[1] for e in after.events] == [e[1] for e in before.events] and "G lr" in after.events[-1][1]
    assert run.checkpoints.list() == kept and len(run.timelapse) == frames
    run.step(20)
    wait_until(lambda: run.snapshot().step == before.step + 20, what="20 steps in the new process")
    for _ in range(20):
        here.step()
    there = engine_of(run)
    assert there.step_count == here.step_count
    for a, b in zip([*there.G.state_dict().values(), *there.D.state_dict().values()],
                    [*here.G.state_dict().values(), *here.D.state_dict().values()]):
        assert torch.equal(a, b)
    assert run.rewind(kept[-1].index) == kept[-1].step  # its checkpoints work there


def test_a_training_run_moves_and_trains_on_from_where_it_was(make, pool, wait_until):
    run = make(seed=6)
    run.start()
    wait_until(lambda: run.snapshot().step > 50, what="training")
    (target,) = [c for c in pool._children if c is not run.child]
    run._move(target)
    moved_at = run.snapshot().step
    assert run.child is target and run.state() == "running"
    wait_until(lambda: run.snapshot().step > moved_at + 50, what="training on in the new process")
    steps = run.snapshot().history[:, 0]
    assert steps[0] <= 1 and (np.diff(steps) > 0).all(), "one history from step 0, no restart"


def test_a_failed_move_leaves_the_run_training_where_it_was(tiny, wait_until):
    pool = TrainerProcesses(2, chunk_s=0.01, balance_s=None)
    try:
        runs = [pool.create(tiny(seed=i), name=f"gan-f{i}") for i in range(2)]
        run = next(r for r in runs if r.child.index == 0)
        run.start()
        dead = pool._children[1]
        dead.process.kill()
        wait_until(lambda: not dead.alive, what="the target process gone")
        with pytest.raises(RuntimeError):
            run._move(dead)
        step = run.snapshot().step
        assert run.child.index == 0 and run.state() == "running"
        wait_until(lambda: run.snapshot().step > step + 20, what="training on in its own process")
    finally:
        pool.close()


def test_training_runs_spread_out_when_a_process_empties(tiny, wait_until):
    pool = TrainerProcesses(2, chunk_s=0.01, balance_s=0.5)
    try:
        runs = [pool.create(tiny(seed=i), name=f"gan-s{i}") for i in range(4)]
        for run in [r for r in runs if r.child.index == 1]:
            run.close()  # two students on process 1 leave before starting
        left = [r for r in runs if not r._closed]
        assert [r.child.index for r in left] == [0, 0]
        for run in left:
            run.start()
        wait_until(lambda: sorted(r.child.index for r in left) == [0, 1], timeout=30,
                   what="the balancer moves one run to the idle process")
        steps = [r.snapshot().step for r in left]
        wait_until(lambda: all(r.snapshot().step > s + 20 for r, s in zip(left, steps)), what="both train on")
        assert all(r.state() == "running" for r in left) and pool.moves >= 1
    finally:
        pool.close()


# --- snapshots cross as patches ------------------------------------------------------------------


def same_snapshot(a, b) -> None:
    """Field by field: arrays equal (NaN equal to NaN), frames equal, everything else ==."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        elif f.name in FRAMES:
            assert (x is None) == (y is None), f.name
            if x is not None:
                for g in dataclasses.fields(x):
                    u, v = getattr(x, g.name), getattr(y, g.name)
                    assert np.array_equal(u, v, equal_nan=True) if isinstance(u, np.ndarray) else u == v, g.name
        else:
            assert x == y, f.name


def tel_frame(step: int) -> EvalFrame:
    points = np.full((4, 2), float(step))
    return EvalFrame(step, np.zeros(4), np.zeros(4), points, points, None, None, None, None, step % 9, 8, 50.0)


def test_a_snapshot_patch_rebuilds_the_snapshot_through_every_kind_of_change():
    tel = Telemetry(history_capacity=8, recent=16)  # small: the history's bins merge, `recent` slides
    held = tel.snapshot()  # what the server holds: a copy that crossed the socket

    def cross() -> None:
        nonlocal held
        new = tel.snapshot()
        patch = pickle.loads(pickle.dumps(snapshot_patch(held_here, new)))
        rebuilt = apply_patch(held, patch)
        same_snapshot(rebuilt, new)
        assert all(not getattr(rebuilt, t).flags.writeable for t in TABLES)
        held = rebuilt

    held_here = held
    for first in range(1, 200, 7):  # steps in chunks, frames now and then: history bins merge
        steps = np.arange(first, first + 7)
        tel.record_steps(steps, steps * 0.01, np.tile(steps[:, None] * 1.0, (1, N_STATS)), rate=7.0)
        if first % 3 == 0:
            tel.record_frame(tel_frame(int(steps[-1])))
        cross()
        held_here = tel.snapshot()
    tel.record_change(150, tiny_config(), tiny_config(d_lr=1e-3))
    cross()
    held_here = tel.snapshot()
    steps = np.arange(204, 240)  # more steps at once than `recent` holds: all its old rows slid out
    tel.record_steps(steps, steps * 0.01, np.ones((len(steps), N_STATS)), rate=36.0)
    cross()
    held_here = tel.snapshot()
    tel.truncate_after(120)  # a rewind: every table cut back, the frames gone
    cross()
    held_here = tel.snapshot()
    nan_stats = np.full((3, N_STATS), np.nan)  # a diverged run: NaN rows never compare equal
    tel.record_steps(np.arange(121, 124), np.arange(121, 124) * 0.01, nan_stats, rate=3.0)
    cross()
    held_here = tel.snapshot()
    tel.reset()
    cross()


def test_a_run_that_trains_on_sends_its_new_rows_not_its_history():
    tel = Telemetry()
    for first in range(1, 5001, 50):
        steps = np.arange(first, first + 50)
        tel.record_steps(steps, steps * 0.01, np.ones((50, N_STATS)), rate=50.0)
    old = tel.snapshot()
    steps = np.arange(5001, 5051)
    tel.record_steps(steps, steps * 0.01, np.ones((50, N_STATS)), rate=50.0)
    patch = snapshot_patch(old, tel.snapshot())
    assert len(old.history) > 1000 and len(old.recent) > 1000
    new_rows = 50 // tel.snapshot().history_bin + 1  # and the bin in progress before them
    assert len(patch.tables["history"][2]) <= new_rows and len(patch.tables["recent"][2]) == 50
    assert len(pickle.dumps(patch)) < len(pickle.dumps(tel.snapshot())) / 10


def test_a_process_run_sends_patches_that_rebuild_its_snapshot(make, wait_until):
    run = make(seed=6)
    run.start()
    wait_until(lambda: run.snapshot().step > 200, what="training")
    for _ in range(5):
        run.snapshot()
        time.sleep(0.05)
    run.pause()
    wait_until(lambda: run.state() == "paused", what="paused")
    patched = run.snapshot()  # the last step's patch against the one held before
    assert isinstance(run._call("snapshot", patched.version - 1), Snapshot)  # not what it holds: all of it
    same_snapshot(patched, run._call("snapshot", -1))


def test_a_process_runs_rate_is_read_from_its_view_without_asking_the_process(make, wait_until, monkeypatch):
    run = make(seed=7)
    run.start()
    wait_until(lambda: run.telemetry.rate > 0, what="a rate in the run's view")
    asked = []
    monkeypatch.setattr(run, "_call", lambda *args, **kwargs: asked.append(args))
    assert run.telemetry.rate == run._view.rate > 0
    assert asked == []
