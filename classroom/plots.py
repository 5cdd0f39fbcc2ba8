"""Plotly figures drawn from telemetry snapshots (no Gradio here).

Figures are built as plain plotly JSON dicts and wrapped in `Figure`, which
serialises with orjson: constructing validated `plotly.graph_objects` figures
costs 50–100 ms each, too slow for several live updates a second (tests
validate the dicts with plotly instead). Every figure has a title, labelled
axes and a legend, with fonts sized for a projector; `uirevision` keeps a
student's zoom across live updates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from gan_core.data import DIGIT_DATASETS
from gan_core.losses import get_loss
from gan_core.telemetry import Snapshot

REAL_COLOR = "#1f77b4"  # blue: real data
FAKE_COLOR = "#ff7f0e"  # orange: generator
D_COLOR = "#d62728"
G_COLOR = "#2ca02c"
MAX_POINTS = 1000  # points per line drawn (≈ the pixels of a plot's width)


class Figure:
    """A plotly figure as a dict; `to_json()` is what Gradio's `gr.Plot` calls."""

    def __init__(self, title: str, x: str, y: str, height: int = 340) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = dict(
            title=dict(text=title, x=0.01, xanchor="left", y=0.985, yanchor="top", font=dict(size=18)),
            xaxis=dict(title=dict(text=x)),
            yaxis=dict(title=dict(text=y)),
            font=dict(size=15),
            height=height,
            margin=dict(l=64, r=24, t=86, b=56),
            # Legend under the title, above the plot area: never on top of data.
            legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0.0),
            template=dict(layout=dict(plot_bgcolor="white", paper_bgcolor="white",
                                      xaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#cccccc"),
                                      yaxis=dict(gridcolor="#e5e5e5", zerolinecolor="#cccccc"))),
            uirevision=title,
            shapes=[],
            annotations=[],
        )

    def add(self, **trace: Any) -> "Figure":
        self.data.append(trace)
        return self

    def line(self, *, y: float | None = None, x: float | None = None, label: str, color: str = "black",
             width: int = 1) -> "Figure":
        """A dashed horizontal (y=…) or vertical (x=…) reference line with a label."""
        if y is not None:
            shape = dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y)
            note = dict(xref="paper", x=1, xanchor="right", yref="y", y=y, yanchor="bottom")
        else:
            shape = dict(type="line", yref="paper", y0=0, y1=1, xref="x", x0=x, x1=x)
            note = dict(yref="paper", y=0.98, yanchor="top", xref="x", x=x, xanchor="left")
        self.layout["shapes"].append({**shape, "line": dict(color=color, dash="dash", width=width)})
        self.layout["annotations"].append({**note, "text": label, "showarrow": False,
                                           "font": dict(size=12, color=color)})
        return self

    def message(self, text: str) -> "Figure":
        self.layout["annotations"].append(dict(text=text, showarrow=False, xref="paper", yref="paper",
                                               x=0.5, y=0.5, font=dict(size=16, color="#888888")))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout}

    def to_json(self) -> str:
        return orjson.dumps(self.to_dict(), default=_to_list, option=orjson.OPT_SERIALIZE_NUMPY).decode()


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


def _f32(a: np.ndarray, decimals: int | None = None) -> np.ndarray:
    """Contiguous float32; rounding shortens the JSON sent to every browser ~2×."""
    a = np.asarray(a, dtype=np.float32)
    if decimals is not None:
        a = np.round(a, decimals)
    return np.ascontiguousarray(a)


def _series(x: np.ndarray) -> np.ndarray:
    return _f32(x, 4)


def loss_figure(snap: Snapshot) -> Figure:
    """D and G loss over steps, with their values at the Nash equilibrium dashed."""
    fig = Figure("Losses", "training step", "loss")
    if len(snap.history) == 0:
        return fig.message("Press Start to train")
    step, d, g = _thin(snap.column("step"), snap.column("d_loss"), snap.column("g_loss"))
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(d), name="D loss", line=dict(color=D_COLOR, width=2))
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(g), name="G loss", line=dict(color=G_COLOR, width=2))
    loss = get_loss(snap.config.loss)
    if loss.d_loss_equilibrium is not None:
        fig.line(y=loss.d_loss_equilibrium, label="D at equilibrium", color=D_COLOR)
        fig.line(y=loss.g_loss_equilibrium, label="G at equilibrium", color=G_COLOR)
    return fig


