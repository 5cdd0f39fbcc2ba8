"""Tests for classroom/contour.py: level lines against shapes whose level sets are known
exactly (a circle, a straight line), saddles, gaps and grids without a crossing."""

from __future__ import annotations

import numpy as np
import pytest

from classroom.contour import level_lines

EXTENT = (-1.0, 1.0, -1.0, 1.0)
TICKS = np.linspace(-1.0, 1.0, 48)
X, Y = np.meshgrid(TICKS, TICKS)  # rows = y upwards, as D's surface


def polylines(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    breaks = np.flatnonzero(np.isnan(x))
    return [np.column_stack(p) for p in zip(np.split(x, breaks), np.split(y, breaks))]


def test_a_circle_is_one_closed_line_on_the_circle():
    x, y = level_lines(np.hypot(X - 0.1, Y), 0.5, EXTENT)
    (line,) = polylines(x, y)
    np.testing.assert_allclose(np.hypot(line[:, 0] - 0.1, line[:, 1]), 0.5, atol=2e-3)
    np.testing.assert_array_equal(line[0], line[-1])  # closed
    angles = np.sort(np.arctan2(line[:, 1], line[:, 0] - 0.1))
    assert np.diff(angles).max() < 0.2, "it goes all the way round"


def test_a_linear_ramp_gives_one_straight_line_across_the_grid():
    x, y = level_lines(X, 0.3, EXTENT)
    (line,) = polylines(x, y)
    np.testing.assert_allclose(line[:, 0], 0.3, atol=1e-12)
    assert sorted((line[0, 1], line[-1, 1])) == pytest.approx([-1.0, 1.0])  # border to border


def test_levels_between_the_nodes_are_interpolated_linearly():
    z = np.array([[0.0, 1.0], [0.0, 1.0]])
    x, y = level_lines(z, 0.25, (0.0, 4.0, 0.0, 1.0))
    np.testing.assert_allclose(x, [1.0, 1.0])


@pytest.mark.parametrize("level, cut_off", [(0.4, ((0.6, 0.0), (1.0, 0.4))), (0.6, ((0.4, 0.0), (0.0, 0.4)))])
def test_a_saddle_is_split_by_the_mean_of_its_corners(level, cut_off):
    # Bottom-left and top-right corners 1, the others 0: the mean 0.5 decides. Below the level
    # 0.4 the high corners join through the centre, so the lines cut off the low bottom-right
    # corner; above it (0.6) they cut off the high bottom-left corner.
    z = np.array([[1.0, 0.0], [0.0, 1.0]])
    x, y = level_lines(z, level, (0.0, 1.0, 0.0, 1.0))
    segments = {tuple(map(tuple, np.round(p, 9))) for p in polylines(x, y)}
    assert len(segments) == 2
    assert any(set(s) == set(cut_off) for s in segments)


def test_no_crossing_and_nan_cells_give_nothing():
    assert [len(a) for a in level_lines(np.ones((5, 5)), 0.5, EXTENT)] == [0, 0]
    z = np.hypot(X, Y)
    z[:24] = np.nan  # the lower half unknown: only the upper half circle is traced
    x, y = level_lines(z, 0.5, EXTENT)
    assert len(x) and np.nanmin(y) > 0
