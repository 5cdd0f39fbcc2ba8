"""Run configuration: one frozen dataclass, validated on construction.

`TrainConfig` holds everything needed to rebuild a run. The fields in
`LIVE_FIELDS` may change while a run trains (the engine applies them between
steps, keeping weights and Adam's moment estimates); every other field is in
`FROZEN_FIELDS`, derived from the dataclass, and defines the networks, data or
the EMA copy of G: changing one needs a reset. That one set is what
`with_live`, `Engine.apply`, checkpoint restores and the page's Start button use.

Defaults follow DCGAN (Radford et al., 2016: Adam β₁ = 0.5) for digits and
the PacGAN 2-D setting (Lin et al., 2018) for the toys.
Not here: presets for lessons (`presets.py`), the engine itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .data import DATASET_NAMES, DOWNLOADABLE, IMAGE_DATASETS
from .losses import LOSSES


class ConfigError(ValueError):
    """A configuration value is out of range or of the wrong type."""


# Fields the engine reads afresh at every step, so changing them mid-run is well defined.
# The penalty weights (gp_weight, r1_gamma) and the lr schedule (lr_decay_*) are among them:
# the schedule is a function of the step count, so a change takes effect from the next step.
LIVE_FIELDS = (
    "loss",
    "g_lr",
    "d_lr",
    "beta1",
    "beta2",
    "n_critic",
    "label_smoothing",
    "two_sided_smoothing",
    "batch_size",
    "gp_weight",
    "r1_gamma",
    "lr_decay_steps",
    "lr_decay_final",
)

WGAN_GP_NEEDS_NO_BATCHNORM = (
    "WGAN-GP needs a discriminator without BatchNorm (its gradient penalty is per sample, and "
    "BatchNorm mixes the samples of a batch: Gulrajani et al., 2017, §4), and this digits run's D "
    "has BatchNorm. Choose WGAN-GP before pressing Start or Reset: the new D is built without it.")

# (min, max) for numeric fields; checked in __post_init__.
RANGES: dict[str, tuple[float, float]] = {
    "g_lr": (1e-6, 0.1),
    "d_lr": (1e-6, 0.1),
    "beta1": (0.0, 0.999),
    "beta2": (0.0, 0.9999),
    "n_critic": (1, 20),
    "label_smoothing": (0.0, 0.49),
    "batch_size": (8, 4096),
    "z_dim": (1, 256),
    "width": (4, 1024),
    "depth": (1, 8),
    "pack": (1, 8),
    "gp_weight": (0.0, 100.0),
    "r1_gamma": (0.0, 100.0),
    "ema_decay": (0.0, 0.9999),
    "lr_decay_steps": (0, 10_000_000),
    "lr_decay_final": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
}
INT_FIELDS = {"n_critic", "batch_size", "z_dim", "width", "depth", "pack", "seed", "lr_decay_steps"}


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "ring8"
    loss: str = "nonsaturating"
    g_lr: float = 1e-3
    d_lr: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int = 1  # discriminator steps per generator step (k in Goodfellow et al., Alg. 1)
    label_smoothing: float = 0.0  # real target 1 − s (Salimans et al., 2016)
    two_sided_smoothing: bool = False  # also fake target s
    batch_size: int = 256
    z_dim: int = 8
    width: int = 64  # hidden units (MLP) or base channels (DCGAN)
    depth: int = 3  # hidden layers of the MLPs; ignored by DCGAN
    pack: int = 1  # samples per D decision (PacGAN); 2-D only
    # BatchNorm in the DCGAN discriminator (digits only). None = DCGAN's choice for the loss the
    # run *starts* with: BatchNorm unless it is WGAN-GP. Resolved to True/False on construction and
    # frozen after, because a live loss change keeps the networks.
    d_batchnorm: bool | None = None
    gp_weight: float = 10.0  # λ of WGAN-GP
    # γ of the R1 penalty γ/2 · E‖∇D(x)‖² on real data (Mescheder et al., 2018); 0 = off.
    r1_gamma: float = 0.0
    # Exponential moving average of G's weights (Yazıcı et al., 2019); 0 = off. When on, the
    # page's samples and mode coverage and the quality benchmarks all show this EMA of G (the
    # raw G, whose dynamics are the lesson, stays in `EvalFrame.fake_raw`).
    ema_decay: float = 0.0
    # Linear learning-rate decay to `lr_decay_final` × lr over this many steps; 0 = off.
    lr_decay_steps: int = 0
    lr_decay_final: float = 0.05
    seed: int = 0
    device: str = "auto"  # "auto", "cpu" or "cuda[:n]"

    def __post_init__(self) -> None:
        if self.dataset not in (*DATASET_NAMES, "csv", *DOWNLOADABLE):
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of "
                              f"{', '.join((*DATASET_NAMES, 'csv', *DOWNLOADABLE))}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        for name, (lo, hi) in RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            if name in INT_FIELDS and not float(value).is_integer():
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
            if name in INT_FIELDS and not isinstance(value, int):
                object.__setattr__(self, name, int(value))
        if not isinstance(self.two_sided_smoothing, bool):
            raise ConfigError(f"two_sided_smoothing must be true or false, got {self.two_sided_smoothing!r}")
        if self.batch_size % self.pack:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of pack ({self.pack})")
        if self.pack > 1 and self.is_image:
            raise ConfigError("pack > 1 (PacGAN) is only available for 2-D data")
        if self.d_batchnorm is None:
            object.__setattr__(self, "d_batchnorm", self.is_image and self.loss != "wgan-gp")
        if not isinstance(self.d_batchnorm, bool):
            raise ConfigError(f"d_batchnorm must be true, false or null, got {self.d_batchnorm!r}")
        if self.d_batchnorm and not self.is_image:
            raise ConfigError("d_batchnorm applies to the digits discriminator only (the 2-D D is an MLP)")
        if self.d_batchnorm and self.loss == "wgan-gp":
            raise ConfigError(WGAN_GP_NEEDS_NO_BATCHNORM)
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu") or self.device.startswith("cuda")
        ):
            raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")

    @property
    def is_image(self) -> bool:
        return self.dataset in IMAGE_DATASETS

    def with_live(self, **changes: Any) -> "TrainConfig":
        """A copy with live fields changed; raises ConfigError for a frozen field or an
        invalid value (e.g. WGAN-GP for a D with BatchNorm)."""
        frozen = sorted(set(changes) - set(LIVE_FIELDS))
        if frozen:
            raise ConfigError(f"{', '.join(frozen)} cannot change while training; reset the run instead")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**data)


FROZEN_FIELDS = frozenset(f.name for f in fields(TrainConfig)) - set(LIVE_FIELDS)


def can_continue(running: TrainConfig, wanted: TrainConfig) -> bool:
    """Whether a run built from `running` can carry on with `wanted`'s settings.

    True when every frozen field agrees and `running.with_live` accepts `wanted`'s live
    fields. `d_batchnorm` is compared through that check rather than directly: a config
    built from the page's controls resolves it from its *current* loss, while a run's D
    keeps the BatchNorm choice of the loss it started with.
    """
    if any(getattr(running, f) != getattr(wanted, f) for f in FROZEN_FIELDS - {"d_batchnorm"}):
        return False
    try:
        running.with_live(**{f: getattr(wanted, f) for f in LIVE_FIELDS})
    except ConfigError:
        return False
    return True


# Ring-8 for a whole class. A class is done when its slowest students are, and a run trained in a
# class's cohort keeps a larger share of a solo run's speed at a small batch (30 runs: 0.43x at batch
# 64, 0.31x at 128, 0.20x at 256; `python -m benchmarks cohort`). So: batch 64, with the lr that gets
# the 28th of 30 seeds to 8/8 modes with >= 90 % HQ in the fewest multiples of a lone run's steps
# (`python -m benchmarks cohort_setting`, seeds 0-30: 14,400 steps for the 28th, 1.4-1.6x the median;
# batch 128 with lr 2e-3, the setting before: 9,800, 1.4x, at 0.31x the speed). The "whole_class"
# lesson uses it; a lone run keeps the default (why: `default_config`).
CLASSROOM_SETTING: dict[str, Any] = dict(batch_size=64, g_lr=2.5e-3, d_lr=2.5e-3, lr_decay_steps=25_000)


def default_config(dataset: str, **overrides: Any) -> TrainConfig:
    """The recommended starting configuration for `dataset`."""
    if dataset in IMAGE_DATASETS:
        # DCGAN (Adam β = (0.5, 0.999), z ∈ R^64) at CPU size: width 16 runs ~2× the steps/s
        # of width 32 for the same Inception Score per second; lr 5e-4 beat DCGAN's 2e-4 on
        # this 5k-digit set (BENCHMARKS.md). The EMA of G and lr decay steady the late phase;
        # the R1 penalty (γ = 3, lazy every 4 steps) took the 5-minute FD from ~93 to ~62 and the IS
        # from ~6.5 to ~7.0 (γ = 1 and 10 measured a little lower).
        base = dict(g_lr=5e-4, d_lr=5e-4, batch_size=64, z_dim=64, width=16, ema_decay=0.999,
                    lr_decay_steps=12_000, lr_decay_final=0.1, r1_gamma=3.0)
    elif dataset == "grid25":
        # 25 modes need a wider net and a stronger D: PacGAN2, k = 2 D steps per G step, G EMA
        # and lr decay reach 25/25 modes and 95-98 % HQ in 120 s on one core for seeds 0-2
        # (k = 1 left seed 2 at 87.5 %; pack 4 measured worse: 24/25 at 89 %). BENCHMARKS.md.
        base = dict(width=64, pack=2, n_critic=2, ema_decay=0.999, lr_decay_steps=80_000)
    else:
        # Measured (BENCHMARKS.md): PacGAN2 + an EMA of G + linear lr decay take ring-8 to
        # 8/8 modes and ≥ 95 % HQ in ~10 s on one CPU core, and keep it there. Alone, the cheaper
        # CLASSROOM_SETTING gets there later (seeds 0-2: 9.9 / 27.1 / 30.0 s against 10.2 / 12.1 /
        # 15.9 s) and ends lower at 60 s (95.6-97.4 % against 97.5-99.0 %;
        # docs/benchmarks/ring8_solo.json): a lone run keeps this default, and the quality
        # benchmarks are of it.
        base = dict(width=32, pack=2, ema_decay=0.999, lr_decay_steps=50_000)
    base.update(overrides)
    return TrainConfig(dataset=dataset, **base)