def d_output_figure(snap: Snapshot) -> Figure:
    """Histograms of D on real and fake samples, with the equilibrium line."""
    loss = get_loss(snap.config.loss)
    fig = Figure("What D thinks: D(x) on real vs D(G(z)) on fake",
                 "D(·) = P(real)" if loss.is_probability else "D(·) (raw score)", "share of samples")
    frame = snap.frame
    if frame is None:
        return fig.message("No samples yet")
    real, fake = frame.d_real_values, frame.d_fake_values
    if loss.is_probability:
        edges = np.linspace(0.0, 1.0, 41)
        fig.layout["xaxis"]["range"] = [0, 1]
    else:
        both = np.concatenate([real, fake])
        both = both[np.isfinite(both)]
        lo, hi = np.percentile(both, [1, 99]) if len(both) else (-1.0, 1.0)
        edges = np.linspace(min(lo, loss.d_equilibrium - 0.5), max(hi, loss.d_equilibrium + 0.5), 41)
    centres = (edges[:-1] + edges[1:]) / 2
    for values, name, color in ((real, "real: D(x)", REAL_COLOR), (fake, "fake: D(G(z))", FAKE_COLOR)):
        counts, _ = np.histogram(np.clip(np.nan_to_num(values), edges[0], edges[-1]), edges)
        fig.add(type="bar", x=_f32(centres), y=_f32(counts / max(len(values), 1)), name=name,
                marker=dict(color=color), opacity=0.6, width=float(edges[1] - edges[0]))
    fig.layout.update(barmode="overlay", bargap=0)
    return fig.line(x=loss.d_equilibrium, label=f"equilibrium D = {loss.d_equilibrium:g}", width=2)


def d_means_figure(snap: Snapshot) -> Figure:
    """Mean D(x) and D(G(z)) over steps: they meet at the equilibrium when G wins."""
    loss = get_loss(snap.config.loss)
    fig = Figure("Mean D output over time", "training step",
                 "mean P(real)" if loss.is_probability else "mean score")
    if len(snap.history) == 0:
        return fig.message("Press Start to train")
    step, r, f = _thin(snap.column("step"), snap.column("d_real"), snap.column("d_fake"))
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(r), name="D(x), real", line=dict(color=REAL_COLOR, width=2))
    fig.add(type="scatter", x=step.astype(np.int64), y=_series(f), name="D(G(z)), fake", line=dict(color=FAKE_COLOR, width=2))
    if loss.is_probability:
        fig.layout["yaxis"]["range"] = [0, 1]
    return fig.line(y=loss.d_equilibrium, label="equilibrium")


def _tile(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """(n, 28, 28) in [-1, 1] → one (rows·29+1, cols·29+1) mosaic in [0, 1]."""
    n, h, w = images.shape
    rows = int(np.ceil(n / cols))
    out = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + c * (w + 1): 1 + c * (w + 1) + w] = (img + 1) / 2
    return np.clip(out, 0, 1)


def samples_figure(snap: Snapshot) -> Figure:
    """2-D: real and fake points over D's decision surface with G's push.
    Digits: a grid of G's samples from a fixed noise batch."""
    frame = snap.frame
    if frame is not None and frame.fake.ndim == 3:
        fig = Figure(f"Digits from {frame.generator} at step {frame.step:,} (fixed noise)", "", "", height=460)
        fig.add(type="heatmap", z=_f32(_tile(frame.fake)[::-1], 2), colorscale="Greys", reversescale=True,
                showscale=False, zmin=0, zmax=1, hoverinfo="skip")
        fig.layout["xaxis"].update(visible=False, scaleanchor="y")
        fig.layout["yaxis"].update(visible=False)
        return fig
    fig = Figure("Real vs generated points over D's decision surface", "x₁", "x₂", height=460)
    if frame is None:
        return fig.message("No samples yet")
    loss = get_loss(snap.config.loss)
    x0, x1, y0, y1 = frame.surface_extent
    res = frame.surface.shape[0]
    heat = dict(type="heatmap", z=_f32(frame.surface, 3), x=_f32(np.linspace(x0, x1, res)), y=_f32(np.linspace(y0, y1, res)),
                colorscale="RdBu", reversescale=True, opacity=0.55, hovertemplate="D=%{z:.2f}<extra></extra>", name="D",
                colorbar=dict(title=dict(text="D: P(real)" if loss.is_probability else "D score", side="right")))
    if loss.is_probability:
        heat.update(zmin=0.0, zmax=1.0)
    fig.add(**heat)
    fig.add(type="scattergl", x=_f32(frame.real[:, 0], 3), y=_f32(frame.real[:, 1], 3), mode="markers", name="real data",
            marker=dict(color=REAL_COLOR, size=5, opacity=0.7))
    fig.add(type="scattergl", x=_f32(frame.fake[:, 0], 3), y=_f32(frame.fake[:, 1], 3), mode="markers", name=f"generated: {frame.generator}",
            marker=dict(color=FAKE_COLOR, size=6, opacity=0.9, line=dict(color="black", width=0.5)))
    for trace in _manifold_traces(frame):
        fig.add(**trace)
    if frame.g_field is not None:
        fig.add(type="scatter", mode="lines", name="G's push on fakes", hoverinfo="skip",
                line=dict(color="black", width=1), **_arrows(frame.fake, frame.g_field, 0.06 * (x1 - x0)))
    fig.layout["xaxis"].update(range=[x0, x1], constrain="domain")
    fig.layout["yaxis"].update(range=[y0, y1], scaleanchor="x")
    return fig


