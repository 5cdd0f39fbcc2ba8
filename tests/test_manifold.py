"""Tests for G's manifold view: the (z₁, z₂) noise grid (`evaluation.manifold_noise`), its image
in `Engine.evaluate()` (`EvalFrame.manifold`) and the warped grid lines in the samples plot."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from classroom import plots
from gan_core.config import TrainConfig
from gan_core.engine import Engine
from gan_core.evaluation import MANIFOLD_RES, MANIFOLD_SPAN, manifold_noise
from gan_core.telemetry import Telemetry


def tiny(**overrides) -> TrainConfig:
    base = dict(dataset="ring8", width=8, depth=2, batch_size=16, z_dim=3, seed=0, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)


def test_noise_grid_is_a_flat_square_slice_through_z1_z2():
    z = manifold_noise(4, res=5, span=2.0)
    assert z.shape == (25, 4)
    grid = z.reshape(5, 5, 4)
    ticks = torch.linspace(-2, 2, 5)
    for i in range(5):
        torch.testing.assert_close(grid[i, :, 0], ticks)  # u along a row
        torch.testing.assert_close(grid[:, i, 1], ticks)  # v down a column
    assert torch.count_nonzero(grid[..., 2:]) == 0, "the other noise coordinates stay 0"


def test_noise_grid_with_one_noise_dimension_is_a_line():
    z = manifold_noise(1, res=7)
    assert z.shape == (7, 1)
    torch.testing.assert_close(z[:, 0], torch.linspace(-MANIFOLD_SPAN, MANIFOLD_SPAN, 7))


@pytest.mark.parametrize("z_dim", [1, 2, 8])
def test_evaluate_maps_the_grid_through_g_in_data_units(z_dim):
    engine = Engine(tiny(z_dim=z_dim, dataset="ring8_wide"))
    for _ in range(3):
        engine.step()
    frame = engine.evaluate()
    rows = 1 if z_dim == 1 else MANIFOLD_RES
    assert frame.manifold.shape == (rows, MANIFOLD_RES, 2)
    assert not frame.manifold.flags.writeable
    with torch.no_grad():  # the reference: the shown G (its EMA when kept) on each grid point, in data units
        expected = engine.shown_generator(manifold_noise(z_dim)).numpy() * engine.data.scale
    np.testing.assert_allclose(frame.manifold.reshape(-1, 2), expected, rtol=1e-5, atol=1e-6)
    engine.step()
    assert not np.allclose(engine.evaluate().manifold, frame.manifold), "the view follows G as it trains"


def test_digit_frames_have_no_manifold():
    pytest.importorskip("gan_core.classifier")
    from gan_core.data import DIGITS_FILE

    if not DIGITS_FILE.exists():
        pytest.skip("bundled digits not built")
    engine = Engine(TrainConfig(dataset="digits", width=4, batch_size=8, z_dim=8, device="cpu"))
    assert engine.evaluate().manifold is None


def test_samples_plot_draws_the_warped_grid_lines():
    config = tiny()
    engine = Engine(config)
    engine.step()
    tel = Telemetry()
    tel.set_status("running", "", device="cpu", config=config)
    frame = engine.evaluate()
    tel.record_frame(frame)
    fig = plots.samples_figure(tel.snapshot())
    go.Figure(fig.to_dict())  # valid plotly
    (trace,) = [t for t in fig.data if t["name"].startswith("G's manifold")]
    x, y = np.asarray(trace["x"], float), np.asarray(trace["y"], float)
    n = MANIFOLD_RES
    # 2·n polylines (n rows, n columns) of n points, each followed by a NaN gap.
    assert len(x) == 2 * n * (n + 1) and np.isnan(x).sum() == 2 * n
    lines = x.reshape(2 * n, n + 1)[:, :n]
    np.testing.assert_allclose(lines[:n], frame.manifold[..., 0], atol=1e-3)  # rows: u varies
    np.testing.assert_allclose(lines[n:], frame.manifold[..., 0].T, atol=1e-3)  # columns: v varies
    np.testing.assert_allclose(y.reshape(2 * n, n + 1)[:n, :n], frame.manifold[..., 1], atol=1e-3)


def test_no_manifold_no_trace():
    class Frame:
        manifold = None

    assert plots._manifold_traces(Frame()) == []
