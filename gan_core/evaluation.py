"""What a run shows: the evaluation frame, digit scores and the fixed inputs they use.

`eval_frame(engine)` renders the heavy telemetry of one moment (`records.EvalFrame`)
on inputs fixed for the whole run, so frames differ only because training moved
the networks:
- samples, D's decision surface under them and mode coverage (2,500 samples, as
  the quality benchmark scores) come from `engine.shown_generator`: the EMA of
  G's weights when the run keeps one (Yazıcı et al., 2019), else G. The raw G's
  samples on the same noise ride along in `EvalFrame.fake_raw`.
- D's histograms, V(D, G) and G's push (−∇ₓ L_G) are of the raw G, the player D
  is trained against.
`digit_scores(engine)` is the classifier IS / FD of the same shown generator.

Reads the engine; never trains it or touches its training RNG. Not here: the
training step (`engine.py`), drawing (`classroom/plots.py`).
"""

from __future__ import annotations

import numpy as np
import torch

from .data import DIGIT_DATASETS
from .metrics import N_COVERAGE_SAMPLES, mode_coverage
from .records import EvalFrame

SURFACE_RES = 48  # D decision-surface grid resolution (per axis)
N_EVAL_POINTS = 1500  # fixed real / noise points shown in plots (enough to see where G puts its mass)
N_EVAL_IMAGES = 64  # fixed noise images shown as a grid
N_SCORE_IMAGES = 500  # fixed noise images scored by the digit classifier
N_EVAL_REAL_IMAGES = 256  # real images D's histogram is drawn over
MANIFOLD_RES = 15  # G's manifold: grid lines per axis of the (z₁, z₂) slice
MANIFOLD_SPAN = 2.0  # … over z₁, z₂ in [-2, 2] (±2σ of the N(0, I) prior), other coordinates 0


def fixed_inputs(data, z_dim: int, seed: int, device: torch.device):
    """(eval_real, eval_noise, coverage_noise, score_noise): the same for every frame of a run."""
    rng = torch.Generator(device).manual_seed(seed)
    image = data.is_image
    eval_real = data.sample(N_EVAL_REAL_IMAGES if image else N_EVAL_POINTS, rng).clone()
    noise = lambda n: torch.randn(n, z_dim, device=device, generator=rng)
    eval_noise = noise(N_EVAL_IMAGES if image else N_EVAL_POINTS)
    coverage_noise = noise(N_COVERAGE_SAMPLES) if getattr(data, "modes", None) is not None else None
    score_noise = noise(N_SCORE_IMAGES) if image else None
    return eval_real, eval_noise, coverage_noise, score_noise


def manifold_noise(z_dim: int, res: int = MANIFOLD_RES, span: float = MANIFOLD_SPAN,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """The z grid of G's manifold view (GAN Lab, Kahng et al., 2018): (rows·res, z_dim).

    Row i, column j is z = (u_j, v_i, 0, …, 0) with u, v on `res` even steps over
    [-span, span]: a flat 2-D slice through the noise space, so G's image of it shows how G
    warps that slice. With z_dim = 1 there is no v: one row, the line u.
    """
    ticks = torch.linspace(-span, span, res, device=device)
    rows = 1 if z_dim == 1 else res
    z = torch.zeros(rows, res, z_dim, device=device)
    z[..., 0] = ticks  # u varies along a row
    if z_dim > 1:
        z[..., 1] = ticks[:, None]  # v varies down the columns
    return z.reshape(rows * res, z_dim)


def d_single(engine, x: torch.Tensor) -> torch.Tensor:
    """D's raw output per sample; a packed D sees each point repeated `pack` times."""
    if not engine.data.is_image and engine.config.pack > 1:
        x = x.repeat_interleave(engine.config.pack, 0)
    return engine.D(x)


def _grid(extent: tuple[float, float, float, float], res: int, device: torch.device) -> torch.Tensor:
    """(res², 2) points on a res × res grid over extent (x0, x1, y0, y1), rows along y."""
    x0, x1, y0, y1 = extent
    xs, ys = torch.linspace(x0, x1, res, device=device), torch.linspace(y0, y1, res, device=device)
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)


def _readonly(t: torch.Tensor) -> np.ndarray:
    a = np.ascontiguousarray(t.detach().float().cpu().numpy())
    a.setflags(write=False)
    return a


def eval_frame(engine) -> EvalFrame:
    """The heavy telemetry at the engine's current step, in data units."""
    loss, data, scale, image = engine.loss, engine.data, engine.data.scale, engine.data.is_image
    shown_net, has_ema = engine.shown_generator, engine.G_ema is not None
    with torch.no_grad():
        fake_raw = engine.G(engine.eval_noise)
        fake = shown_net(engine.eval_noise) if has_ema else fake_raw
        d_real = d_single(engine, engine.eval_real).flatten()
        d_fake = d_single(engine, fake_raw).flatten()
        # V(D, G) (Goodfellow et al., Eq. 1) = −(BCE(real, 1) + BCE(fake, 0)).
        value = -float(loss.d_loss(d_real, d_fake, 1.0, 0.0)) if loss.is_probability else None
        surface = extent = coverage = manifold = None
        if not image:
            extent = data.bounds
            surface = loss.display(d_single(engine, _grid(extent, SURFACE_RES, engine.device) / scale))
            z_grid = manifold_noise(engine.config.z_dim, device=engine.device)
            manifold = (shown_net(z_grid) * scale).reshape(-1, MANIFOLD_RES, 2)
            if engine.coverage_noise is not None:
                coverage = mode_coverage(shown_net(engine.coverage_noise) * scale, data.modes, data.sigma)
    g_field = None
    if not image:
        with torch.enable_grad():
            x = fake.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss.g_loss(d_single(engine, x)) * len(x), x)
        g_field = _readonly(-grad)
    shown = (lambda t: _readonly(t[:, 0])) if image else (lambda t: _readonly(t * scale))
    return EvalFrame(
        step=engine.step_count,
        d_real_values=_readonly(loss.display(d_real)),
        d_fake_values=_readonly(loss.display(d_fake)),
        real=shown(engine.eval_real[:N_EVAL_IMAGES] if image else engine.eval_real),
        fake=shown(fake),
        surface=None if surface is None else _readonly(surface.reshape(SURFACE_RES, SURFACE_RES)),
        surface_extent=extent,
        g_field=g_field,
        value_estimate=value,
        modes_covered=None if coverage is None else coverage.modes_covered,
        n_modes=None if coverage is None else coverage.n_modes,
        hq_percent=None if coverage is None else coverage.hq_percent,
        generator="G (EMA of weights)" if has_ema else "G",
        fake_raw=shown(fake_raw) if has_ema else None,
        manifold=None if manifold is None else _readonly(manifold),
    )


def digit_scores(engine):
    """Classifier Inception Score and Fréchet distance of `engine.shown_generator` on fixed
    noise, as the digits benchmark scores it; None for other datasets."""
    if engine.config.dataset not in DIGIT_DATASETS:
        return None
    if engine._scorer is None:
        from .classifier import DigitScorer  # loads weights: only for digit runs

        engine._scorer = DigitScorer.bundled(engine.device)
    with torch.no_grad():
        return engine._scorer.score(engine.shown_generator(engine.score_noise))
