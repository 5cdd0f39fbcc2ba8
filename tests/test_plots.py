"""Tests for gan_core/plots.py: every figure is valid plotly (checked by plotly
itself), titled and labelled, for empty and trained snapshots, 2-D and digits."""

from __future__ import annotations

import base64
import inspect
import io
import json
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from classroom import plots
from classroom.contour import level_lines
from classroom.png import png_bytes
from gan_core.config import TrainConfig
from gan_core.data import DIGITS_FILE
from gan_core.engine import Engine
from gan_core.telemetry import Telemetry

FIGURES = {name: fn for name, fn in inspect.getmembers(plots, inspect.isfunction)
           if name.endswith("_figure") and fn.__module__ == plots.__name__ and not name.startswith("compare")}


def test_all_five_figures_are_covered():
    assert set(FIGURES) == {"loss_figure", "d_output_figure", "d_means_figure", "samples_figure",
                            "coverage_figure"}


def snapshot(config: TrainConfig, steps: int = 0, digit_scores: int = 0):
    """A snapshot as the runner would publish it after `steps` steps."""
    tel = Telemetry()
    tel.set_status("running" if steps else "idle", "", device="cpu", config=config)
    if steps:
        engine = Engine(config)
        for _ in range(steps):
            engine.step()
        stats = engine.drain_stats()
        step_ids = np.arange(1, steps + 1)
        tel.record_steps(step_ids, step_ids * 0.01, stats, rate=100.0)
        tel.record_frame(engine.evaluate())
        for i in range(digit_scores):
            tel.record_digit_scores(i + 1, 1.5 + i, 200.0 - 10 * i)
    return tel.snapshot()


def tiny2d(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(width=8, depth=1, batch_size=16, z_dim=2, device="cpu"), **kw})


def digits_config(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(dataset="digits", width=4, batch_size=8, z_dim=4, device="cpu"), **kw})


CASES = {
    "2d-empty": lambda: snapshot(tiny2d()),
    "2d-trained": lambda: snapshot(tiny2d(pack=2), steps=3),
    "2d-hinge": lambda: snapshot(tiny2d(loss="hinge"), steps=2),
    "2d-wgan-gp": lambda: snapshot(tiny2d(loss="wgan-gp"), steps=2),
    "2d-spiral": lambda: snapshot(tiny2d(dataset="spiral"), steps=2),
    "digits-empty": lambda: snapshot(digits_config()),
    "digits-trained": lambda: snapshot(digits_config(), steps=1),
    "digits-scored": lambda: snapshot(digits_config(), steps=1, digit_scores=3),
}
NEEDS_DIGITS = {"digits-trained", "digits-scored"}


@pytest.fixture(scope="module")
def snapshots():
    return {}


def get_snapshot(snapshots, case):
    if case in NEEDS_DIGITS and not DIGITS_FILE.exists():
        pytest.skip(f"{DIGITS_FILE} not built yet")
    if case not in snapshots:
        snapshots[case] = CASES[case]()
    return snapshots[case]


def is_digit_mosaic(name, snap) -> bool:
    return name == "samples_figure" and snap.frame is not None and snap.frame.fake.ndim == 3


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_is_valid_plotly_with_title_and_axis_labels(snapshots, case, name):
    snap = get_snapshot(snapshots, case)
    fig = FIGURES[name](snap)
    as_dict = fig.to_dict()
    validated = go.Figure(as_dict)  # raises on any invalid property or value
    layout = validated.layout
    assert layout.title.text and layout.title.text.strip()
    if is_digit_mosaic(name, snap):
        assert layout.xaxis.visible is False and layout.yaxis.visible is False
        # The mosaic is a picture (no heatmap trace: see plots.py): dark ink on white.
        assert validated.data == () and len(layout.images) == 1
        np.testing.assert_array_equal(picture(as_dict), np.round(255 * (1 - plots.tile(snap.frame.fake))))
    else:
        assert layout.xaxis.title.text and layout.yaxis.title.text
    # What Gradio sends is JSON; it must parse and carry the same traces.
    payload = json.loads(fig.to_json())
    assert len(payload["data"]) == len(as_dict["data"])
    assert payload["layout"]["title"]["text"] == layout.title.text


