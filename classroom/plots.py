"""Plotly figures drawn from telemetry snapshots (no Gradio here).

Figures are built as plain plotly JSON dicts and wrapped in `Figure`, which
serialises with orjson: constructing validated `plotly.graph_objects` figures
costs 50–100 ms each, too slow for several live updates a second (tests
validate the dicts with plotly instead). Every figure has a short title, labelled
axes and a legend, with fonts sized for a projector; `uirevision` keeps a
student's zoom across live updates.

Readable at 1280×720 (a projector, two plots side by side ≈ 440 px each): titles
are short enough for that width, legends sit at the bottom of the figure where
plotly grows the margin when they wrap (never over the title or the data), and
reference lines are legend entries rather than labels that can land on a curve.

Grids of values (D's decision surface, the digit mosaic) are pictures under the plot
(`layout.images`, a PNG made here), not heatmap traces: plotly redraws a heatmap by
encoding a new PNG in the browser on every update, and Chromium's renderer kept
growing by ~35 MB per 250 updates while a layout picture stayed flat
(`python -m benchmarks browser`, BENCHMARKS.md).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import orjson

from gan_core.data import DIGIT_DATASETS
from gan_core.losses import get_loss
from gan_core.telemetry import Snapshot

from .contour import level_lines
from .png import png_bytes, png_data_url

REAL_COLOR = "#1f77b4"  # blue: real data
REAL_EDGE = "#08306b"  # navy rings: real points drawn over the fakes stay visible
FAKE_COLOR = "#ff7f0e"  # orange: generator
D_COLOR = "#d62728"
G_COLOR = "#2ca02c"
TRAIL_COLOR = G_COLOR  # G's colour (its loss curve): the fakes moved because G did
# D's opinion of each place: plotly's "RdBu" reversed, red = "fake", grey = unsure, blue = "real"
# (the real points' colour). Used for the picture and its colour bar alike.
SURFACE_SCALE = [[0.0, (178, 10, 28)], [0.3, (230, 145, 90)], [0.4, (220, 170, 132)], [0.5, (190, 190, 190)],
                 [0.65, (106, 137, 247)], [1.0, (5, 10, 172)]]
SURFACE_OPACITY = 0.5
MAX_POINTS = 600  # points per line drawn (more than the ~400 px of a plot's width)
REAL_SHOWN = 300  # real points drawn: the data's shape (a fixed batch: more would add bytes, not news)
ARROWS = 150  # fakes that carry a "G's push" arrow


class Figure:
    """A plotly figure as a dict; `to_json()` is what a live plot receives."""

    def __init__(self, title: str, x: str, y: str, height: int = 340) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = dict(
            title=dict(text=title, x=0.01, xanchor="left", xref="container", y=1, yanchor="top",
                       yref="container", pad=dict(t=8), font=dict(size=18)),
            xaxis=dict(title=dict(text=x), automargin=True),
            yaxis=dict(title=dict(text=y), automargin=True),
            font=dict(size=15),
            height=height,
            margin=dict(l=64, r=24, t=44, b=8),
            # At the bottom of the figure, under the x-axis title: plotly grows the bottom
            # margin as the legend wraps, so it never covers the title or the data.
            legend=dict(orientation="h", xref="container", x=0.01, xanchor="left", yref="container", y=0,
                        yanchor="bottom", font=dict(size=14)),
            template=dict(layout=dict(plot_bgcolor="white", paper_bgcolor="white",
                                      xaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#cccccc"),
                                      yaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#cccccc"))),
            uirevision=title,
            annotations=[],
        )

    def add(self, **trace: Any) -> "Figure":
        self.data.append(trace)
        return self

    def reference(self, *, label: str, color: str = "black", x=None, y=None, width: float = 1.5) -> "Figure":
        """A dashed reference line (e.g. an equilibrium value) drawn as a legend entry: its
        label is in the legend, so it can never sit on top of a curve."""
        return self.add(type="scatter", mode="lines", x=list(x), y=list(y), name=label, hoverinfo="skip",
                        line=dict(color=color, dash="dash", width=width))

    def message(self, text: str) -> "Figure":
        self.layout["annotations"].append(dict(text=text, showarrow=False, xref="paper", yref="paper",
                                               x=0.5, y=0.5, font=dict(size=16, color="#888888")))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout}

    def to_bytes(self) -> bytes:
        """The figure as JSON bytes (orjson; numpy arrays as lists)."""
        return orjson.dumps(self.to_dict(), default=_to_list, option=orjson.OPT_SERIALIZE_NUMPY)

    def to_json(self) -> str:
        return self.to_bytes().decode()


def _to_list(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # non-contiguous or unusual dtype
        return obj.tolist()
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def _thin(x: np.ndarray, *ys: np.ndarray):
    """Keep at most MAX_POINTS evenly spaced rows (the history is already averaged)."""
    if len(x) <= MAX_POINTS:
        return (x, *ys)
    idx = np.linspace(0, len(x) - 1, MAX_POINTS).astype(int)
    return (x[idx], *(y[idx] for y in ys))


def finite(a: np.ndarray, nan: float = 0.0) -> np.ndarray:
    """`np.nan_to_num(a, nan=nan)`, returning `a` itself when every value is finite already (one
    check: ~5 µs against nan_to_num's ~90 µs, four times per poll)."""
    return a if np.isfinite(a).all() else np.nan_to_num(a, nan=nan)


def _f32(a: np.ndarray, decimals: int | None = None) -> np.ndarray:
    """Contiguous float32; rounding shortens the JSON sent to every browser ~2×."""
    a = np.asarray(a, dtype=np.float32)
    if decimals is not None:
        a = np.round(a, decimals)
    return np.ascontiguousarray(a)


def _xy(points: np.ndarray, decimals: int) -> dict[str, np.ndarray]:
    """{"x": …, "y": …} of (n, 2) `points`: contiguous float32 rows, rounded, in two array
    operations (a poll builds several of these per frame; each numpy call costs ~5–10 µs of
    the server's CPU with a cold cache, between two polls)."""
    xy = np.array(np.asarray(points).T, dtype=np.float32, order="C")  # a copy: rounded in place
    np.round(xy, decimals, out=xy)
    return dict(x=xy[0], y=xy[1])


def _segments(starts: np.ndarray, ends: np.ndarray, decimals: int = 3) -> dict[str, np.ndarray]:
    """{"x": …, "y": …} of line segments from (n, 2) `starts` to `ends`, one trace: x0, x1, NaN, …"""
    xy = np.empty((2, len(starts), 3), dtype=np.float32)
    xy[:, :, 0], xy[:, :, 1], xy[:, :, 2] = starts.T, ends.T, np.nan
    np.round(xy, decimals, out=xy)
    return dict(x=xy[0].ravel(), y=xy[1].ravel())


def _png_uri(pixels: np.ndarray, palette: np.ndarray | None = None) -> str:
    """A uint8 (rows, cols) array as a PNG data URL: grey levels, or indices into `palette`
    ((n, 4) RGBA rows); row 0 is the top of the picture."""
    return png_data_url(png_bytes(pixels, palette))


# SURFACE_SCALE in 255 colours (an odd count: D = 0.5, "unsure", has its own), half transparent.
SURFACE_LEVELS = 255
SURFACE_PALETTE = np.column_stack(
    [np.interp(np.linspace(0.0, 1.0, SURFACE_LEVELS), [pos for pos, _ in SURFACE_SCALE], [c[k] for _, c in SURFACE_SCALE])
     for k in range(3)] + [np.full(SURFACE_LEVELS, 255 * SURFACE_OPACITY)]).round().astype(np.uint8)


def surface_range(z: np.ndarray, probability: bool) -> tuple[float, float]:
    """The values D's surface is coloured between: 0 to 1 for a probability, else the finite
    scores' range (0 to 1 when there is none)."""
    if probability:
        return 0.0, 1.0
    shown = z[np.isfinite(z)]
    return (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)


def surface_levels(z: np.ndarray, zmin: float, zmax: float) -> np.ndarray:
    """z (rows = y upwards) as indices into SURFACE_PALETTE, top row first (NaN: the middle)."""
    z = np.clip(finite(z, nan=(zmin + zmax) / 2), zmin, zmax)
    t = (z - zmin) * ((SURFACE_LEVELS - 1) / max(zmax - zmin, 1e-12))
    return np.ascontiguousarray(np.rint(t).astype(np.uint8)[::-1])


def surface_pixels(z: np.ndarray, zmin: float, zmax: float) -> np.ndarray:
    """z (rows = y upwards) coloured by SURFACE_SCALE, half transparent, top row first (RGBA)."""
    return SURFACE_PALETTE[surface_levels(z, zmin, zmax)]


def _picture(fig: "Figure", pixels: np.ndarray, extent: tuple[float, float, float, float],
             palette: np.ndarray | None = None) -> None:
    """Lay `pixels` under the plot, stretched over extent = (x0, x1, y0, y1) in data units."""
    x0, x1, y0, y1 = extent
    fig.layout["images"] = [dict(source=_png_uri(pixels, palette), xref="x", yref="y", x=x0, y=y1, sizex=x1 - x0,
                                 sizey=y1 - y0, sizing="stretch", layer="below", xanchor="left", yanchor="top")]


def _series(x: np.ndarray) -> np.ndarray:
    return _f32(x, 4)


MAX_MARKERS = 12  # live-change markers drawn per plot (the latest), so labels stay readable
CHANGE_COLOR = "#555555"


def _change_markers(fig: Figure, snap: Snapshot) -> Figure:
    """Dotted vertical lines with short labels where live settings changed (telemetry events),
    so a curve's jump, or a relabelled axis after a loss switch, shows where the rules changed."""
    events = getattr(snap, "events", ())[-MAX_MARKERS:]
    for i, (step, text) in enumerate(events):
        fig.layout.setdefault("shapes", []).append(dict(type="line", yref="paper", y0=0, y1=1, xref="x", x0=step, x1=step,
                                         line=dict(color=CHANGE_COLOR, dash="dot", width=1.5)))
        fig.layout["annotations"].append(dict(  # staggered heights: neighbouring labels do not overlap
            xref="x", x=step, xanchor="left", yref="paper", y=0.98 - 0.09 * (i % 3), yanchor="top",
            text=text, showarrow=False, bgcolor="rgba(255,255,255,0.8)",
            font=dict(size=12, color=CHANGE_COLOR)))
    return fig


def _robust_range(*series: np.ndarray, include: tuple[float, ...] = (), pad: float = 0.06):
    """(y range, clipped?) that one spike cannot flatten: the values' range, but cut at
    fences one 1st–99th-percentile spread beyond those percentiles (Tukey's fences on a
    wide spread); `include` (reference values) is always in range."""
    values = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in series] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None, False
    p1, p99 = np.percentile(values, [1, 99])
    spread = p99 - p1
    lo, hi = max(values.min(), p1 - spread), min(values.max(), p99 + spread)
    clipped = bool(values.min() < lo or values.max() > hi)
    lo, hi = min([lo, *include]), max([hi, *include])
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    return [float(lo - pad * span), float(hi + pad * span)], clipped


