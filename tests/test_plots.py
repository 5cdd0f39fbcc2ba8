"""Tests for gan_core/plots.py: every figure is valid plotly (checked by plotly
itself), titled and labelled, for empty and trained snapshots, 2-D and digits."""

from __future__ import annotations

import inspect
import json

import numpy as np
import plotly.graph_objects as go
import pytest

from classroom import plots
from gan_core.config import TrainConfig
from gan_core.data import DIGITS_FILE
from gan_core.engine import Engine
from gan_core.telemetry import Telemetry

FIGURES = {name: fn for name, fn in inspect.getmembers(plots, inspect.isfunction)
           if name.endswith("_figure") and fn.__module__ == plots.__name__ and name != "compare_figure"}


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
        assert validated.data[0].type == "heatmap"
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
    assert [t["name"] for t in loss["data"]] == ["D loss", "G loss"]
    np.testing.assert_allclose(loss["data"][0]["y"], snap.column("d_loss"), atol=1e-4)
    np.testing.assert_array_equal(loss["data"][0]["x"], [1, 2, 3])
    assert len(loss["layout"]["shapes"]) == 2  # equilibrium lines for the BCE losses
    samples = plots.samples_figure(snap).to_dict()
    kinds = [t["type"] for t in samples["data"]]
    assert kinds[0] == "heatmap" and kinds.count("scattergl") == 2
    np.testing.assert_allclose(samples["data"][1]["x"], snap.frame.real[:, 0], atol=1e-3)
    hist = plots.d_output_figure(snap).to_dict()
    for trace in hist["data"]:  # histogram shares sum to 1
        assert float(np.sum(trace["y"])) == pytest.approx(1.0, abs=1e-5)
    cov = plots.coverage_figure(snap).to_dict()
    assert cov["data"][0]["y"][-1] == snap.frame.modes_covered


def test_wgan_has_no_equilibrium_loss_lines(snapshots):
    fig = plots.loss_figure(get_snapshot(snapshots, "2d-wgan-gp")).to_dict()
    assert fig["layout"]["shapes"] == []


def test_digit_mosaic_tiles_the_fixed_noise_batch(snapshots):
    snap = get_snapshot(snapshots, "digits-trained")
    z = np.asarray(plots.samples_figure(snap).to_dict()["data"][0]["z"])
    assert z.shape == (8 * 29 + 1, 8 * 29 + 1) and z.min() >= 0 and z.max() <= 1
    tile = plots._tile(snap.frame.fake)
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