@pytest.mark.parametrize("name", ["loss_figure", "d_means_figure", "d_output_figure", "samples_figure"])
def test_empty_snapshot_shows_a_message_instead_of_data(snapshots, name):
    snap = get_snapshot(snapshots, "2d-empty")
    fig = FIGURES[name](snap).to_dict()
    assert fig["data"] == []
    assert any(a.get("text") and a.get("xref") == "paper" and a.get("x") == 0.5 for a in fig["layout"]["annotations"])


def test_trained_2d_figures_carry_the_data(snapshots):
    snap = get_snapshot(snapshots, "2d-trained")
    loss = plots.loss_figure(snap).to_dict()
    # Equilibrium lines are legend entries (a label on the plot could sit on a curve).
    assert [t["name"] for t in loss["data"]] == ["D loss", "G loss", "D at equilibrium", "G at equilibrium"]
    np.testing.assert_allclose(loss["data"][0]["y"], snap.column("d_loss"), atol=1e-4)
    np.testing.assert_array_equal(loss["data"][0]["x"], [1, 2, 3])
    assert loss["data"][2]["y"] == [pytest.approx(2 * np.log(2))] * 2
    samples = plots.samples_figure(snap).to_dict()
    kinds = [t["type"] for t in samples["data"]]
    # D's surface is a picture under the plot, its colour bar carried by a trace without points;
    # all points and lines on WebGL (one canvas, drawn in trace order): real under the fakes.
    assert kinds[0] == "scatter" and samples["data"][0]["x"] == [None] and set(kinds[1:]) == {"scattergl"}
    assert samples["data"][0]["marker"]["showscale"] is True
    np.testing.assert_array_equal(picture(samples), plots.surface_pixels(snap.frame.surface, 0.0, 1.0))
    image = samples["layout"]["images"][0]
    x0, x1, y0, y1 = snap.frame.surface_extent
    cell = (x1 - x0) / (snap.frame.surface.shape[1] - 1)  # D is sampled at the cells' centres
    assert image["x"] == pytest.approx(x0 - cell / 2) and image["sizex"] == pytest.approx(x1 - x0 + cell)
    assert image["y"] == pytest.approx(y1 + cell / 2) and image["sizey"] == pytest.approx(y1 - y0 + cell)
    assert samples["layout"]["xaxis"]["range"] == [x0, x1]
    names = [t["name"] for t in samples["data"]]
    assert names.index("real data") < names.index("fake G(z)")
    np.testing.assert_allclose(samples["data"][1]["x"], snap.frame.real[:plots.REAL_SHOWN, 0], atol=5e-3)
    np.testing.assert_allclose(samples["data"][2]["x"], snap.frame.fake[:, 0], atol=5e-3)
    hist = plots.d_output_figure(snap).to_dict()
    for trace in hist["data"][:2]:  # histogram shares sum to 1 (the third trace: the equilibrium line)
        assert float(np.sum(trace["y"])) == pytest.approx(1.0, abs=1e-5)
    cov = plots.coverage_figure(snap).to_dict()
    assert cov["data"][0]["y"][-1] == snap.frame.modes_covered


def test_wgan_has_no_equilibrium_loss_lines(snapshots):
    fig = plots.loss_figure(get_snapshot(snapshots, "2d-wgan-gp")).to_dict()
    assert [t["name"] for t in fig["data"]] == ["D loss", "G loss"]


def test_digit_mosaic_tiles_the_fixed_noise_batch(snapshots):
    snap = get_snapshot(snapshots, "digits-trained")
    px = picture(plots.samples_figure(snap).to_dict())
    assert px.shape == (8 * 29 + 1, 8 * 29 + 1) and px.dtype == np.uint8
    tile = plots.tile(snap.frame.fake)
    np.testing.assert_allclose(tile[1:29, 1:29], (snap.frame.fake[0] + 1) / 2, atol=1e-6)


def test_digit_quality_plot_when_scores_exist(snapshots):
    snap = get_snapshot(snapshots, "digits-scored")
    fig = plots.coverage_figure(snap).to_dict()
    assert len(fig["data"]) == 2 and list(fig["data"][0]["x"]) == [1, 2, 3]
    np.testing.assert_allclose(fig["data"][1]["y"], [200.0, 190.0, 180.0])