def _fit_y(fig: Figure, *series: np.ndarray, include: tuple[float, ...] = ()) -> None:
    y_range, clipped = _robust_range(*series, include=include)
    if y_range is not None:
        fig.layout["yaxis"]["range"] = y_range
    if clipped:
        fig.layout["yaxis"]["title"]["text"] += " (spikes cut off)"


def loss_figure(snap: Snapshot) -> Figure:
    """D and G loss over steps, with their values at the Nash equilibrium dashed."""
    fig = Figure("D and G losses", "training step", "loss")
    if len(snap.history) == 0:
        return fig.message("Press Start to train")
    step, d, g = _thin(snap.column("step"), snap.column("d_loss"), snap.column("g_loss"))
    steps = step.astype(np.int64)
    fig.add(type="scatter", x=steps, y=_series(d), name="D loss", line=dict(color=D_COLOR, width=2))
    fig.add(type="scatter", x=steps, y=_series(g), name="G loss", line=dict(color=G_COLOR, width=2))
    loss = get_loss(snap.config.loss)
    ends = (int(steps[0]), int(steps[-1]))
    eq = ()
    if loss.d_loss_equilibrium is not None:
        eq = (loss.d_loss_equilibrium, loss.g_loss_equilibrium)
        fig.reference(label="D at equilibrium", color=D_COLOR, x=ends, y=(eq[0], eq[0]))
        fig.reference(label="G at equilibrium", color=G_COLOR, x=ends, y=(eq[1], eq[1]))
    _fit_y(fig, d, g, include=eq)
    return _change_markers(fig, snap)