def _manifold_traces(frame) -> list[dict]:
    """G's manifold: its image of the (z₁, z₂) grid (`EvalFrame.manifold`) as warped grid lines,
    one trace (NaN gaps between lines) so it is a single legend entry; none without a manifold."""
    grid = frame.manifold
    if grid is None or grid.size == 0:
        return []
    rows, cols, _ = grid.shape
    lines = [grid[i] for i in range(rows)] + ([grid[:, j] for j in range(cols)] if rows > 1 else [])
    gap = np.full((1, 2), np.nan, dtype=np.float32)
    path = np.concatenate([part for line in lines for part in (line, gap)])
    return [dict(type="scatter", mode="lines", name="G's manifold (z₁, z₂ grid)", hoverinfo="skip",
                 x=_f32(path[:, 0], 3), y=_f32(path[:, 1], 3), line=dict(color="#6a3d9a", width=1),
                 opacity=0.6)]


def _arrows(points: np.ndarray, vectors: np.ndarray, max_len: float, n: int = 128) -> dict:
    """Line segments (x, y with NaN gaps) of length ∝ |v|, the longest = max_len."""
    points, vectors = points[:n], np.nan_to_num(vectors[:n])
    norms = np.linalg.norm(vectors, axis=1)
    top = float(norms.max()) if len(norms) else 0.0
    scale = max_len / top if top > 0 else 0.0
    ends = points + vectors * scale
    gap = np.full(len(points), np.nan, dtype=np.float32)
    xs = _f32(np.column_stack([points[:, 0], ends[:, 0], gap]).ravel(), 3)
    ys = _f32(np.column_stack([points[:, 1], ends[:, 1], gap]).ravel(), 3)
    return dict(x=xs, y=ys)


def coverage_figure(snap: Snapshot) -> Figure:
    """Sample quality over steps: mode coverage for toys with known modes,
    classifier Inception Score and Fréchet distance for digits."""
    if len(snap.digit_scores):
        return _digit_quality(snap)
    of = f" of {snap.frame.generator}" if snap.frame is not None else ""
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
                                range=[0, 100], showgrid=False)
    fig.layout["margin"]["r"] = 70
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
                                rangemode="tozero", showgrid=False)
    fig.layout["margin"]["r"] = 70
    return fig


def compare_figure(a: Snapshot, b: Snapshot, label_a: str = "A", label_b: str = "B") -> Figure:
    """A/B: both runs' D and G losses on one plot (solid A, dashed B), same seed and noise."""
    fig = Figure("A/B comparison: losses of both runs (same seed and noise)", "training step", "loss")
    if len(a.history) == 0 and len(b.history) == 0:
        return fig.message("Press Start A/B")
    for snap, label, dash in ((a, label_a, "solid"), (b, label_b, "dash")):
        if len(snap.history) == 0:
            continue
        step, d, g = _thin(snap.column("step"), snap.column("d_loss"), snap.column("g_loss"))
        fig.add(type="scatter", x=step.astype(np.int64), y=_series(d), name=f"D loss, {label}",
                line=dict(color=D_COLOR, width=2, dash=dash))
        fig.add(type="scatter", x=step.astype(np.int64), y=_series(g), name=f"G loss, {label}",
                line=dict(color=G_COLOR, width=2, dash=dash))
    return fig
