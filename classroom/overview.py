"""The live model-overview graph (GAN Lab style, Kahng et al., 2018) as one SVG string.

noise z → G → fake samples → D ← real samples, and D's outputs → the two losses; each
box carries its live numbers from the same snapshot the plots read (mean D(x) and
D(G(z)) and both losses at the latest step, learning rates, k, label-smoothing targets,
loss name). The network that moved last is highlighted: a single D-only or G-only
update always, a whole training step when the run is slow enough to follow (slow
motion, paused, stepping). Not here: drawing plots (plots.py), page layout (app.py).
"""

from __future__ import annotations

from html import escape

import numpy as np

from gan_core.losses import LOSSES
from gan_core.records import STAT_FIELDS

SLOW_STEPS_PER_S = 20  # at or below this a class can follow each step: highlight what moved
D_FILL, G_FILL, IDLE_FILL = "#fde0dd", "#e5f5e0", "#f7f7f7"
D_EDGE, G_EDGE, IDLE_EDGE = "#d62728", "#2ca02c", "#888888"
WIDTH, HEIGHT = 900, 252  # viewBox: the SVG scales to its box's width


def _box(x: int, y: int, w: int, h: int, lines: list[str], fill: str = IDLE_FILL, edge: str = IDLE_EDGE,
         bold_edge: bool = False, node: str = "") -> str:
    stroke = 4 if bold_edge else 1.5
    first, rest = lines[0], lines[1:]
    texts = [f'<text x="{x + w / 2:g}" y="{y + 24}" class="ov-head">{first}</text>']
    texts += [f'<text x="{x + w / 2:g}" y="{y + 46 + 20 * i}" class="ov-num">{line}</text>' for i, line in enumerate(rest)]
    return (f'<g class="ov-node" data-node="{node}"><rect x="{x}" y="{y}" width="{w}" height="{h}" rx="10" '
            f'fill="{fill}" stroke="{edge}" stroke-width="{stroke}"/>{"".join(texts)}</g>')


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" class="ov-arrow" marker-end="url(#ov-head)"/>'


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _lr(lr: float) -> str:
    return f"{lr:.1e}".replace("e-0", "e-")


def latest(snap, name: str) -> float | None:
    """The latest step's value of a recorded statistic (None before the first step)."""
    rows = snap.recent if len(snap.recent) else snap.history
    if len(rows) == 0 or name not in STAT_FIELDS:
        return None
    return float(rows[-1, 2 + STAT_FIELDS.index(name)])


def moved(snap) -> tuple[str, str]:
    """(which network to highlight: "d" | "g" | "both" | "", caption)."""
    k = snap.config.n_critic if snap.config is not None else 1
    step = f"{k} D update{'s' if k > 1 else ''}, then 1 G update"
    if snap.last_update == "d":
        return "d", "Last: one D update (G unchanged)"
    if snap.last_update == "g":
        return "g", "Last: one G update (D unchanged)"
    if snap.last_update == "both":
        if snap.state != "running" or snap.steps_per_s <= SLOW_STEPS_PER_S:
            return "both", f"Last step {snap.step:,}: {step}"
        return "", f"Training at {snap.steps_per_s:,.0f} steps/s; each step: {step}"
    return "", "Press Start, Step, Step D only or Step G only"


def overview_svg(snap) -> str:
    """The graph for this snapshot (an empty graph before any run)."""
    cfg = snap.config if snap is not None else None
    if cfg is None:
        return _svg("", "Press Start to see the live numbers", None)
    return _svg(*moved(snap), snap)


def _svg(highlight: str, caption: str, snap) -> str:
    cfg = snap.config if snap is not None else None
    loss = LOSSES[cfg.loss] if cfg is not None else None
    prob = loss.is_probability if loss is not None else True
    mean = "mean" if prob else "mean score"
    value = (lambda name: latest(snap, name)) if snap is not None else (lambda name: None)
    if cfg is not None:
        fake_target = cfg.label_smoothing if cfg.two_sided_smoothing else 0.0
        targets = f"real → {1 - cfg.label_smoothing:g} · fake → {fake_target:g}" if prob else "real ↑ · fake ↓"
        g_lines = ["G (generator)", f"lr {_lr(cfg.g_lr)}", f"{cfg.width} units × {cfg.depth} layers"]
        d_lines = ["D (discriminator)", f"lr {_lr(cfg.d_lr)}", f"k = {cfg.n_critic} D step{'s' if cfg.n_critic > 1 else ''}",
                   "per G step"]
        z_lines = ["noise z", f"{cfg.z_dim}-D N(0, I)"]
        real_lines = ["real samples x", escape(cfg.dataset), f"{mean} D(x) = {_fmt(value('d_real'))}"]
        loss_title = f"loss: {escape(loss.title)}"
    else:  # before any run: what each part is
        targets, loss_title = "how well D separates", "the game's two scores"
        g_lines, d_lines = ["G (generator)", "turns noise", "into samples"], ["D (discriminator)", "scores each sample:", "real or fake?"]
        z_lines, real_lines = ["noise z", "random input"], ["real samples x", "the dataset", "G must imitate"]
    d_on, g_on = highlight in ("d", "both"), highlight in ("g", "both")
    d_style = (D_FILL, D_EDGE, True) if d_on else (IDLE_FILL, IDLE_EDGE, False)
    g_style = (G_FILL, G_EDGE, True) if g_on else (IDLE_FILL, IDLE_EDGE, False)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" class="ov-svg" '
        f'aria-label="Model overview: noise z to G to fake samples to D, real samples to D, D to the losses">',
        '<defs><marker id="ov-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        _box(8, 36, 100, 64, z_lines, node="z"),
        _box(130, 30, 150, 88, g_lines, *g_style, node="g"),
        _box(304, 36, 186, 64, ["fake samples G(z)", f"{mean} D(G(z)) = {_fmt(value('d_fake'))}" if cfg else "G's output"],
             node="fake"),
        _box(304, 138, 186, 88, real_lines, node="real"),
        _box(520, 72, 170, 112, d_lines, *d_style, node="d"),
        _box(724, 30, 168, 88, ["D loss", _fmt(value("d_loss"), 3) if cfg else targets, targets if cfg else ""],
             IDLE_FILL, *d_style[1:], node="d_loss"),
        _box(724, 138, 168, 88, ["G loss", _fmt(value("g_loss"), 3) if cfg else "how well G fools D"], IDLE_FILL,
             *g_style[1:], node="g_loss"),
        _arrow(108, 68, 128, 72), _arrow(280, 72, 302, 68), _arrow(490, 68, 518, 108),
        _arrow(490, 182, 518, 150), _arrow(690, 110, 722, 80), _arrow(690, 150, 722, 180),
        f'<text x="892" y="20" class="ov-note" text-anchor="end">{loss_title}</text>',
        f'<text x="8" y="{HEIGHT - 8}" class="ov-caption">{escape(caption)}</text>',
        "</svg>",
    ]
    return "".join(parts)


OVERVIEW_CSS = """
#overview .ov-svg text {font-family: inherit; fill: #222;}
#overview .ov-head, #overview .ov-num {text-anchor: middle;}
#overview .ov-head {font-size: 18px; font-weight: 600;}
#overview .ov-num {font-size: 16px; font-variant-numeric: tabular-nums;}
#overview .ov-note {font-size: 13px; fill: #444;}
#overview .ov-caption {font-size: 15px; font-style: italic;}
#overview .ov-arrow {stroke: #555; stroke-width: 2;}
"""