def d_output_figure(snap: Snapshot) -> Figure:
    """Histograms of D on real and fake samples, with the equilibrium line."""
    loss = get_loss(snap.config.loss)
    fig = Figure("What D thinks of real and fake",
                 "D(·) = P(real)" if loss.is_probability else "D(·) (raw score)", "share of samples",
                 height=500)  # beside the samples plot: the same height
    frame = snap.frame
    if frame is None:
        return fig.message("No samples yet")
    real, fake = frame.d_real_values, frame.d_fake_values
    both = np.concatenate([real, fake])
    if loss.is_probability:
        edges = np.linspace(0.0, 1.0, 41)
        fig.layout["xaxis"]["range"] = [0, 1]
    else:
        shown = both[np.isfinite(both)]
        lo, hi = np.percentile(shown, [1, 99]) if len(shown) else (-1.0, 1.0)
        edges = np.linspace(min(lo, loss.d_equilibrium - 0.5), max(hi, loss.d_equilibrium + 0.5), 41)
    centres = _f32((edges[:-1] + edges[1:]) / 2)
    n_bins = len(edges) - 1
    # 40 equal bins, the last one closed (as np.histogram), by index: values clipped into range.
    # Real and fake in one pass (the fakes' bins counted after the reals'): a poll draws this
    # for every new frame, and each numpy call costs the server ~5–10 µs with a cold cache.
    clipped = np.clip(finite(both), edges[0], edges[-1])
    bins = np.floor((clipped - edges[0]) * (n_bins / (edges[-1] - edges[0])))
    bins = np.clip(bins, 0, n_bins - 1).astype(np.intp)
    bins[len(real):] += n_bins
    counts = np.bincount(bins, minlength=2 * n_bins).reshape(2, n_bins)
    ratios = counts / np.array([[max(len(real), 1)], [max(len(fake), 1)]])
    shares, top = _f32(ratios), float(ratios.max())
    for row, name, color in ((shares[0], "real: D(x)", REAL_COLOR), (shares[1], "fake: D(G(z))", FAKE_COLOR)):
        fig.add(type="bar", x=centres, y=row, name=name,
                marker=dict(color=color), opacity=0.6, width=float(edges[1] - edges[0]))
    fig.layout.update(barmode="overlay", bargap=0)
    fig.layout["yaxis"]["range"] = [0, 1.08 * top or 1.0]
    return fig.reference(label=f"equilibrium D = {loss.d_equilibrium:g}", x=(loss.d_equilibrium,) * 2,
                         y=(0, 1.08 * top or 1.0), width=2)


