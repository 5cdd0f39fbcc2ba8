"""The page's controls as one typed value, and what a run's setup is.

What it is: the choices each control offers, `Controls` (every Setup and live control plus the
lesson, in the order app.py lists them) and `LiveControls` (the ones that act on a running GAN),
how they turn into a `TrainConfig` and back, and the *setup* of a run — what Start compares to
decide between resuming and starting afresh. What it is not: the buttons (`buttons.py`) or the
engine's own validation (`gan_core.config`, which every value still goes through).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import astuple, dataclass, fields, replace

from gan_core.config import FROZEN_FIELDS, ConfigError, TrainConfig, default_config
from gan_core.data import IMAGE_DATASETS
from gan_core.losses import LOSSES

from .presets import PRESETS, get_preset
from .uploads import refusal

DATASET_CHOICES = [
    ("Ring of 8 Gaussians", "ring8"),
    ("Ring of 8 (wide, easier to see)", "ring8_wide"),
    ("5×5 grid of Gaussians", "grid25"),
    ("Spiral", "spiral"),
    ("Two moons", "moons"),
    ("MNIST digits (bundled, 28×28)", "digits"),
    ("Full MNIST, 60k (downloads via torchvision)", "mnist_full"),
    ("Fashion-MNIST (downloads via torchvision)", "fashion"),
    ("My own 2-D points (CSV upload or drawing)", "csv"),
]
LOSS_CHOICES = [(loss.title, name) for name, loss in LOSSES.items()]
SIZE_CHOICES = ["small", "medium", "large"]
WIDTHS = {"toy": {"small": 32, "medium": 64, "large": 128}, "digits": {"small": 16, "medium": 32, "large": 64}}
PRESET_CHOICES = [("Free play (choose everything yourself)", "")] + [(p.title, name) for name, p in PRESETS.items()]
# Speed control (slow motion): label, value; "max" = as fast as the machine goes.
SPEED_CHOICES = [("Full speed", "max"), ("100 steps/s", "100"), ("10 steps/s", "10"), ("1 step/s", "1")]
START_DATASET = "ring8"  # what a fresh page shows

# What defines a run: the fields that cannot change mid-run, plus the batch size (live in the engine,
# but a Setup control on this page), the lesson and the CSV data. Start with the same setup resumes;
# any difference starts a fresh run. d_batchnorm is left to gan_core's `can_continue`: the controls
# resolve it from their loss, while a run's D keeps the choice of the loss it started with.
SETUP_FIELDS = (*sorted(FROZEN_FIELDS - {"d_batchnorm"}), "batch_size")
SETUP_WORDS = {"lesson": "lesson", "csv": "CSV data", "dataset": "dataset", "width": "network size",
               "batch_size": "batch size", "seed": "seed"}


@dataclass(frozen=True)
class LiveControls:
    """The controls that act on a running GAN at its next step (no restart)."""

    loss: str
    g_lr_log10: float
    d_lr_log10: float
    n_critic: int
    label_smoothing: float
    two_sided: bool

    def changes(self) -> dict:
        """`TrainConfig.with_live` keyword arguments; a `refusal` on a value that is not a number."""
        try:
            return dict(loss=self.loss, **live_values(self.g_lr_log10, self.d_lr_log10, self.n_critic,
                                                      self.label_smoothing, self.two_sided))
        except ConfigError as exc:
            raise refusal(str(exc)) from None

    @classmethod
    def of(cls, config: TrainConfig) -> "LiveControls":
        return cls(config.loss, round(math.log10(config.g_lr), 2), round(math.log10(config.d_lr), 2),
                   config.n_critic, config.label_smoothing, config.two_sided_smoothing)


@dataclass(frozen=True)
class Controls:
    """Every control a run is built from, in the order app.py lists them (`COMPONENTS`)."""

    dataset: str
    size: str
    batch_size: int
    seed: int
    loss: str
    g_lr_log10: float
    d_lr_log10: float
    n_critic: int
    label_smoothing: float
    two_sided: bool
    lesson: str = ""

    @property
    def live(self) -> LiveControls:
        return LiveControls(**{name: getattr(self, name) for name in LIVE_COMPONENTS})

    def config(self) -> TrainConfig:
        """The TrainConfig these controls describe; a `refusal` on a bad value.

        A lesson preset for the same dataset supplies the fields that have no control
        (packing, Adam betas, …); the controls override the rest.
        """
        try:
            if self.size not in SIZE_CHOICES:
                raise ConfigError(f"model size must be one of {', '.join(SIZE_CHOICES)}, got {self.size!r}")
            if self.dataset not in dict((v, k) for k, v in DATASET_CHOICES):
                raise ConfigError(f"unknown dataset {self.dataset!r}")
            width = WIDTHS["digits" if self.dataset in IMAGE_DATASETS else "toy"][self.size]
            values = dict(width=width, batch_size=self.batch_size, seed=self.seed, **self.live.changes())
            preset = PRESETS.get(self.lesson or "")
            if preset is not None and preset.config.dataset == self.dataset:
                return replace(preset.config, d_batchnorm=None, **values)  # D follows the chosen loss
            return default_config(self.dataset, **values)
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(str(exc)) from None

    def values(self) -> tuple:
        """The values in component order (what a Gradio event returns to the controls)."""
        return astuple(self)

    @classmethod
    def of(cls, config: TrainConfig, lesson: str = "") -> "Controls":
        """The control values that describe `config` (its size the nearest of SIZE_CHOICES)."""
        widths = WIDTHS["digits" if config.is_image else "toy"]
        size = min(widths, key=lambda k: abs(widths[k] - config.width))
        return cls(config.dataset, size, config.batch_size, config.seed, *astuple(LiveControls.of(config)), lesson)

    @classmethod
    def for_lesson(cls, lesson: str) -> "Controls":
        return cls.of(get_preset(lesson).config, lesson)

    @classmethod
    def start(cls) -> "Controls":
        """A fresh page's controls."""
        return cls.of(default_config(START_DATASET))


