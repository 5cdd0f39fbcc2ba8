"""Tests for the time-lapse inside a run file (`TimelapseRecorder.to_tensors` /
`from_tensors`, `checkpoints.save_run(extra_tensors=…)`): a loaded run's GIF still starts
at step 0, damaged frames are refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.checkpoints import CheckpointError, load_run, load_run_extras, save_run
from gan_core.config import TrainConfig
from gan_core.engine import Engine
from gan_core.serve.runner import Runner
from gan_core.timelapse import MOSAIC, TimelapseRecorder
from test_timelapse import digits_frame, points_frame


def recorded(frames, max_frames: int = 8) -> TimelapseRecorder:
    rec = TimelapseRecorder(max_frames)
    for f in frames:
        rec.add(f)
    return rec


def assert_same_frames(a: list, b: list) -> None:
    assert [f.step for f in a] == [f.step for f in b] and [f.caption for f in a] == [f.caption for f in b]
    for x, y in zip(a, b):
        assert x.kind == y.kind and x.extent == y.extent
        np.testing.assert_array_equal(x.fake, y.fake)
        for name in ("real", "surface"):
            if getattr(x, name) is not None:
                np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_points_round_trip_keeps_frames_and_pace():
    surface = np.linspace(0, 1, 16 * 16).reshape(16, 16)
    rec = recorded([points_frame(s * 10, surface=surface, modes=(s % 9, 8)) for s in range(21)])
    back = TimelapseRecorder.from_tensors(rec.to_tensors(), last_step=200, max_frames=8)
    assert_same_frames(rec.frames(), back.frames())
    assert (back._stride, back._offered) == (rec._stride, rec._offered) and back._stride > 1
    # It goes on recording at the same pace: the next offers are thinned like the original's.
    for s in range(21, 40):
        rec.add(points_frame(s * 10, surface=surface))
        back.add(points_frame(s * 10, surface=surface))
    assert [f.step for f in back.frames()] == [f.step for f in rec.frames()]


def test_digits_round_trip():
    rng = np.random.default_rng(0)
    rec = recorded([digits_frame(s, rng.uniform(-1, 1, (64, 28, 28))) for s in (0, 5, 9)])
    back = TimelapseRecorder.from_tensors(rec.to_tensors(), last_step=9)
    assert_same_frames(rec.frames(), back.frames())
    assert back.frames()[0].fake.shape == (MOSAIC * 28, MOSAIC * 28)


def test_no_frames_no_tensors_and_an_empty_recorder():
    assert TimelapseRecorder().to_tensors() == {}
    assert len(TimelapseRecorder.from_tensors({}, last_step=0)) == 0


@pytest.mark.parametrize("damage", ["steps_after_run", "steps_not_increasing", "missing", "shape", "pace"])
def test_damaged_frames_are_refused(damage):
    t = recorded([points_frame(s, surface=np.zeros((4, 4))) for s in (0, 1, 2)]).to_tensors()
    last = 2
    if damage == "steps_after_run":
        last = 1
    elif damage == "steps_not_increasing":
        t["timelapse/step"] = torch.tensor([0, 2, 1])
    elif damage == "missing":
        del t["timelapse/surface"]
    elif damage == "shape":
        t["timelapse/fake"] = t["timelapse/fake"][:, :, :1].contiguous()
    else:
        t["timelapse/pace"] = torch.tensor([0, 3])
    with pytest.raises(ValueError, match="time-lapse is damaged"):
        TimelapseRecorder.from_tensors(t, last_step=last)


def test_save_run_rejects_extra_tensors_outside_known_folders(tmp_path):
    engine = Engine(TrainConfig(dataset="ring8", width=8, depth=1, batch_size=16, z_dim=2, device="cpu"))
    with pytest.raises(CheckpointError, match="must sit under"):
        save_run(engine, tmp_path, extra_tensors={"evil/x": torch.zeros(1)})
    path = save_run(engine, tmp_path)  # no time-lapse: loads with an empty one
    assert load_run_extras(path, "timelapse") == {}


def test_a_loaded_runs_timelapse_starts_at_step_0(tmp_path, no_leaked_threads, tiny, wait_until):
    runner = Runner(tiny(), eval_interval_s=0.01, chunk_s=0.005, name="gan-tl-save")
    try:
        runner.start()
        wait_until(lambda: len(runner.timelapse) > 5)
        runner.pause()
        wait_until(lambda: runner.state() == "paused")
        before = runner.timelapse.frames()
        assert before[0].step == 0 and len(before) > 3
        path = runner.save(tmp_path)
    finally:
        runner.stop()
    engine = load_run(path, device="cpu")
    loaded = Runner(engine.config, engine=engine, eval_interval_s=0.01, chunk_s=0.005, name="gan-tl-load")
    try:
        loaded.open_loaded(None, TimelapseRecorder.from_tensors(load_run_extras(path, "timelapse"), engine.step_count),
                           "loaded")
        end = engine.step_count + 50
        loaded.step(50)
        wait_until(lambda: loaded.timelapse.frames()[-1].step == end, what="the frame after 50 more steps")
        steps = [f.step for f in loaded.timelapse.frames()]
        assert steps[: len(before)] == [f.step for f in before], "the frames from before the save come first"
    finally:
        loaded.stop()