@pytest.mark.parametrize("steps_b", [0, 3])
def test_compare_figure_is_valid_plotly_with_both_runs(steps_b):
    a, b = snapshot(tiny2d(), steps=3), snapshot(tiny2d(d_lr=1e-2), steps=steps_b)
    fig = plots.compare_figure(a, b, "A", "B (d_lr=0.01)")
    go.Figure(fig.to_dict())
    names = [t["name"] for t in fig.to_dict()["data"]]
    assert "D loss, A" in names and ("D loss, B (d_lr=0.01)" in names) == bool(steps_b)
    assert fig.layout["title"]["text"] and fig.layout["xaxis"]["title"]["text"] == "training step"


@pytest.mark.parametrize("name", ["loss_figure", "d_means_figure"])
def test_live_changes_are_marked_on_the_time_plots(name):
    config = tiny2d()
    tel = Telemetry()
    tel.set_status("running", config=config)
    steps = np.arange(1, 101, dtype=float)
    tel.record_steps(steps, steps, np.full((100, 7), 0.5), 1.0)
    tel.record_change(60, config, config.with_live(loss="wgan-gp"))
    fig = getattr(plots, name)(tel.snapshot()).to_dict()
    go.Figure(fig)  # valid plotly
    markers = [s for s in fig["layout"]["shapes"] if s.get("x0") == 60 and s["line"]["dash"] == "dot"]
    assert len(markers) == 1
    assert any(a["text"] == "loss → wgan-gp" and a["x"] == 60 for a in fig["layout"]["annotations"])


def test_one_loss_spike_does_not_flatten_the_loss_axis():
    rng = np.random.default_rng(0)
    d = 1.3 + 0.05 * rng.standard_normal(500)
    g = 0.8 + 0.05 * rng.standard_normal(500)
    d[250] = 80.0  # one exploding step
    y_range, clipped = plots._robust_range(d, g, include=(1.39, 0.69))
    assert clipped and y_range[1] < 3.0, "the spike is cut off, the curves keep the height"
    assert y_range[0] < 0.69 < 1.39 < y_range[1], "equilibrium values stay in view"
    d[250] = 1.3
    y_range, clipped = plots._robust_range(d, g)
    assert not clipped and y_range[0] <= g.min() and y_range[1] >= d.max(), "no spike: everything shown"
    assert plots._robust_range(np.array([np.nan])) == (None, False)


def test_spike_note_on_the_axis_title(snapshots):
    snap = get_snapshot(snapshots, "2d-trained")
    history = np.repeat(snap.history[:1], 200, axis=0)
    history[:, 0] = np.arange(1, 201)
    history[:, snap_column_index(snap, "d_loss")] = 1.3
    history[120, snap_column_index(snap, "d_loss")] = 1e4
    fig = plots.loss_figure(replace(snap, history=history)).to_dict()
    assert fig["layout"]["yaxis"]["title"]["text"] == "loss (spikes cut off)"
    assert fig["layout"]["yaxis"]["range"][1] < 100


def snap_column_index(snap, name):
    from gan_core.records import STAT_FIELDS
    return 2 + STAT_FIELDS.index(name)


def test_placeholders_say_what_each_plot_will_show():
    blank = plots.placeholders()
    assert set(blank) == {"samples", "d_hist", "losses", "d_means", "coverage"}
    for name, text in blank.items():
        fig = json.loads(text)
        go.Figure(fig)
        assert fig["layout"]["title"]["text"] and "Press Start" in fig["layout"]["annotations"][0]["text"]
        assert fig["layout"]["xaxis"]["title"]["text"] and fig["layout"]["yaxis"]["title"]["text"]
        assert fig["layout"]["xaxis"].get("visible", True) and fig["layout"]["yaxis"].get("visible", True)


@pytest.mark.parametrize("steps_b", [0, 3])
def test_compare_coverage_and_samples_for_both_runs(steps_b):
    a, b = snapshot(tiny2d(), steps=3), snapshot(tiny2d(d_lr=1e-2), steps=steps_b)
    for fig in (plots.compare_coverage_figure(a, b, "A", "B"), plots.samples_figure(b, label="B")):
        go.Figure(fig.to_dict())
    assert plots.samples_figure(b, label="B").layout["title"]["text"].startswith("B: ")