COMPONENTS = tuple(f.name for f in fields(Controls))  # app.py lists the components in this order
LIVE_COMPONENTS = tuple(f.name for f in fields(LiveControls))


def live_values(g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided) -> dict:
    """Live `TrainConfig` fields from the sliders (log10 learning rates); ConfigError if not numbers."""
    for name, v in (("G learning rate", g_lr_log10), ("D learning rate", d_lr_log10)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} (log₁₀) must be a finite number, got {v!r}")
    # Two significant digits: the log slider's 10^-1.7 means 0.02, as a preset or a person would write it.
    lr = lambda x: float(f"{10.0 ** x:.2g}")
    return dict(g_lr=lr(g_lr_log10), d_lr=lr(d_lr_log10), n_critic=n_critic,
                label_smoothing=label_smoothing, two_sided_smoothing=two_sided)


def defaults_for(dataset: str) -> tuple:
    """What choosing `dataset` sets: (live controls…, batch size) of its default config."""
    if dataset not in dict((v, k) for k, v in DATASET_CHOICES):
        raise refusal(f"unknown dataset {dataset!r}")
    cfg = default_config(dataset if dataset != "csv" else "moons")
    return (*astuple(LiveControls.of(cfg)), cfg.batch_size)


def setup_of(config: TrainConfig, lesson: str = "", csv_bytes: bytes | None = None) -> dict:
    """The identity of a run's setup (see SETUP_FIELDS): equal setups continue, different ones restart."""
    setup = {name: getattr(config, name) for name in SETUP_FIELDS}
    setup["lesson"] = lesson or ""
    setup["csv"] = hashlib.sha256(csv_bytes).hexdigest() if csv_bytes is not None else None
    return setup


def setup_changes(old: dict, new: dict) -> list[str]:
    """What differs between two setups, in words for the status line (e.g. ["lesson", "seed"])."""
    changed = [name for name in new if old.get(name) != new[name]]
    words = [SETUP_WORDS.get(name, name.replace("_", " ")) for name in changed]
    return list(dict.fromkeys(words))
