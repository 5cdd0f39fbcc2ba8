"""Tests for gan_core/timelapse.py: bounded, evenly thinned recording; GIFs with the
right frames and size; points and digits drawn where they belong, NaN tolerated."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gan_core.config import TrainConfig
from gan_core.engine import Engine
from gan_core.records import EvalFrame
from classroom.gif import DIGIT_SCALE, FAKE_RGB, HEADER, PAD, REAL_RGB, render, to_gif
from gan_core.timelapse import (
    MOSAIC, TimelapseRecorder, compact,
)

EXTENT = (-2.0, 2.0, -2.0, 2.0)


def points_frame(step: int, fake=None, real=None, surface=None, modes=(8, 8)) -> EvalFrame:
    rng = np.random.default_rng(step)
    real = rng.normal(size=(64, 2)).astype(np.float32) if real is None else np.asarray(real, np.float32)
    fake = rng.normal(size=(64, 2)).astype(np.float32) if fake is None else np.asarray(fake, np.float32)
    return EvalFrame(step=step, d_real_values=np.zeros(len(real)), d_fake_values=np.zeros(len(fake)),
                     real=real, fake=fake, surface=surface, surface_extent=EXTENT, g_field=None,
                     value_estimate=None, modes_covered=modes[0], n_modes=modes[1], hq_percent=50.0)


def digits_frame(step: int, images: np.ndarray) -> EvalFrame:
    return EvalFrame(step=step, d_real_values=np.zeros(4), d_fake_values=np.zeros(len(images)),
                     real=np.zeros((4, 28, 28), np.float32), fake=images.astype(np.float32), surface=None,
                     surface_extent=None, g_field=None, value_estimate=None, modes_covered=None,
                     n_modes=None, hq_percent=None)


def gif_frames(data: bytes) -> list[Image.Image]:
    img = Image.open(io.BytesIO(data))
    out = []
    for i in range(img.n_frames):
        img.seek(i)
        out.append(img.convert("RGB").copy())
    return out


def box(size: int = 360) -> tuple[int, int, int]:
    """(left, top, side) of the plot area, as laid out by render()."""
    side = size - HEADER - PAD
    return (size - side) // 2, HEADER, side


# ------------------------------------------------------------------------------ GIF

def test_gif_has_one_frame_per_recorded_step_and_the_configured_size():
    rec = TimelapseRecorder()
    for step in (10, 20, 30, 40, 50):
        assert rec.add(points_frame(step))
    buf = io.BytesIO()
    assert to_gif(rec.frames(), buf, fps=5, size=360) == 5
    frames = gif_frames(buf.getvalue())
    assert len(frames) == 5 and all(f.size == (360, 360) for f in frames)
    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.info["duration"] == 200 and img.info.get("loop") == 0


def test_gif_can_be_written_to_a_path(tmp_path):
    rec = TimelapseRecorder()
    rec.add(points_frame(1))
    rec.add(points_frame(2))
    path = tmp_path / "run.gif"
    assert to_gif(rec.frames(), path, fps=10, size=200) == 2
    with Image.open(path) as img:
        assert img.format == "GIF" and img.n_frames == 2 and img.size == (200, 200)


def test_recorder_stays_bounded_and_evenly_spaced_over_a_long_run():
    rec = TimelapseRecorder(max_frames=8)
    for step in range(1, 101):
        rec.add(points_frame(step))
    steps = [f.step for f in rec.frames()]
    assert len(steps) <= 8 + 1
    assert steps[0] == 1 and steps[-1] == 100  # whole run: from the start to the newest
    gaps = np.diff(steps[:-1])
    assert len(set(gaps)) == 1 and gaps[0] == 16  # kept every 16th after four halvings
    buf = io.BytesIO()
    assert to_gif(rec.frames(), buf) == len(steps) == len(gif_frames(buf.getvalue()))


def test_repeated_rewound_and_switched_frames():
    rec = TimelapseRecorder()
    for step in (10, 20, 30, 40):
        rec.add(points_frame(step))
    assert not rec.add(points_frame(40))  # published again while paused: ignored
    rec.add(points_frame(25))  # rewound to step 25: the abandoned future goes
    assert [f.step for f in rec.frames()] == [10, 20, 25]
    rec.add(digits_frame(5, np.zeros((64, 28, 28))))  # reset to another dataset: start over
    assert [(f.step, f.kind) for f in rec.frames()] == [(5, "digits")]


def test_empty_recorder_and_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="no frames recorded yet"):
        to_gif(TimelapseRecorder().frames(), io.BytesIO())
    rec = TimelapseRecorder()
    rec.add(points_frame(1))
    with pytest.raises(ValueError, match="fps"):
        to_gif(rec.frames(), io.BytesIO(), fps=0)
    with pytest.raises(ValueError, match="even"):
        TimelapseRecorder(max_frames=7)


# ------------------------------------------------------------------------------ rendering

def test_points_are_drawn_where_they_are_with_y_up():
    left, top, side = box()
    # One generated point at the centre, one real point at the top-left corner (x0, y1).
    img = np.asarray(render(compact(points_frame(1, fake=[[0.0, 0.0]], real=[[-2.0, 2.0]]))))
    centre = img[top + (side - 1) // 2 - 1: top + side // 2 + 2, left + (side - 1) // 2 - 1: left + side // 2 + 2]
    assert (centre.reshape(-1, 3) == FAKE_RGB).all(1).any()
    assert tuple(img[top + 1, left + 1]) == REAL_RGB
    assert not (img[top + side - 3:top + side, left:left + 3].reshape(-1, 3) == REAL_RGB).all(1).any()


def test_nan_and_inf_points_and_surface_render_without_crashing():
    fake = np.array([[np.nan, 0.0], [np.inf, 1.0], [0.5, -np.inf], [0.5, 0.5]], np.float32)
    surface = np.full((48, 48), np.nan, np.float32)
    frame = points_frame(3, fake=fake, real=np.array([[np.nan, np.nan], [0.0, 0.0]]), surface=surface)
    rec = TimelapseRecorder()
    rec.add(frame)
    rec.add(points_frame(4, fake=np.full((8, 2), np.nan)))
    buf = io.BytesIO()
    assert to_gif(rec.frames(), buf) == 2
    img = np.asarray(render(compact(frame)))
    left, top, side = box()
    x, y = left + round(0.625 * (side - 1)), top + round(0.375 * (side - 1))  # the one finite fake (0.5, 0.5)
    assert tuple(img[y, x]) == FAKE_RGB


def test_surface_shades_where_d_says_fake():
    surface = np.zeros((48, 48), np.float32)
    surface[24:] = 1.0  # rows are y ascending: the upper half of the plane is "real"
    img = np.asarray(render(compact(points_frame(1, fake=np.zeros((0, 2)), real=np.zeros((0, 2)),
                                                 surface=surface))))
    left, top, side = box()
    assert img[top + 5, left + side // 2].tolist() == [255, 255, 255]
    assert img[top + side - 5, left + side // 2].max() < 200


def test_digits_render_as_an_upscaled_mosaic_in_sample_order_and_nan_is_black():
    images = np.zeros((64, 28, 28))
    images[0] = 1.0  # white
    images[1] = -1.0  # black
    images[2] = np.nan
    img = render(compact(digits_frame(7, images)))
    tile = 28 * DIGIT_SCALE
    assert img.size == (MOSAIC * tile, MOSAIC * tile + HEADER)
    a = np.asarray(img)
    assert (a[HEADER: HEADER + tile, :tile] == 255).all()
    assert (a[HEADER: HEADER + tile, tile: 2 * tile] == 0).all()
    assert (a[HEADER: HEADER + tile, 2 * tile: 3 * tile] == 0).all()
    assert (a[HEADER: HEADER + tile, 3 * tile: 4 * tile] == 128).all()  # 0.0 → mid grey


def test_records_a_real_engine_run():
    torch.set_num_threads(1)
    e = Engine(TrainConfig(dataset="ring8", width=8, depth=1, batch_size=16, z_dim=2, device="cpu"))
    rec = TimelapseRecorder(max_frames=4)
    for _ in range(6):
        for _ in range(5):
            e.step()
        e.drain_stats()
        rec.add(e.evaluate())
    assert [f.step for f in rec.frames()] == [5, 15, 25, 30]
    assert rec.frames()[0].extent == e.data.bounds
    buf = io.BytesIO()
    assert to_gif(rec.frames(), buf) == 4