def picture(fig: dict) -> np.ndarray:
    """The pixels of a figure's one layout picture (a PNG data URL)."""
    (image,) = fig["layout"]["images"]
    head, data = image["source"].split(",", 1)
    assert head == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    return np.asarray(image.convert("RGBA") if image.mode == "P" else image)  # as the browser shows it


def test_surface_picture_colours_d_top_row_first():
    # rows = y upwards (as the engine's grid); the picture's first row is the top (largest y)
    z = np.array([[0.0, 0.5], [1.0, np.nan]])
    px = plots.surface_pixels(z, 0.0, 1.0)
    assert px.shape == (2, 2, 4) and px.dtype == np.uint8
    alpha = round(255 * plots.SURFACE_OPACITY)
    assert tuple(px[0, 0]) == (*plots.SURFACE_SCALE[-1][1], alpha)  # D = 1: "real", blue
    assert tuple(px[1, 0]) == (*plots.SURFACE_SCALE[0][1], alpha)  # D = 0: "fake", red
    assert tuple(px[1, 1]) == tuple(px[0, 1]) == (190, 190, 190, alpha)  # 0.5 and NaN: unsure grey
    # A score surface (hinge, WGAN) spans its own range.
    np.testing.assert_array_equal(plots.surface_pixels(z * 4 - 2, -2.0, 2.0), px)



# ------------------------------------------------------------------------------ one update, made visible

def around_one_update(network: str, steps: int = 30):
    """Telemetry as a paused run publishes it around one Step D only ("d") / Step G only ("g"),
    and the engine's frame before the update."""
    config = tiny2d(d_lr=1e-2)
    engine, tel = Engine(config), Telemetry()
    tel.set_status("paused", "", device="cpu", config=config)
    for _ in range(steps):
        engine.step()
    tel.record_steps(np.arange(1, steps + 1), np.zeros(steps), engine.drain_stats(), 0.0)
    before = engine.evaluate()
    tel.record_frame(before)
    (engine.d_update if network == "d" else engine.g_update)()
    tel.record_steps(np.array([steps + 1]), np.zeros(1), engine.drain_stats(), 0.0)
    tel.record_update(network)
    tel.record_frame(engine.evaluate())
    return tel.snapshot(), before


def traces_named(fig: dict, start: str) -> list[dict]:
    return [t for t in fig["data"] if t["name"].startswith(start)]


def test_after_step_d_only_the_samples_plot_shows_ds_boundary_before_and_now():
    snap, before = around_one_update("d")
    assert snap.previous_frame is before and snap.frame.step == before.step + 1
    assert np.abs(snap.frame.surface - before.surface).max() > 0, "D moved"
    fig = plots.samples_figure(snap).to_dict()
    go.Figure(fig)
    (old,) = traces_named(fig, "D=0.5 before")
    (new,) = traces_named(fig, "D=0.5 now")
    assert old["line"]["dash"] == "dash" and new["line"]["dash"] == "solid"
    assert f"step {before.step}" in old["hovertemplate"] and f"step {snap.frame.step}" in new["hovertemplate"]
    # Each line is where its own surface crosses 0.5, so the picture changes where D changed.
    for trace, frame in ((old, before), (new, snap.frame)):
        x, y = level_lines(frame.surface, 0.5, frame.surface_extent)
        np.testing.assert_allclose(trace["x"], x, atol=1e-3)
        np.testing.assert_allclose(trace["y"], y, atol=1e-3)
    assert len(old["x"]) != len(new["x"]) or not np.allclose(old["x"], new["x"], equal_nan=True)
    assert not traces_named(fig, "fakes' moves"), "G did not move: no trails"