def d_means_figure(snap: Snapshot) -> Figure:
    """Mean D(x) and D(G(z)) over steps: they meet at the equilibrium when G wins."""
    loss = get_loss(snap.config.loss)
    fig = Figure("Mean D output over time", "training step",
                 "mean P(real)" if loss.is_probability else "mean score")
    if len(snap.history) == 0:
        return fig.message("Press Start to train")
    step, r, f = _thin(snap.column("step"), snap.column("d_real"), snap.column("d_fake"))
    steps = step.astype(np.int64)
    fig.add(type="scatter", x=steps, y=_series(r), name="D(x), real", line=dict(color=REAL_COLOR, width=2))
    fig.add(type="scatter", x=steps, y=_series(f), name="D(G(z)), fake", line=dict(color=FAKE_COLOR, width=2))
    fig.reference(label="equilibrium", x=(int(steps[0]), int(steps[-1])),
                  y=(loss.d_equilibrium,) * 2)
    if loss.is_probability:
        fig.layout["yaxis"]["range"] = [0, 1]
    else:
        _fit_y(fig, r, f, include=(loss.d_equilibrium,))
    return _change_markers(fig, snap)


def tile(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """(n, 28, 28) in [-1, 1] → one (rows·29+1, cols·29+1) mosaic in [0, 1]."""
    n, h, w = images.shape
    rows = int(np.ceil(n / cols))
    out = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = (img + 1) / 2
    return np.clip(out, 0, 1)


def _short_name(generator: str) -> str:
    return "G (EMA)" if "EMA" in generator else generator


def samples_figure(snap: Snapshot, label: str = "") -> Figure:
    """2-D: real and fake points over D's decision surface with G's push and G's manifold.
    Digits: a grid of G's samples from a fixed noise batch. `label` prefixes the title (A/B)."""
    prefix = f"{label}: " if label else ""
    frame = snap.frame
    if frame is not None and frame.fake.ndim == 3:
        fig = Figure(f"{prefix}digits from {_short_name(frame.generator)} · step {frame.step:,}", "", "",
                     height=460)
        mosaic = finite(tile(frame.fake))  # dark ink on white, like the data; NaN white
        rows, cols = mosaic.shape
        _picture(fig, np.round(255 * (1 - mosaic)).astype(np.uint8), (0, cols, 0, rows))
        fig.layout["xaxis"].update(visible=False, range=[0, cols], constrain="domain")
        fig.layout["yaxis"].update(visible=False, range=[0, rows], scaleanchor="x")
        return fig
    height = 500
    fig = Figure(f"{prefix}real vs fake on D's surface" if label else "Real vs fake on D's surface",
                 "x₁", "x₂", height=height)
    if frame is None:
        return fig.message("No samples yet")
    loss = get_loss(snap.config.loss)
    x0, x1, y0, y1 = frame.surface_extent
    zmin, zmax = surface_range(frame.surface, loss.is_probability)
    # D was evaluated at the cells' centres, from x0 to x1: the picture reaches half a cell beyond.
    hx, hy = (x1 - x0) / (2 * (frame.surface.shape[1] - 1)), (y1 - y0) / (2 * (frame.surface.shape[0] - 1))
    _picture(fig, surface_levels(frame.surface, zmin, zmax), (x0 - hx, x1 + hx, y0 - hy, y1 + hy), SURFACE_PALETTE)
    # The picture's colour bar: a trace with no points that only carries it. Above the plot,
    # not beside it: a side bar would narrow the square plot area, and with it the legend,
    # which plotly wraps to the plot's width.
    colorbar = dict(orientation="h", x=0.5, xanchor="center", yref="container", y=1 - 36 / height,
                    yanchor="top", len=0.9, thickness=10,
                    title=dict(side="bottom", font=dict(size=14),
                               text="D's opinion of each place" if loss.is_probability
                               else "D's score of each place (higher = real)"))
    if loss.is_probability:
        colorbar.update(tickvals=[0, 0.25, 0.5, 0.75, 1], ticktext=["0 fake", "", "0.5 unsure", "", "1 real"])
    fig.add(type="scatter", x=[None], y=[None], mode="markers", name="D", showlegend=False, hoverinfo="skip",
            marker=dict(color=[zmin], cmin=zmin, cmax=zmax, showscale=True, colorbar=colorbar,
                        colorscale=[[pos, f"rgb{c}"] for pos, c in SURFACE_SCALE]))
    # WebGL traces all: plotly draws them on one canvas above any SVG trace, so SVG lines
    # would hide under the points. Order = drawing order: real points are big discs under the
    # small translucent fakes, so both stay visible where G has matched the data.
    real = frame.real[:REAL_SHOWN]
    fig.add(type="scattergl", **_xy(real, 2), mode="markers", name="real data",
            marker=dict(color=REAL_COLOR, size=11, opacity=0.55, line=dict(color=REAL_EDGE, width=1)))
    fig.add(type="scattergl", **_xy(frame.fake, 2), mode="markers",
            # Short: plotly lays a legend's entries in columns as wide as its widest, and at 1280x720
            # in Large text two columns fit only if no name is longer than "G's manifold".
            name="fake (EMA)" if "EMA" in frame.generator else "fake G(z)",  # translucent: overlaps read as density
            marker=dict(color=FAKE_COLOR, size=5, opacity=0.6))
    for trace in _manifold_traces(frame):
        fig.add(**trace)
    for trace in _change_traces(snap, loss.d_equilibrium):
        fig.add(**trace)
    if frame.g_field is not None:
        fig.add(type="scattergl", mode="lines", name="G's push", hoverinfo="skip",  # −∇ₓ of G's loss
                line=dict(color="black", width=1.5), **_arrows(frame.fake, frame.g_field, 0.06 * (x1 - x0)))
    fig.layout["xaxis"].update(range=[x0, x1], constrain="domain")
    fig.layout["yaxis"].update(range=[y0, y1], scaleanchor="x")
    return fig


def _changes_shown(snap: Snapshot) -> tuple[bool, bool]:
    """(D's boundary before and now, the fakes' trails): after Step D only, after Step G only, or
    both when the previous frame is exactly one step older (Step, slow motion). One update moves
    D's surface by a few 1/255 of colour at first — too little to see — but its D = 0.5 line
    visibly, and each fake by a few pixels, which a line from where it was makes visible."""
    prev, frame = snap.previous_frame, snap.frame
    if prev is None or frame is None or prev.surface is None or frame.surface is None:
        return False, False
    if snap.last_update in ("d", "g"):
        return snap.last_update == "d", snap.last_update == "g"
    one_step = snap.last_update == "both" and frame.step - prev.step == 1
    return one_step, one_step


def _change_traces(snap: Snapshot, level: float) -> list[dict]:
    """What the latest update changed (`_changes_shown`): D's level-`level` line now (solid) and
    at the previous frame (dashed), and trails from the fakes' previous positions to their new ones."""
    show_d, show_g = _changes_shown(snap)
    prev, frame = snap.previous_frame, snap.frame
    traces = []
    # Short legend names (the legend shares the plot's 440 px at 1280×720); the steps are in the hover.
    if show_d:
        for f, dash, when in ((prev, "dash", "before"), (frame, "solid", "now")):
            x, y = level_lines(f.surface, level, f.surface_extent)
            traces.append(dict(type="scattergl", mode="lines", name=f"D={level:g} {when}", x=_f32(x, 3), y=_f32(y, 3),
                               hovertemplate=f"D = {level:g} at step {f.step:,}<extra></extra>",
                               line=dict(color=D_COLOR, width=2.5, dash=dash)))
    if show_g:
        # With an EMA of G the orange points follow G slowly (late in a run ~0.1 % of the way per
        # update, invisible): the trails then show the raw G, the network the update moved.
        raw = prev.fake_raw is not None and frame.fake_raw is not None
        old, new = (prev.fake_raw, frame.fake_raw) if raw else (prev.fake, frame.fake)
        traces.append(dict(type="scattergl", mode="lines", name="raw G's moves" if raw else "fakes' moves",
                           hovertemplate=f"a fake's move, step {prev.step:,} → {frame.step:,}<extra></extra>",
                           line=dict(color=TRAIL_COLOR, width=2.5), **_segments(old[:ARROWS], new[:ARROWS])))
    return traces


def _manifold_traces(frame) -> list[dict]:
    """G's manifold: its image of the (z₁, z₂) grid (`EvalFrame.manifold`) as warped grid lines,
    one trace (NaN gaps between lines) so it is a single legend entry; none without a manifold."""
    grid = frame.manifold
    if grid is None or grid.size == 0:
        return []
    rows, cols, _ = grid.shape
    points = np.concatenate([grid.reshape(-1, 2), np.full((1, 2), np.nan, dtype=grid.dtype)])
    return [dict(type="scattergl", mode="lines", name="G's manifold", hoverinfo="skip",
                 **_xy(points[_grid_path(rows, cols)], 3), line=dict(color="#6a3d9a", width=1), opacity=0.6)]


@functools.lru_cache(maxsize=8)
def _grid_path(rows: int, cols: int) -> np.ndarray:
    """Indices into a (rows·cols + 1)-point table (the last: a NaN gap) that walk a grid's rows,
    then its columns (if more than one row), each line followed by the gap."""
    index, gap = np.arange(rows * cols).reshape(rows, cols), rows * cols
    lines = list(index) + (list(index.T) if rows > 1 else [])
    path = np.concatenate([np.append(line, gap) for line in lines])
    path.setflags(write=False)  # shared by every call (cached)
    return path


def _arrows(points: np.ndarray, vectors: np.ndarray, max_len: float, n: int = ARROWS) -> dict:
    """Line segments (x, y with NaN gaps) of length ∝ |v|, the longest = max_len."""
    points, vectors = points[:n], finite(vectors[:n])
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    top = float(norms.max()) if len(norms) else 0.0
    scale = max_len / top if top > 0 else 0.0
    return _segments(points, points + vectors * scale)


def coverage_figure(snap: Snapshot) -> Figure:
    """Sample quality over steps: mode coverage for toys with known modes,
    classifier Inception Score and Fréchet distance for digits."""
    if len(snap.digit_scores):
        return _digit_quality(snap)
    of = f" of {_short_name(snap.frame.generator)}" if snap.frame is not None else ""
    fig = Figure(f"Mode coverage{of} · VEEGAN/PacGAN metric", "training step", "modes covered")
    cov = snap.coverage
    if len(cov) == 0:
        is_digits = snap.config is not None and snap.config.dataset in DIGIT_DATASETS
        return fig.message("Digit scores appear every few seconds" if is_digits
                           else "Only for datasets with known modes (ring, grid)")
    step, modes, hq = _thin(cov[:, 0], cov[:, 1], cov[:, 2])
    fig.add(type="scatter", x=_f32(step), y=_f32(modes), name="modes covered", line=dict(color=G_COLOR, width=2))
    fig.add(type="scatter", x=_f32(step), y=_f32(hq), name="high-quality %", yaxis="y2",
            line=dict(color="#9467bd", width=2, dash="dot"))
    fig.layout["yaxis"]["rangemode"] = "tozero"
    fig.layout["yaxis2"] = dict(title=dict(text="high-quality samples (%)"), overlaying="y", side="right",
                                range=[0, 100], showgrid=False, automargin=True)
    return fig


def _digit_quality(snap: Snapshot) -> Figure:
    fig = Figure("Digit quality (classifier Inception Score, Fréchet distance)", "training step",
                 "Inception Score (10 = best)")
    scores = snap.digit_scores
    step, score, fd = _thin(scores[:, 0], scores[:, 1], scores[:, 2])
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(score), name="Inception Score ↑",
            mode="lines+markers", line=dict(color=G_COLOR, width=2))
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(fd), name="Fréchet distance ↓", yaxis="y2",
            mode="lines+markers", line=dict(color="#9467bd", width=2, dash="dot"))
    fig.layout["yaxis"]["range"] = [0, 10.5]
    fig.layout["yaxis2"] = dict(title=dict(text="Fréchet distance (0 = real)"), overlaying="y", side="right",
                                rangemode="tozero", showgrid=False, automargin=True)
    return fig


