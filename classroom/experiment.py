"""A class experiment: one hyperparameter spread over a range, one value per student, and the outcome.

What it is: `Experiment` (which hyperparameter, its range or, for the loss, its categories:
validated when made, with a message a teacher understands), `Experiment.values(n)` (n values
spread over the range: log-spaced for learning rates, evenly for k and label smoothing, the
categories in turn for the loss), `outcome_of(snapshot)` (what the class compares across
students: modes covered, high-quality share, the mean D(G(z)) of the last steps and the steps it
took to cover every mode) and `table_csv` (the class's table as a CSV a spreadsheet opens safely).

Why one value per student: a class of thirty is thirty runs of the same GAN; spread over a range
they trace the outcome as a function of the hyperparameter in one lesson (the "learning-rate
sweep" of a paper's ablation, done by the room). Values are given in member-number order, so a
student keeps their value when the teacher assigns again with the same class.

Not here: who is in the class (`classes.py`), restarting the runs (`classbuttons.py`), the plot
(`classview.py`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from gan_core.losses import LOSSES
from gan_core.records import column
from gan_core.telemetry import Snapshot


@dataclass(frozen=True)
class Parameter:
    """A hyperparameter a class experiment can vary: its words, its bounds and its default range."""

    label: str
    kind: str  # "log" (learning rates), "int" (k), "linear" (smoothing), "category" (loss)
    bounds: tuple[float, float] = (0.0, 0.0)  # what the page's controls allow
    default: tuple[float, float] = (0.0, 0.0)


PARAMETERS = {
    "d_lr": Parameter("D learning rate", "log", (1e-5, 1e-1), (1e-4, 1e-2)),
    "g_lr": Parameter("G learning rate", "log", (1e-5, 1e-1), (1e-4, 1e-2)),
    "n_critic": Parameter("k (D steps per G step)", "int", (1, 10), (1, 5)),
    "label_smoothing": Parameter("Label smoothing", "linear", (0.0, 0.45), (0.0, 0.3)),
    "loss": Parameter("Loss", "category"),
}
PARAMETER_CHOICES = [(p.label, name) for name, p in PARAMETERS.items()]
CONTROL_FIELD = {"d_lr": "d_lr_log10", "g_lr": "g_lr_log10", "n_critic": "n_critic",
                 "label_smoothing": "label_smoothing", "loss": "loss"}  # the `controls.Controls` field
LAST_STEPS = 100  # steps averaged for "final D(G(z))"
# "Every mode" counts from the first evaluation with all modes covered *and* this share of samples
# high quality (the class benchmark's goal): a fresh G covers every mode of the VEEGAN metric by
# chance with 1 % of its samples near one, so modes alone would say "step 0".
GOAL_HQ = 90.0
LOSS_WORDS = {"nonsaturating": "non-saturating", "minimax": "minimax", "lsgan": "LSGAN", "hinge": "hinge",
              "wgan-gp": "WGAN-GP"}  # a loss in a word or two, for a card or an axis


class ExperimentError(ValueError):
    """A range or choice that cannot be an experiment; the message says what to change."""


@dataclass(frozen=True)
class Experiment:
    """One hyperparameter and its range (or its categories, for the loss)."""

    parameter: str
    low: float = 0.0
    high: float = 0.0
    losses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        spec = PARAMETERS.get(self.parameter)
        if spec is None:
            raise ExperimentError(f"The experiment varies one of {', '.join(PARAMETERS)}; got {self.parameter!r}.")
        if spec.kind == "category":
            unknown = [name for name in self.losses if name not in LOSSES]
            if unknown or not self.losses:
                raise ExperimentError("Choose at least one loss to compare (from the list).")
            return
        for name, value in (("low", self.low), ("high", self.high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ExperimentError(f"The range's {name} end must be a number, got {value!r}.")
        lo, hi = spec.bounds
        if not lo <= self.low < self.high <= hi:
            raise ExperimentError(f"{spec.label}: the range must go from a low to a higher value within "
                                  f"{lo:g} … {hi:g}; got {self.low:g} … {self.high:g}.")

    @property
    def spec(self) -> Parameter:
        return PARAMETERS[self.parameter]

    def values(self, n: int) -> list:
        """`n` values spread over the range, for students 1…n in order (see the module docstring).
        Learning rates have two significant digits, as the page's log sliders give them."""
        if n <= 0:
            return []
        kind = self.spec.kind
        if kind == "category":
            return [self.losses[i % len(self.losses)] for i in range(n)]
        t = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
        if kind == "log":
            return [float(f"{v:.2g}") for v in self.low * (self.high / self.low) ** t]
        if kind == "int":
            return [int(v) for v in np.round(self.low + (self.high - self.low) * t)]
        return [round(float(v), 3) for v in self.low + (self.high - self.low) * t]

    def describe(self) -> str:
        """e.g. "D learning rate from 0.0001 to 0.01 (log scale)" for the class's summary line."""
        if self.spec.kind == "category":
            return f"Loss: {', '.join(LOSS_WORDS.get(name, name) for name in self.losses)}"
        scale = " (log scale)" if self.spec.kind == "log" else ""
        return f"{self.spec.label} from {self.low:g} to {self.high:g}{scale}"