def test_after_step_g_only_the_fakes_trail_from_their_old_to_their_new_positions():
    snap, before = around_one_update("g")
    fig = plots.samples_figure(snap).to_dict()
    go.Figure(fig)
    (trail,) = traces_named(fig, "fakes' moves")
    xy = np.column_stack([trail["x"], trail["y"]]).reshape(-1, 3, 2)  # (old, new, gap) per fake
    n = len(xy)
    assert n == min(plots.ARROWS, len(before.fake))
    np.testing.assert_allclose(xy[:, 0], before.fake[:n], atol=1e-3)
    np.testing.assert_allclose(xy[:, 1], snap.frame.fake[:n], atol=1e-3)
    assert np.isnan(xy[:, 2]).all()
    assert np.abs(xy[:, 1] - xy[:, 0]).max() > 1e-3, "G moved its fakes"
    assert not traces_named(fig, "D=0.5"), "D did not move: no boundary lines"


def test_with_an_ema_of_g_the_trails_follow_the_raw_g_that_the_update_moved():
    config = tiny2d(ema_decay=0.999)
    engine, tel = Engine(config), Telemetry()
    tel.set_status("paused", "", device="cpu", config=config)
    before = engine.evaluate()
    tel.record_frame(before)
    engine.g_update()
    tel.record_update("g")
    after = engine.evaluate()
    tel.record_frame(after)
    (trail,) = traces_named(plots.samples_figure(tel.snapshot()).to_dict(), "raw G's moves")
    xy = np.column_stack([trail["x"], trail["y"]]).reshape(-1, 3, 2)
    np.testing.assert_allclose(xy[:, 0], before.fake_raw[:len(xy)], atol=1e-3)
    np.testing.assert_allclose(xy[:, 1], after.fake_raw[:len(xy)], atol=1e-3)


def test_a_single_step_shows_both_changes_and_a_run_at_full_speed_neither():
    config = tiny2d()
    engine, tel = Engine(config), Telemetry()
    tel.set_status("running", "", device="cpu", config=config)
    for n in (20, 1, 40):  # frames at steps 20, 21 (one step later), 61 (many steps later)
        for _ in range(n):
            engine.step()
        tel.record_steps(np.arange(engine.step_count - n + 1, engine.step_count + 1), np.zeros(n),
                         engine.drain_stats(), 0.0)
        tel.record_frame(engine.evaluate())
        names = [t["name"] for t in plots.samples_figure(tel.snapshot()).to_dict()["data"]]
        one_step = n == 1
        assert any(name.startswith("D=0.5") for name in names) == one_step
        assert any(name.startswith("fakes' moves") for name in names) == one_step


@pytest.mark.parametrize("palette", [None, "rgb", "rgba"])
def test_png_bytes_decode_to_the_same_pixels(palette):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 7, (5, 9)).astype(np.uint8)
    colours = rng.integers(0, 256, (7, 4)).astype(np.uint8)
    table = None if palette is None else colours[:, :3] if palette == "rgb" else colours
    image = Image.open(io.BytesIO(png_bytes(pixels, table)))
    image.load()  # checks every chunk's CRC and the compressed data
    if palette is None:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), pixels)
    else:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), pixels)
        shown = np.asarray(image.convert("RGBA"))
        np.testing.assert_array_equal(shown[..., :3], colours[pixels, :3])
        np.testing.assert_array_equal(shown[..., 3], colours[pixels, 3] if palette == "rgba" else 255)
    with pytest.raises(ValueError):
        png_bytes(pixels.astype(np.float32))


def test_points_are_sent_as_rounded_contiguous_rows_without_touching_the_frame():
    points = np.asfortranarray(np.array([[0.123456, -1.987654], [2.5, 3.14159]], dtype=np.float32))
    before = points.copy()
    xy = plots._xy(points, 2)
    np.testing.assert_array_equal(points, before)  # the snapshot's arrays are shared: never rounded in place
    assert all(xy[k].flags.c_contiguous and xy[k].dtype == np.float32 for k in "xy")
    np.testing.assert_allclose(xy["x"], [0.12, 2.5])
    np.testing.assert_allclose(xy["y"], [-1.99, 3.14])
    seg = plots._segments(points, points + 1)
    np.testing.assert_allclose(seg["x"], [0.123, 1.123, np.nan, 2.5, 3.5, np.nan])
    np.testing.assert_allclose(seg["y"], [-1.988, -0.988, np.nan, 3.142, 4.142, np.nan])
