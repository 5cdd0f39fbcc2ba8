"""Tests for gan_core/strokes.py: points sampled from a drawing (empty, tiny, huge and
one-pixel canvases, RGBA alpha, orientation, density) and their CSV round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.data import CSV_MAX_ROWS, CSV_MIN_ROWS, DataError, parse_points_csv
from gan_core.strokes import MAX_CANVAS_PIXELS, MIN_PAINTED_PIXELS, points_csv, points_from_strokes


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_empty_canvas_is_a_clear_message():
    with pytest.raises(DataError, match="canvas is empty"):
        points_from_strokes(np.zeros((200, 300)), 500, rng())
    with pytest.raises(DataError, match="canvas is empty"):  # transparent RGBA: colour without alpha is no ink
        rgba = np.zeros((50, 50, 4), np.uint8)
        rgba[..., :3] = 255
        points_from_strokes(rgba, 500, rng())


def test_one_pixel_canvas_and_a_dot_are_too_small():
    with pytest.raises(DataError, match="canvas is empty"):
        points_from_strokes(np.zeros((1, 1)), 100, rng())
    with pytest.raises(DataError, match=r"Only 1 pixel\(s\) are painted"):
        points_from_strokes(np.ones((1, 1)), 100, rng())
    dot = np.zeros((100, 100))
    dot[50, 50:50 + MIN_PAINTED_PIXELS - 1] = 1
    with pytest.raises(DataError, match="draw a larger shape"):
        points_from_strokes(dot, 100, rng())


def test_tiny_canvas_fully_painted_gives_a_standardised_square():
    side = int(np.ceil(np.sqrt(MIN_PAINTED_PIXELS)))
    pts = points_from_strokes(np.ones((side, side), bool), 2000, rng())
    assert pts.shape == (2000, 2) and pts.dtype == np.float32
    np.testing.assert_allclose(pts.mean(0), 0, atol=1e-5)
    assert np.abs(pts).max() == pytest.approx(2.0)
    # Uniform over the square: each quarter holds about a quarter of the points.
    quarter = ((pts[:, 0] > 0) & (pts[:, 1] > 0)).mean()
    assert 0.2 < quarter < 0.3


def test_huge_canvas_works_and_too_huge_is_refused():
    big = np.zeros((3000, 3000), np.uint8)
    big[1000:2000, 100:200] = 255
    pts = points_from_strokes(big, CSV_MAX_ROWS, rng())
    assert pts.shape == (CSV_MAX_ROWS, 2)
    with pytest.raises(DataError, match="limit is"):
        points_from_strokes(np.zeros((4097, 4096), bool), 100, rng())
    assert 4097 * 4096 > MAX_CANVAS_PIXELS


@pytest.mark.parametrize("n", [0, CSV_MIN_ROWS - 1, CSV_MAX_ROWS + 1, 2.5, True, "100"])
def test_bad_point_counts_are_refused(n):
    with pytest.raises(DataError, match="n_points"):
        points_from_strokes(np.ones((10, 10)), n, rng())


@pytest.mark.parametrize("canvas", [np.ones((4, 4, 3)), np.ones(16), np.array([["a"] * 5] * 5)])
def test_bad_arrays_are_refused(canvas):
    with pytest.raises(DataError, match="canvas must be"):
        points_from_strokes(canvas, 100, rng())


def test_rgba_alpha_is_the_ink_and_the_drawing_stays_upright():
    # A "T": a wide bar at the top of the image, a narrow stem below it.
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[10:20, 10:90, 3] = 255
    rgba[20:90, 45:55, 3] = 200
    rgba[95:, :, :3] = 255  # colour without alpha: not ink
    pts = points_from_strokes(rgba, 4000, rng())
    top = pts[pts[:, 1] > np.quantile(pts[:, 1], 0.9)]
    bottom = pts[pts[:, 1] < np.quantile(pts[:, 1], 0.1)]
    assert np.ptp(top[:, 0]) > 4 * np.ptp(bottom[:, 0]), "the wide bar is at the top (largest y)"
    # Density follows painted area: bar 800 px, stem 700 px.
    in_bar = (pts[:, 1] > np.quantile(pts[:, 1], 0.0) + (pts[:, 1].max() - pts[:, 1].min()) * 70 / 80).mean()
    assert 0.45 < in_bar < 0.62


def test_same_generator_seed_same_points():
    mask = np.zeros((64, 64))
    mask[20:40, 5:60] = 1
    np.testing.assert_array_equal(points_from_strokes(mask, 300, rng(3)), points_from_strokes(mask, 300, rng(3)))


def test_points_round_trip_through_the_csv_upload_parser():
    mask = np.zeros((80, 120))
    mask[30:50, 10:110] = 1
    pts = points_from_strokes(mask, 1000, rng())
    parsed = parse_points_csv(points_csv(pts))
    assert isinstance(parsed, torch.Tensor) and parsed.shape == (1000, 2)
    np.testing.assert_allclose(parsed.numpy(), pts, atol=1e-3)
