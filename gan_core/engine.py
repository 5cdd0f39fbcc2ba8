"""One GAN training run and its training step, with live hyperparameters.

`Engine.step()` is one iteration of Goodfellow et al. (2014), Algorithm 1:
k = `n_critic` discriminator updates, each on a fresh real and fake batch, then
one generator update; with `r1_gamma` > 0, every `R1_EVERY`-th step adds one
D update on the R1 penalty (lazy regularisation). `Engine.apply(config)`
changes the live fields of `TrainConfig` between steps by editing the optimisers' `param_groups`, so
weights and Adam's moment estimates carry on.

Two interchangeable implementations of the step share the same parameters,
optimisers and losses:
- `_fast_step`: the 2-D MLPs, back-propagated by hand with preallocated
  buffers (no autograd graph, no host syncs); ~2-3× the throughput of a
  naive loop because at this size Python and allocation overhead dominate.
- `_autograd_step`: everything else (DCGAN digits, WGAN-GP's double backprop).
`tests/test_engine.py` checks the two agree.

Per-step scalars go into a device tensor and are drained in chunks by the
runner (`drain_stats`); `evaluate()` renders the heavier telemetry (histograms,
samples, D's decision surface). Not here: threads (`runner.py`), storage
(`telemetry.py`), anything UI.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .data import DIGIT_DATASETS, make_dataset
from .losses import get_loss, gradient_penalty, r1_penalty, smoothed_targets
from .metrics import N_COVERAGE_SAMPLES, mode_coverage
from .models import DCGANDiscriminator, DCGANGenerator, MLP, PackedDiscriminator
from .records import N_STATS, STAT_FIELDS, EvalFrame

STATS_CAPACITY = 4096  # rows buffered between drains
SURFACE_RES = 48  # D decision-surface grid resolution (per axis)
N_EVAL_POINTS = 512  # fixed real / noise points shown in plots
N_EVAL_IMAGES = 64  # fixed noise images shown as a grid
N_SCORE_IMAGES = 500  # fixed noise images scored by the digit classifier
MANIFOLD_RES = 15  # G's manifold: grid lines per axis of the (z₁, z₂) slice
MANIFOLD_SPAN = 2.0  # … over z₁, z₂ in [-2, 2] (±2σ of the N(0, I) prior), other coordinates 0
R1_EVERY = 4  # lazy R1: one penalty-only D update every R1_EVERY steps, scaled by R1_EVERY (StyleGAN2)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    return device


def adam_step(opt: torch.optim.Adam) -> None:
    """`opt.step()` for a fused, single-group Adam, minus ~140 µs of Python.

    Calls the same fused kernel `torch.optim.Adam(fused=True)` uses, on the
    optimizer's own state, so `param_groups` edits, `state_dict()` and
    `load_state_dict()` work unchanged. The first step goes through `opt.step()`
    to create the state. `tests/test_engine.py` checks both give identical results.
    """
    (group,) = opt.param_groups
    params = group["params"]
    if len(opt.state) < len(params):
        opt.step()
        return
    states = [opt.state[p] for p in params]
    beta1, beta2 = group["betas"]
    steps = [s["step"] for s in states]
    torch._foreach_add_(steps, 1)  # the kernel reads t for bias correction but does not advance it
    torch._fused_adam_(
        params,
        [p.grad for p in params],
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [],
        steps,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        amsgrad=False,
        maximize=False,
    )


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


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


class _HandMLP:
    """Forward/backward of a `models.MLP` by hand, on its own parameter tensors.

    Layer l: aₗ₊₁ = leaky_relu(aₗ Wₗᵀ + bₗ) (no activation after the last).
    Backward: ∂W = gᵀ a, ∂b = Σ g, ∂a = g W, then through the LeakyReLU.
    Gradients are written into `grads` (the parameters' `.grad` tensors).
    """

    def __init__(self, mlp: MLP) -> None:
        self.params = [t for layer in mlp.linears for t in (layer.weight, layer.bias)]
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.grads = [p.grad for p in self.params]
        self.n = len(mlp.linears)
        self.leak = mlp.leak

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        acts = [x]
        for l in range(self.n):
            h = torch.addmm(self.params[2 * l + 1], acts[-1], self.params[2 * l].t())
            if l < self.n - 1:
                h = torch.nn.functional.leaky_relu(h, self.leak)
            acts.append(h)
        return acts

    def backward(self, acts: list[torch.Tensor], g: torch.Tensor, *, param_grads: bool) -> torch.Tensor:
        """Back-propagate g = ∂L/∂output; returns ∂L/∂input."""
        for l in reversed(range(self.n)):
            if param_grads:
                torch.mm(g.t(), acts[l], out=self.grads[2 * l])
                torch.sum(g, 0, out=self.grads[2 * l + 1])
            g = torch.mm(g, self.params[2 * l])
            if l > 0:
                g = torch.ops.aten.leaky_relu_backward(g, acts[l], self.leak, True)
        return g


class Engine:
    """Models, optimisers, data and the training step of one run."""

    def __init__(self, config: TrainConfig, csv_bytes: bytes | None = None) -> None:
        self.device = resolve_device(config.device)
        self.data = make_dataset(config.dataset, self.device, csv_bytes)
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        init_rng = torch.Generator().manual_seed(config.seed)
        if self.data.is_image:
            self.G: nn.Module = DCGANGenerator(config.z_dim, config.width, init_rng)
            self.D: nn.Module = DCGANDiscriminator(config.width, batchnorm=config.loss != "wgan-gp",
                                                   generator=init_rng)
        else:
            self.G = MLP(config.z_dim, 2, config.width, config.depth, init_rng, leak=0.0)  # ReLU G (DCGAN)
            self.D = PackedDiscriminator(config.width, config.depth, config.pack, generator=init_rng)
        self.G.to(self.device)
        self.D.to(self.device)
        # Fused Adam: one kernel for all parameters (CPU and CUDA).
        self.g_opt = torch.optim.Adam(self.G.parameters(), config.g_lr, (config.beta1, config.beta2), fused=True)
        self.d_opt = torch.optim.Adam(self.D.parameters(), config.d_lr, (config.beta1, config.beta2), fused=True)
        for p in (*self.G.parameters(), *self.D.parameters()):
            p.grad = torch.zeros_like(p)
        self._hand = None if self.data.is_image else (_HandMLP(self.G), _HandMLP(self.D.mlp))
        # EMA copy of G (parameters and BatchNorm buffers), updated after every G step.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema_decay > 0 else None
        self.stats = torch.zeros(STATS_CAPACITY, N_STATS, device=self.device)
        self.rows = 0  # stats rows since the last drain
        self.step_count = 0
        # Fixed evaluation inputs: the same real points and noise every frame.
        eval_rng = torch.Generator(self.device).manual_seed(config.seed + 1)
        n_eval = N_EVAL_IMAGES if self.data.is_image else N_EVAL_POINTS
        self.eval_real = self.data.sample(n_eval if not self.data.is_image else 256, eval_rng).clone()
        self.eval_noise = torch.randn(n_eval, config.z_dim, device=self.device, generator=eval_rng)
        self.coverage_noise = (
            torch.randn(N_COVERAGE_SAMPLES, config.z_dim, device=self.device, generator=eval_rng)
            if getattr(self.data, "modes", None) is not None else None
        )
        self.score_noise = (torch.randn(N_SCORE_IMAGES, config.z_dim, device=self.device, generator=eval_rng)
                            if self.data.is_image else None)
        self._scorer = None  # DigitScorer, built on first use (digits only)
        self.config = config
        self._allocate(config.batch_size)
        self.apply(config)

    # --- live hyperparameters ------------------------------------------------------

    def _allocate(self, batch_size: int) -> None:
        shape = (batch_size, *((1, 28, 28) if self.data.is_image else (2,)))
        self.real_buf = torch.empty(shape, device=self.device)
        self.both_buf = torch.empty((2 * batch_size, 2), device=self.device)  # fast path: [real; fake]
        self.z_buf = torch.empty(batch_size, self.config.z_dim, device=self.device)

    def apply(self, config: TrainConfig) -> None:
        """Apply live fields of `config` at the next step (weights and Adam state kept)."""
        old = self.config
        frozen = [f for f in ("dataset", "z_dim", "width", "depth", "pack", "seed", "device", "ema_decay",
                              "lr_decay_steps", "lr_decay_final")
                  if getattr(config, f) != getattr(old, f)]
        if frozen:
            raise ValueError(f"{', '.join(frozen)} cannot change without a reset")
        for opt, lr in ((self.g_opt, config.g_lr), (self.d_opt, config.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (config.beta1, config.beta2)
        if config.batch_size != old.batch_size:
            self._allocate(config.batch_size)
        self.loss = get_loss(config.loss)
        targets = smoothed_targets(config.label_smoothing, config.two_sided_smoothing)
        self.real_target, self.fake_target = targets if self.loss.uses_targets else (1.0, 0.0)
        self.config = config
        self._use_fast = self._hand is not None and not self.loss.gradient_penalty

    # --- the training step ----------------------------------------------------------

    def step(self) -> None:
        """k discriminator updates, then one generator update."""
        if self.rows >= STATS_CAPACITY:
            raise RuntimeError("statistics buffer full: call drain_stats() more often")
        row = self.stats[self.rows]
        if self.config.lr_decay_steps:
            self._decay_lr()
        if self._use_fast:
            self._fast_step(row)
        else:
            self._autograd_step(row)
        self.rows += 1
        self.step_count += 1
        if self.config.r1_gamma and self.step_count % R1_EVERY == 0:
            self._r1_step()
        if self.G_ema is not None:
            self._update_ema()

    def lr_scale(self) -> float:
        """Factor of the linear lr decay at the current step (1 without decay)."""
        cfg = self.config
        if not cfg.lr_decay_steps:
            return 1.0
        frac = min(1.0, self.step_count / cfg.lr_decay_steps)
        return 1.0 - (1.0 - cfg.lr_decay_final) * frac

    def _decay_lr(self) -> None:
        scale = self.lr_scale()
        self.g_opt.param_groups[0]["lr"] = self.config.g_lr * scale
        self.d_opt.param_groups[0]["lr"] = self.config.d_lr * scale

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up as in TensorFlow's ExponentialMovingAverage(num_updates): early on
        # the average follows G closely instead of lagging behind its initial weights.
        t = self.step_count
        decay = min(self.config.ema_decay, (1 + t) / (10 + t))
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - decay)
        buffers = list(self.G.buffers())
        if buffers:
            torch._foreach_copy_(list(self.G_ema.buffers()), buffers)

    def _r1_step(self) -> None:
        """Lazy R1 (Mescheder et al., 2018; lazy as in Karras et al., 2020): a D update on
        γ/2 · E‖∇ₓD(x)‖² · R1_EVERY over a fresh real batch, every R1_EVERY steps."""
        real = self.data.sample(self.config.batch_size, self.rng, out=self.real_buf)
        params = list(self.D.parameters())
        penalty = 0.5 * self.config.r1_gamma * R1_EVERY * r1_penalty(self.D, real)
        # D's last bias has no x-gradient: autograd returns zeros for it.
        grads = torch.autograd.grad(penalty, params, materialize_grads=True)
        torch._foreach_copy_([p.grad for p in params], grads)
        adam_step(self.d_opt)

    def _fast_step(self, row: torch.Tensor) -> None:
        cfg, loss, (hg, hd) = self.config, self.loss, self._hand
        B = cfg.batch_size
        pack = cfg.pack
        with torch.no_grad():
            for _ in range(cfg.n_critic):
                self.data.sample(B, self.rng, out=self.both_buf[:B])
                self.z_buf.normal_(generator=self.rng)
                self.both_buf[B:] = hg.forward(self.z_buf)[-1]
                acts = hd.forward(self.both_buf.view(2 * B // pack, 2 * pack))
                out = acts[-1]
                r, f = out[: B // pack], out[B // pack:]
                g_r, g_f = loss.d_grad(r, f, self.real_target, self.fake_target)
                hd.backward(acts, torch.cat([g_r, g_f]), param_grads=True)
                adam_step(self.d_opt)
            d_loss = loss.d_loss(r, f, self.real_target, self.fake_target)
            shown = loss.display(out)
            d_grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(hd.grads)))

            self.z_buf.normal_(generator=self.rng)
            g_acts = hg.forward(self.z_buf)
            d_acts = hd.forward(g_acts[-1].view(B // pack, 2 * pack))
            f_g = d_acts[-1]
            g_x = hd.backward(d_acts, loss.g_grad(f_g), param_grads=False)
            hg.backward(g_acts, g_x.view(B, 2), param_grads=True)
            adam_step(self.g_opt)
            g_loss = loss.g_loss(f_g)
            g_grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(hg.grads)))
            torch.stack([d_loss, g_loss, shown[: B // pack].mean(), shown[B // pack:].mean(),
                         loss.display(f_g).mean(), g_grad_norm, d_grad_norm], out=row)

    def _autograd_step(self, row: torch.Tensor) -> None:
        cfg, loss = self.config, self.loss
        g_params, d_params = list(self.G.parameters()), list(self.D.parameters())
        for _ in range(cfg.n_critic):
            real = self.data.sample(cfg.batch_size, self.rng, out=self.real_buf)
            self.z_buf.normal_(generator=self.rng)
            with torch.no_grad():
                fake = self.G(self.z_buf)
            r, f = self.D(real), self.D(fake)  # separate batches: BatchNorm statistics per batch (DCGAN)
            d_loss = loss.d_loss(r, f, self.real_target, self.fake_target)
            if loss.gradient_penalty:
                # One interpolate per D decision: a packed D (PacGAN) is a function of the whole pack.
                packs = len(real) // (1 if self.data.is_image else cfg.pack)
                gp = gradient_penalty(lambda x: self.D(x.reshape(real.shape)), real.reshape(packs, -1),
                                      fake.reshape(packs, -1), self.rng)
                d_loss = d_loss + cfg.gp_weight * gp
            grads = torch.autograd.grad(d_loss, d_params)
            torch._foreach_copy_([p.grad for p in d_params], grads)
            adam_step(self.d_opt)
        self.z_buf.normal_(generator=self.rng)
        f_g = self.D(self.G(self.z_buf))
        g_loss = loss.g_loss(f_g)
        grads = torch.autograd.grad(g_loss, g_params)
        torch._foreach_copy_([p.grad for p in g_params], grads)
        adam_step(self.g_opt)
        with torch.no_grad():
            norm = lambda ps: torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad for p in ps])))
            torch.stack([d_loss.detach(), g_loss.detach(), loss.display(r).mean(), loss.display(f).mean(),
                         loss.display(f_g).mean(), norm(g_params), norm(d_params)], out=row)

    def drain_stats(self) -> np.ndarray:
        """Per-step statistics since the last drain, (n, N_STATS) float64 on the host."""
        rows = self.stats[: self.rows].double().cpu().numpy()
        self.rows = 0
        return rows

    # --- evaluation -------------------------------------------------------------------

    @property
    def d_has_batchnorm(self) -> bool:
        """WGAN-GP's per-sample gradient penalty is ill-defined through BatchNorm (Gulrajani
        et al., 2017, §4); a DCGAN D built for another loss has it."""
        return any(isinstance(m, nn.BatchNorm2d) for m in self.D.modules())

    def parameters_finite(self) -> bool:
        params = [*self.G.parameters(), *self.D.parameters()]
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(params))).all())

    def _d_single(self, x: torch.Tensor) -> torch.Tensor:
        """D's raw output per sample; a packed D sees each point repeated `pack` times."""
        if not self.data.is_image and self.config.pack > 1:
            x = x.repeat_interleave(self.config.pack, 0)
        return self.D(x)

    def evaluate(self) -> EvalFrame:
        """Render the heavy telemetry on the fixed real batch and fixed noise (in data units)."""
        loss, scale = self.loss, self.data.scale
        with torch.no_grad():
            fake = self.G(self.eval_noise)
            d_real_raw = self._d_single(self.eval_real).flatten()
            d_fake_raw = self._d_single(fake).flatten()
            value = None
            if loss.is_probability:
                # V(D, G) (Goodfellow et al., Eq. 1) = −(BCE(real, 1) + BCE(fake, 0)).
                value = -float(loss.d_loss(d_real_raw, d_fake_raw, 1.0, 0.0))
            surface = extent = g_field = manifold = None
            covered = n_modes = hq = None
            if not self.data.is_image:
                x0, x1, y0, y1 = extent = self.data.bounds
                xs = torch.linspace(x0, x1, SURFACE_RES, device=self.device)
                ys = torch.linspace(y0, y1, SURFACE_RES, device=self.device)
                grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
                surface = loss.display(self._d_single(grid / scale)).reshape(SURFACE_RES, SURFACE_RES)
                z_grid = manifold_noise(self.config.z_dim, device=self.device)
                manifold = (self.G(z_grid) * scale).reshape(-1, MANIFOLD_RES, 2)
                if self.coverage_noise is not None:
                    cov = mode_coverage(self.G(self.coverage_noise) * scale, self.data.modes, self.data.sigma)
                    covered, n_modes, hq = cov.modes_covered, cov.n_modes, cov.hq_percent
        if not self.data.is_image:
            with torch.enable_grad():
                x = fake.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(loss.g_loss(self._d_single(x)) * len(x), x)
            g_field = -grad
        as_np = lambda t: _readonly(t.detach().float().cpu().numpy())
        if self.data.is_image:
            real_np, fake_np = as_np(self.eval_real[:N_EVAL_IMAGES, 0]), as_np(fake[:, 0])
        else:
            real_np, fake_np = as_np(self.eval_real * scale), as_np(fake * scale)
        return EvalFrame(
            step=self.step_count,
            d_real_values=as_np(loss.display(d_real_raw)),
            d_fake_values=as_np(loss.display(d_fake_raw)),
            real=real_np,
            fake=fake_np,
            surface=None if surface is None else as_np(surface),
            surface_extent=extent,
            g_field=None if g_field is None else as_np(g_field),
            value_estimate=value,
            modes_covered=covered,
            n_modes=n_modes,
            hq_percent=hq,
            manifold=None if manifold is None else as_np(manifold),
        )

    def digit_scores(self):
        """Classifier Inception Score and Fréchet distance of G on fixed noise (digits only)."""
        if self.config.dataset not in DIGIT_DATASETS:
            return None
        if self._scorer is None:
            from .classifier import DigitScorer  # loads weights: only for digit runs

            self._scorer = DigitScorer.bundled(self.device)
        with torch.no_grad():
            return self._scorer.score(self.G(self.score_noise))

    def sample(self, n: int, seed: int = 0, ema: bool = False) -> torch.Tensor:
        """n fresh samples from G, or from its EMA when `ema` and enabled (no training RNG consumed)."""
        g = torch.Generator(self.device).manual_seed(seed)
        net = self.G_ema if ema and self.G_ema is not None else self.G
        with torch.no_grad():
            return net(torch.randn(n, self.config.z_dim, device=self.device, generator=g)) * self.data.scale
