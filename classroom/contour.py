"""Level lines of a grid of values (marching squares), as plotly-ready polylines.

`level_lines(z, level, extent)` traces where `z` crosses `level` — e.g. D's decision boundary
D = 0.5 on its 48 × 48 surface — with linear interpolation along the cells' edges (Lorensen &
Cline, 1987, in two dimensions). Ambiguous cells (two opposite corners above the level) are
split by the mean of their four corners, as matplotlib's and scikit-image's tracers do. Cell
segments are chained into polylines, so a dashed line keeps its dash pattern along the curve.
Not here: drawing (`plots.py`).
"""

from __future__ import annotations

import numpy as np

# Corners of a cell: bit 1 bottom-left, 2 bottom-right, 4 top-right, 8 top-left (set: above the
# level). Edges: 0 bottom, 1 right, 2 top, 3 left. Each case lists the edges its segments join;
# the two saddles (5, 10) are resolved in `_cell_edges`.
_SEGMENTS = {1: ((3, 0),), 2: ((0, 1),), 3: ((3, 1),), 4: ((1, 2),), 6: ((0, 2),), 7: ((3, 2),),
             8: ((2, 3),), 9: ((0, 2),), 11: ((1, 2),), 12: ((1, 3),), 13: ((0, 1),), 14: ((3, 0),)}
_AROUND_BL_TR = ((3, 0), (1, 2))  # segments cutting off the bottom-left and top-right corners
_AROUND_BR_TL = ((0, 1), (2, 3))


def _cell_edges(case: int, centre_above: bool) -> tuple[tuple[int, int], ...]:
    if case == 5:  # bottom-left and top-right above: joined through the centre if it is above too
        return _AROUND_BR_TL if centre_above else _AROUND_BL_TR
    if case == 10:
        return _AROUND_BL_TR if centre_above else _AROUND_BR_TL
    return _SEGMENTS.get(case, ())


def level_lines(z: np.ndarray, level: float,
                extent: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the polylines where `z` (rows = y upwards, columns = x, sampled evenly over
    extent = (x0, x1, y0, y1)) crosses `level`, the lines separated by NaN; empty if none.
    Cells with a NaN corner are skipped."""
    z = np.asarray(z, dtype=np.float64)
    rows, cols = z.shape
    x0, x1, y0, y1 = extent
    xs, ys = np.linspace(x0, x1, cols), np.linspace(y0, y1, rows)
    above = z > level
    corners = (above[:-1, :-1] * 1 + above[:-1, 1:] * 2 + above[1:, 1:] * 4 + above[1:, :-1] * 8)
    finite = np.isfinite(z)
    usable = finite[:-1, :-1] & finite[:-1, 1:] & finite[1:, 1:] & finite[1:, :-1]

    def crossing(a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
        """Where the level crosses the grid edge from node a to node b (row, col)."""
        za, zb = z[a], z[b]
        t = 0.5 if zb == za else (level - za) / (zb - za)
        return xs[a[1]] + t * (xs[b[1]] - xs[a[1]]), ys[a[0]] + t * (ys[b[0]] - ys[a[0]])

    # A point on a grid edge is named by its edge, so two cells sharing it meet at one key.
    links: dict[tuple, list[tuple]] = {}
    points: dict[tuple, tuple[float, float]] = {}
    for i, j in zip(*np.nonzero(usable & (corners > 0) & (corners < 15))):
        case = int(corners[i, j])
        centre_above = z[i:i + 2, j:j + 2].mean() > level
        keys = {0: ("h", i, j), 1: ("v", i, j + 1), 2: ("h", i + 1, j), 3: ("v", i, j)}
        for a, b in _cell_edges(case, centre_above):
            ka, kb = keys[a], keys[b]
            for key in (ka, kb):
                if key not in points:
                    kind, r, c = key
                    points[key] = crossing((r, c), (r, c + 1) if kind == "h" else (r + 1, c))
            links.setdefault(ka, []).append(kb)
            links.setdefault(kb, []).append(ka)
    return _chain(links, points)


def _chain(links: dict[tuple, list[tuple]], points: dict[tuple, tuple[float, float]]):
    """Walk the segment graph (every point has one or two neighbours) into polylines: open
    lines from their ends first, then the closed loops that remain."""
    seen: set[frozenset] = set()
    path: list[tuple[float, float]] = []
    starts = [k for k, n in links.items() if len(n) == 1] + list(links)
    for start in starts:
        for first in links[start]:
            if frozenset((start, first)) in seen:
                continue
            line, here, step = [start], start, first
            while step is not None:
                seen.add(frozenset((here, step)))
                line.append(step)
                here, step = step, next((n for n in links[step] if frozenset((step, n)) not in seen), None)
            path += [points[k] for k in line] + [(np.nan, np.nan)]
    if not path:
        return np.zeros(0), np.zeros(0)
    xy = np.array(path[:-1])
    return xy[:, 0], xy[:, 1]