def value_words(parameter: str, value) -> str:
    """A value as the page writes it: 3.2e-3, 3, 0.15, or the loss's title."""
    if value is None:
        return ""
    if parameter == "loss":
        return LOSS_WORDS.get(value, str(value))
    if PARAMETERS[parameter].kind == "log":
        return f"{value:.1e}".replace("e-0", "e-")
    return f"{value:g}"


def outcome_of(snap: Snapshot) -> dict:
    """What a run shows the class experiment: modes covered and HQ % (2-D), the Inception score
    (digits), the mean D(G(z)) of the last LAST_STEPS steps, and the first step at which every
    mode was covered with GOAL_HQ % of the samples high quality (None until then)."""
    frame = snap.frame
    steps_to_all = None
    coverage = snap.coverage
    if len(coverage) and frame is not None and frame.n_modes:
        full = np.flatnonzero((coverage[:, 1] >= frame.n_modes) & (coverage[:, 2] >= GOAL_HQ))
        steps_to_all = int(coverage[full[0], 0]) if len(full) else None
    recent = snap.recent[-LAST_STEPS:]
    d_fake = float(np.mean(column(recent, "d_fake"))) if len(recent) else None
    scores = snap.digit_scores
    return dict(modes=None if frame is None else frame.modes_covered,
                n_modes=None if frame is None else frame.n_modes,
                hq=None if frame is None or frame.hq_percent is None else round(float(frame.hq_percent), 1),
                inception=round(float(scores[-1, 1]), 2) if len(scores) else None,
                d_fake=None if d_fake is None or not math.isfinite(d_fake) else round(d_fake, 3),
                steps_to_all=steps_to_all)


def table_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    """The rows as CSV text; a cell a spreadsheet would run as a formula (=, +, -, @ at its start,
    e.g. a display name "=HYPERLINK(…)") is written with a leading apostrophe (OWASP, CSV injection)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return out.getvalue()


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def card_fields(snap: Snapshot, alerts: list) -> dict:
    """The class view's record of a run: state, first alert, step, steps/s, outcome and settings."""
    cfg = snap.config
    return dict(state=snap.state, alert=alerts[0].title if alerts else "", kind=alerts[0].kind if alerts else "",
                step=snap.step, rate=round(snap.steps_per_s) if snap.state == "running" else 0,
                **outcome_of(snap), loss=cfg.loss, loss_words=LOSS_WORDS.get(cfg.loss, cfg.loss), g_lr=cfg.g_lr,
                d_lr=cfg.d_lr, k=cfg.n_critic, smoothing=cfg.label_smoothing, dataset=cfg.dataset)