PLACEHOLDERS = {  # what each plot will show, drawn before the first Start: title, axes, message
    "samples": ("Real vs fake on D's surface", "x₁", "x₂",
                "Press Start to see real points (blue rings)<br>and G's fakes (orange) on D's opinion<br>"
                "of every place: red = fake, blue = real"),
    "d_hist": ("What D thinks of real and fake", "D(·) = P(real)", "share of samples",
               "Press Start: histograms of D's score<br>on real and on fake samples"),
    "losses": ("D and G losses", "training step", "loss", "Press Start: D's and G's loss<br>at every training step"),
    "d_means": ("Mean D output over time", "training step", "mean P(real)",
                "Press Start: mean D(x) and D(G(z));<br>they meet when D can only guess"),
    "coverage": ("Mode coverage · VEEGAN/PacGAN metric", "training step", "modes covered",
                 "Press Start: how many of the data's modes G covers (ring, grid),<br>or the digits' quality scores"),
}


def placeholders() -> dict[str, str]:
    """Figure JSON per plot name for the page before any run: its title, its axes with their
    labels (empty, so the page shows plots rather than white boxes) and what will appear."""
    out = {}
    for name, (title, x, y, text) in PLACEHOLDERS.items():
        fig = Figure(title, x, y, height=500 if name in ("samples", "d_hist") else 340).message(text)
        fig.layout["xaxis"].update(range=[0, 1], showticklabels=False)
        fig.layout["yaxis"].update(range=[0, 1], showticklabels=False)
        out[name] = fig.to_json()
    return out


