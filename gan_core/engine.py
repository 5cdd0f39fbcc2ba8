"""One GAN training run and its training step, with live hyperparameters.

`Engine.step()` is one iteration of Goodfellow et al. (2014), Algorithm 1:
k = `n_critic` discriminator updates (`d_update`), each on a fresh real and
fake batch, then one generator update (`g_update`) on fresh noise; with
`r1_gamma` > 0, every `R1_EVERY`-th step adds one D update on the R1 penalty
(lazy regularisation), and with `ema_decay` > 0 an EMA of G follows each G
update. `d_update()` and `g_update()` are public so a lesson can step one
player alone. `Engine.apply(config)` changes the live fields of `TrainConfig`
between steps by editing the optimisers' `param_groups`, so weights and Adam's
moment estimates carry on.

Two interchangeable implementations of each update share the same parameters,
optimisers and losses: the 2-D MLPs back-propagate by hand (`handgrad.py`,
measured 1.9× this file's autograd path on the default ring-8 model), and
everything else (DCGAN digits, WGAN-GP's double back-prop) uses autograd.
`tests/test_engine.py` checks the two agree.

A caller that trains the networks itself (a cohort, `serve/cohort.py`) keeps
the engine's books through four public methods: `begin_step` (room for the row,
lr decay), `record_step` (counters), `ema_weight` (the EMA's warm-up rule) and
`set_last_stats`.

Per-step scalars go into a device tensor and are drained in chunks by the
runner (`drain_stats`); `evaluate()` renders the heavier telemetry (histograms,
samples, D's decision surface) with `evaluation.py`. Not here: threads
(`runner.py`), storage (`telemetry.py`), anything UI.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from . import evaluation, torch_ops
from .config import FROZEN_FIELDS, ConfigError, TrainConfig
from .data import make_dataset
from .evaluation import N_EVAL_IMAGES, N_EVAL_POINTS, N_SCORE_IMAGES, SURFACE_RES  # noqa: F401 (re-exported)
from .handgrad import HandGAN
from .losses import get_loss, gradient_penalty, r1_penalty, smoothed_targets
from .models import DCGANDiscriminator, DCGANGenerator, MLP, PackedDiscriminator
from .records import N_STATS, STAT_FIELDS, EvalFrame  # noqa: F401 (STAT_FIELDS re-exported)

STATS_CAPACITY = 4096  # rows buffered between drains
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

    Calls the same fused kernel `torch.optim.Adam(fused=True)` uses (through
    `torch_ops.fused_adam`, which falls back to public operations), on the
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
    torch_ops.fused_adam(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                         [s["exp_avg_sq"] for s in states], [s["step"] for s in states], lr=group["lr"],
                         beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


def _grad_norm(params: list[torch.Tensor]) -> torch.Tensor:
    """‖(∇θ₁, ∇θ₂, …)‖₂ over the `.grad` tensors, on the device (no host sync)."""
    return torch.linalg.vector_norm(torch.stack(torch_ops.foreach_norm([p.grad for p in params])))


def lr_scale(config: TrainConfig, step: int) -> float:
    """Factor of `config`'s linear lr decay at `step` (1 without decay)."""
    if not config.lr_decay_steps:
        return 1.0
    frac = min(1.0, step / config.lr_decay_steps)
    return 1.0 - (1.0 - config.lr_decay_final) * frac