def compare_figure(a: Snapshot, b: Snapshot, label_a: str = "A", label_b: str = "B") -> Figure:
    """A/B: both runs' D and G losses on one plot (solid A, dashed B), same seed and noise."""
    fig = Figure("A/B: losses (A solid, B dashed)", "training step", "loss")
    if len(a.history) == 0 and len(b.history) == 0:
        return fig.message("Press Start A/B")
    shown = []
    for snap, label, dash in ((a, label_a, "solid"), (b, label_b, "dash")):
        if len(snap.history) == 0:
            continue
        step, d, g = _thin(snap.column("step"), snap.column("d_loss"), snap.column("g_loss"))
        fig.add(type="scatter", x=step.astype(np.int64), y=_series(d), name=f"D loss, {label}",
                line=dict(color=D_COLOR, width=2, dash=dash))
        fig.add(type="scatter", x=step.astype(np.int64), y=_series(g), name=f"G loss, {label}",
                line=dict(color=G_COLOR, width=2, dash=dash))
        shown += [d, g]
    _fit_y(fig, *shown)
    return fig


def compare_coverage_figure(a: Snapshot, b: Snapshot, label_a: str = "A", label_b: str = "B") -> Figure:
    """A/B: modes covered (toys) or Inception Score (digits) of both runs over steps."""
    digits = len(a.digit_scores) or len(b.digit_scores)
    fig = Figure("A/B: Inception Score" if digits else "A/B: mode coverage", "training step",
                 "Inception Score" if digits else "modes covered")
    series = [(s.digit_scores if digits else s.coverage, label, dash)
              for s, label, dash in ((a, label_a, "solid"), (b, label_b, "dash"))]
    if not any(len(rows) for rows, _, _ in series):
        return fig.message("Digit scores appear every few seconds" if (a.config and a.config.is_image)
                           else "Only for datasets with known modes (ring, grid)")
    for rows, label, dash in series:
        if len(rows):
            step, value = _thin(rows[:, 0], rows[:, 1])
            fig.add(type="scatter", x=step.astype(np.int64), y=_f32(value, 3), name=label,
                    line=dict(color=G_COLOR if dash == "solid" else "#9467bd", width=2, dash=dash))
    fig.layout["yaxis"]["rangemode"] = "tozero"
    return fig