class Engine:
    """Models, optimisers, data and the training step of one run.

    Counters: `step_count` counts steps (one stats row each: `step()`, or a lone
    `d_update()` / `g_update()`); `d_updates` / `g_updates` count the updates of
    each player on its GAN loss (lazy R1 updates are not counted). All three are
    saved in checkpoints.
    """

    def __init__(self, config: TrainConfig, csv_bytes: bytes | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.data = make_dataset(config.dataset, self.device, csv_bytes)
        self.rng = torch.Generator(self.device).manual_seed(config.seed)
        self._build_networks(config)
        self.stats = torch.zeros(STATS_CAPACITY, N_STATS, device=self.device)
        self.rows = 0  # stats rows since the last drain
        self.step_count = self.d_updates = self.g_updates = 0
        zero = torch.zeros((), device=self.device)
        self._last_d = (zero, zero, zero)  # d_loss, mean D(x), mean D(G(z)) of the last D update
        self._last_g = (zero, zero)  # g_loss, mean D(G(z)) of the last G update
        self.eval_real, self.eval_noise, self.coverage_noise, self.score_noise = \
            evaluation.fixed_inputs(self.data, config.z_dim, config.seed + 1, self.device)
        self._scorer = None  # DigitScorer, built on first use (digits only)
        self._allocate(config.batch_size)
        self.apply(config)

    def _build_networks(self, config: TrainConfig) -> None:
        init_rng = torch.Generator().manual_seed(config.seed)
        if self.data.is_image:
            self.G: nn.Module = DCGANGenerator(config.z_dim, config.width, init_rng)
            self.D: nn.Module = DCGANDiscriminator(config.width, config.d_batchnorm, init_rng)
        else:
            self.G = MLP(config.z_dim, 2, config.width, config.depth, init_rng, leak=0.0)  # ReLU G (DCGAN)
            self.D = PackedDiscriminator(config.width, config.depth, config.pack, generator=init_rng)
        self.G.to(self.device)
        self.D.to(self.device)
        self.g_params, self.d_params = list(self.G.parameters()), list(self.D.parameters())
        # Fused Adam: one kernel for all parameters (CPU and CUDA).
        betas = (config.beta1, config.beta2)
        self.g_opt = torch.optim.Adam(self.g_params, config.g_lr, betas, fused=True)
        self.d_opt = torch.optim.Adam(self.d_params, config.d_lr, betas, fused=True)
        for p in (*self.g_params, *self.d_params):
            p.grad = torch.zeros_like(p)
        self._hand = None if self.data.is_image else HandGAN(self.G, self.D)
        # EMA copy of G (parameters and BatchNorm buffers), updated after every G update.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if config.ema_decay > 0 else None

    # --- live hyperparameters ------------------------------------------------------

    def _allocate(self, batch_size: int) -> None:
        shape = (batch_size, *((1, 28, 28) if self.data.is_image else (2,)))
        self.real_buf = torch.empty(shape, device=self.device)
        self.both_buf = torch.empty((2 * batch_size, 2), device=self.device)  # hand path: [real; fake]
        self.z_buf = torch.empty(batch_size, self.config.z_dim, device=self.device)

    def apply(self, config: TrainConfig) -> None:
        """Apply live fields of `config` at the next step (weights and Adam state kept).

        Raises `ConfigError` if a field in `FROZEN_FIELDS` differs; the config itself
        was validated on construction (e.g. WGAN-GP never meets a D with BatchNorm).
        """
        old = self.config
        frozen = sorted(f for f in FROZEN_FIELDS if getattr(config, f) != getattr(old, f))
        if frozen:
            raise ConfigError(f"{', '.join(frozen)} cannot change while training; reset the run instead")
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
        """k = n_critic discriminator updates, then one generator update: one stats row."""
        self.begin_step()
        for _ in range(self.config.n_critic):
            self._train_d()
        self._train_g()
        self._end_step(d_trained=True, g_trained=True)

    def d_update(self) -> None:
        """One discriminator update alone, on a fresh real and fake batch, as one step.

        Its stats row holds this update's d_loss, d_real, d_fake and d_grad_norm; the
        G columns (g_loss, d_fake_g, g_grad_norm) repeat the last G update's values
        (zeros before the first), since G did not move.
        """
        self.begin_step()
        self._train_d()
        self._end_step(d_trained=True, g_trained=False)

    def g_update(self) -> None:
        """One generator update alone, on fresh noise, as one step (EMA of G follows).

        Its stats row holds this update's g_loss, d_fake_g and g_grad_norm; the D
        columns (d_loss, d_real, d_fake, d_grad_norm) repeat the last D update's
        values (zeros before the first), since D did not move.
        """
        self.begin_step()
        self._train_g()
        self._end_step(d_trained=False, g_trained=True)

    # --- a step trained outside the engine (serve/cohort.py) uses these four --------------

    def begin_step(self) -> torch.Tensor:
        """Start one step: check the statistics buffer has room for its row and set this step's
        learning rates (lr decay). Returns that row, a view in STAT_FIELDS order, for a caller
        that trains this engine's networks itself to fill before `record_step`."""
        if self.rows >= STATS_CAPACITY:
            raise RuntimeError("statistics buffer full: call drain_stats() more often")
        if self.config.lr_decay_steps:
            scale = self.lr_scale()
            self.g_opt.param_groups[0]["lr"] = self.config.g_lr * scale
            self.d_opt.param_groups[0]["lr"] = self.config.d_lr * scale
        return self.stats[self.rows]

    def record_step(self, d_updates: int, g_updates: int) -> float:
        """Count one step trained outside the engine, its `begin_step` row filled by the caller.

        Returns the weight with which G's EMA must now follow G (`ema_weight`), 0.0 without a
        G update; the caller moves the EMA, as `step()` would have.
        """
        self.rows += 1
        self.step_count += 1
        self.d_updates += d_updates
        self.g_updates += g_updates
        return self.ema_weight() if g_updates else 0.0

    def ema_weight(self) -> float:
        """1 − decay of G's EMA after the latest G update; 0.0 without an EMA.

        Warm-up as in TensorFlow's ExponentialMovingAverage(num_updates): early on the
        average follows G closely instead of lagging behind its initial weights.
        """
        if self.G_ema is None:
            return 0.0
        t = self.g_updates
        return 1.0 - min(self.config.ema_decay, (1 + t) / (10 + t))

    def set_last_stats(self, row: torch.Tensor) -> None:
        """Take the values a later lone `d_update()` / `g_update()` repeats in its row for the
        player that did not move from `row` (STAT_FIELDS order), e.g. a cohort's last row."""
        self._last_d = (row[0], row[2], row[3])
        self._last_g = (row[1], row[4])

    # --- the engine's own updates -----------------------------------------------------------

    def _end_step(self, d_trained: bool, g_trained: bool) -> None:
        (d_loss, d_real, d_fake), (g_loss, d_fake_g) = self._last_d, self._last_g
        with torch.no_grad():
            torch.stack([d_loss, g_loss, d_real, d_fake, d_fake_g, _grad_norm(self.g_params),
                         _grad_norm(self.d_params)], out=self.stats[self.rows])
        self.rows += 1
        self.step_count += 1
        if d_trained and self.config.r1_gamma and self.step_count % R1_EVERY == 0:
            self._r1_update()
        if g_trained and self.G_ema is not None:
            self._update_ema()

    def _train_d(self) -> None:
        """One D update; keeps (d_loss, mean D(x), mean D(G(z))) for the stats row."""
        d_loss, d_real, d_fake = self._d_grads_by_hand() if self._use_fast else self._d_grads_autograd()
        adam_step(self.d_opt)
        show = self.loss.display
        with torch.no_grad():
            self._last_d = (d_loss.detach(), show(d_real).mean(), show(d_fake).mean())
        self.d_updates += 1

    def _train_g(self) -> None:
        """One G update; keeps (g_loss, mean D(G(z))) for the stats row."""
        self.z_buf.normal_(generator=self.rng)
        if self._use_fast:
            d_fake = self._hand.g_backward(self.z_buf, self.loss)
            g_loss = self.loss.g_loss(d_fake)
        else:
            d_fake = self.D(self.G(self.z_buf))
            g_loss = self.loss.g_loss(d_fake)
            torch_ops.foreach_copy_([p.grad for p in self.g_params], torch.autograd.grad(g_loss, self.g_params))
        adam_step(self.g_opt)
        with torch.no_grad():
            self._last_g = (g_loss.detach(), self.loss.display(d_fake).mean())
        self.g_updates += 1

    @torch.no_grad()
    def _d_grads_by_hand(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D's gradient on a fresh real and fake batch into `.grad`; returns (d_loss, d_real, d_fake)."""
        B = self.config.batch_size
        real_and_fake = self.both_buf  # (2B, 2): real rows, then fake rows
        self.data.sample(B, self.rng, out=real_and_fake[:B])
        self.z_buf.normal_(generator=self.rng)
        real_and_fake[B:] = self._hand.generate(self.z_buf)
        d_real, d_fake = self._hand.d_backward(real_and_fake, self.loss, self.real_target, self.fake_target)
        return self.loss.d_loss(d_real, d_fake, self.real_target, self.fake_target), d_real, d_fake

    def _d_grads_autograd(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """As `_d_grads_by_hand`, with autograd (any network; WGAN-GP's penalty)."""
        real = self.data.sample(self.config.batch_size, self.rng, out=self.real_buf)
        self.z_buf.normal_(generator=self.rng)
        with torch.no_grad():
            fake = self.G(self.z_buf)
        d_real, d_fake = self.D(real), self.D(fake)  # separate batches: BatchNorm statistics per batch (DCGAN)
        d_loss = self.loss.d_loss(d_real, d_fake, self.real_target, self.fake_target)
        if self.loss.gradient_penalty:
            # One interpolate per D decision: a packed D (PacGAN) is a function of the whole pack.
            packs = len(real) // (1 if self.data.is_image else self.config.pack)
            gp = gradient_penalty(lambda x: self.D(x.reshape(real.shape)), real.reshape(packs, -1),
                                  fake.reshape(packs, -1), self.rng)
            d_loss = d_loss + self.config.gp_weight * gp
        torch_ops.foreach_copy_([p.grad for p in self.d_params], torch.autograd.grad(d_loss, self.d_params))
        return d_loss, d_real, d_fake

    def lr_scale(self) -> float:
        """Factor of the linear lr decay at the current step (1 without decay)."""
        return lr_scale(self.config, self.step_count)

    @torch.no_grad()
    def _update_ema(self) -> None:
        torch_ops.foreach_lerp_(list(self.G_ema.parameters()), self.g_params, self.ema_weight())
        buffers = list(self.G.buffers())
        if buffers:
            torch_ops.foreach_copy_(list(self.G_ema.buffers()), buffers)

    def _r1_update(self) -> None:
        """Lazy R1 (Mescheder et al., 2018; lazy as in Karras et al., 2020): a D update on
        γ/2 · E‖∇ₓD(x)‖² · R1_EVERY over a fresh real batch, every R1_EVERY steps."""
        real = self.data.sample(self.config.batch_size, self.rng, out=self.real_buf)
        penalty = 0.5 * self.config.r1_gamma * R1_EVERY * r1_penalty(self.D, real)
        # D's last bias has no x-gradient: autograd returns zeros for it.
        grads = torch.autograd.grad(penalty, self.d_params, materialize_grads=True)
        torch_ops.foreach_copy_([p.grad for p in self.d_params], grads)
        adam_step(self.d_opt)

    def stats_room(self) -> int:
        """Steps that fit in the statistics buffer before the next `drain_stats()`."""
        return STATS_CAPACITY - self.rows

    def drain_stats(self) -> np.ndarray:
        """Per-step statistics since the last drain, (n, N_STATS) float64 on the host."""
        rows = self.stats[: self.rows].double().cpu().numpy()
        self.rows = 0
        return rows

    # --- evaluation (evaluation.py) -----------------------------------------------------

    def parameters_finite(self) -> bool:
        params = [*self.G.parameters(), *self.D.parameters()]
        return bool(torch.isfinite(torch.stack(torch_ops.foreach_norm(params))).all())

    @property
    def shown_generator(self) -> nn.Module:
        """The net the page shows and the benchmarks score: G's EMA when kept, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    def evaluate(self) -> EvalFrame:
        """The heavy telemetry frame on the fixed inputs (`evaluation.eval_frame`)."""
        return evaluation.eval_frame(self)

    def digit_scores(self):
        """Classifier IS and FD of `shown_generator` on fixed noise; None unless digits."""
        return evaluation.digit_scores(self)

    def sample(self, n: int, seed: int = 0, ema: bool = False) -> torch.Tensor:
        """n fresh samples from G, or from its EMA when `ema` and enabled (no training RNG consumed)."""
        g = torch.Generator(self.device).manual_seed(seed)
        net = self.shown_generator if ema else self.G
        with torch.no_grad():
            return net(torch.randn(n, self.config.z_dim, device=self.device, generator=g)) * self.data.scale
