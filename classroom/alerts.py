"""Live symptom detectors: read one telemetry `Snapshot`, name what is going wrong.

`detect(snapshot)` returns `Alert`s for the classic GAN failure modes, each
with a plain-language explanation for students, a suggestion, and a `fix` —
a dict of live `TrainConfig` fields the UI can apply with one button
(`config.with_live(**alert.fix)`):

- divergence         a loss, weight or sample became NaN/Inf.
- mode_collapse      G covers few of the data's modes (Goodfellow, 2016,
                     NIPS tutorial §5.1.1; measured as in VEEGAN / PacGAN),
                     or the digit classifier's Inception Score collapsed.
- d_overpowering     D rejects every fake: D(G(z)) ≈ 0 while D(x) ≈ 1.
- vanishing_gradient the same with the minimax loss, whose generator gradient
                     saturates: ∇ log(1 − D(G(z))) → 0 as D(G(z)) → 0
                     (Goodfellow et al., 2014, §3) — switch to non-saturating.
- oscillation        D and G take turns winning instead of settling: the
                     smoothed gap D(x) − D(G(z)), or D's loss, swings back
                     and forth (Mescheder et al., 2018, on non-convergence).
- d_collapsed        D outputs one constant everywhere, not 0.5: it stopped
                     judging (e.g. after a too-large D learning rate), so G
                     gets no signal. Not "G has won": that is D = 0.5 on data-like fakes.

Each fix is the one the matching lesson teaches (`presets.py`), and
`python -m benchmarks presets` measures that it helps: learning rates
above the dataset's recommended value come back to it (oscillation, a D
that collapsed, a G much faster than D), a minimax D that wins is met with
the non-saturating loss and equal footing (k = 1, equal learning rates). When several symptoms show at once,
`detect` lists first the one whose fix treats the cause (DETECTORS order).

Every detector waits for a warm-up (the first few hundred steps of any GAN
are turbulent) and looks at a window of recent full-resolution steps, so a
single noisy step never fires an alert. Thresholds are the named constants
below, calibrated on ring8_wide runs (default config: D(G(z)) ≈ 0.27, no
smoothed-gap swings, 7–8 of 8 modes; both lrs 2e-2: 5–9 swings per 500
steps, 1–3 of 8 modes; minimax with d_lr = 100 × g_lr: D(G(z)) ≈ 0.03).

Pure functions of the snapshot: no threads, no state, no UI. Not here:
computing the statistics (`engine.py`), storing them (`telemetry.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gan_core.config import RANGES, ConfigError, TrainConfig, default_config
from gan_core.losses import LOSSES
from gan_core.records import STAT_FIELDS, column

if TYPE_CHECKING:
    from gan_core.telemetry import Snapshot

# --- windows and warm-ups -----------------------------------------------------------
WINDOW = 500  # recent steps every statistical detector looks at (full resolution)
MIN_WINDOW = 200  # fewer recent rows than this (just started, reset, rewound): stay quiet
WARMUP_STEPS = 500  # no statistical alert before this step: early training is always turbulent
SMOOTH = 25  # moving-average length (steps) that removes per-batch noise before counting swings
DIVERGENCE_WINDOW = 50  # steps checked for NaN/Inf (the runner pauses on the first one)

# --- D overpowering / vanishing gradient ---------------------------------------------
D_FAKE_LOW = 0.1  # mean D(G(z)) below this: D calls essentially every fake "fake"
D_REAL_HIGH = 0.7  # …while mean D(x) is above this: D really separates (not just a low-output D)
OVERPOWER_WINDOW = 300  # steps averaged for the two means above
GRAD_VANISHED_RATIO = 0.1  # G's gradient norm (median, recent) under 10% of its earlier level
D_LR_FIX_FACTOR = 0.25  # "slow D down": d_lr × ¼ (TTUR, Heusel et al., 2017, tunes the two lrs apart)

# --- oscillation ---------------------------------------------------------------------
GAP_BAND = 0.1  # smoothed D(x) − D(G(z)) must leave ±0.1 around its median to count as a swing
LOSS_BAND = 0.15  # smoothed D loss must leave ±15% of its equilibrium value (or median) to count as a swing
MIN_SWINGS = 4  # swings in WINDOW steps: two full back-and-forth cycles (healthy runs: 0)
OSC_LR_FIX_FACTOR = 0.5  # both lrs already at or below the recommended value: halve them

# --- D collapsed to a constant ---------------------------------------------------------
D_FLAT_SPREAD = 0.01  # std of D's outputs on the fixed real and fake samples below this: one value
D_FLAT_OFF = 0.05  # …that is at least this far from the equilibrium 0.5 (0.5 everywhere is G winning)
D_FLAT_GAP = 0.02  # and D(x) − D(G(z)) averaged over the recent steps below this: D does not separate

# --- mode collapse -------------------------------------------------------------------
COLLAPSE_WARMUP_STEPS = 2000  # G starts as one blob; give it time to spread before judging
COLLAPSE_FRACTION = 0.5  # covering at most half the modes is collapse
COLLAPSE_DROP = 0.3  # …or losing ≥ 30% of the modes (at least 3) from the recent best
COLLAPSE_MIN_HQ = 10.0  # % of samples within 3σ of a mode: below this G has not learned the data yet
COLLAPSE_RECENT_ROWS = 3  # coverage judged by the best of the last 3 evaluations (one bad frame is noise)
COLLAPSE_HISTORY_ROWS = 40  # "recent best" looks back this many evaluations
IS_DROP_RATIO = 0.6  # digits: classifier IS fell below 60% of its best…
IS_LEARNED = 4.0  # …after having reached at least this (of 10) — i.e. G had learned several digits
IS_LOW = 2.0  # digits: IS still ≤ 2 (about two digit classes) after IS_WARMUP_STEPS is collapse
IS_WARMUP_STEPS = 5000

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Alert:
    """One diagnosed symptom, written for students, with a one-click fix."""

    kind: str  # divergence | mode_collapse | d_overpowering | vanishing_gradient | oscillation | d_collapsed
    title: str
    explanation: str  # what is happening and why
    suggestion: str  # what to try
    fix: dict[str, Any] = field(default_factory=dict)  # live TrainConfig changes; {} if none applies
    fix_label: str = ""  # plain words for the button, e.g. "D's learning rate 0.001 → 0.00025"
    severity: str = "warning"  # info | warning | error
    evidence: str = ""  # the numbers that triggered it

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")


# ------------------------------------------------------------------------------ helpers

def _moving_average(x: np.ndarray, k: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    return (c[k:] - c[:-k]) / k


def _swings(x: np.ndarray, band: float) -> int:
    """How often x crosses from above +band to below −band or back (hysteresis)."""
    side = np.where(x > band, 1, np.where(x < -band, -1, 0))
    side = side[side != 0]
    return int(np.count_nonzero(np.diff(side))) if len(side) else 0


def _clamped(name: str, value: float) -> float | int:
    lo, hi = RANGES[name]
    value = min(max(value, lo), hi)
    return int(round(value)) if isinstance(lo, int) and isinstance(hi, int) else float(f"{value:.3g}")


# How a fix's fields read on the button (students see these, not the code names).
FIELD_WORDS = {"g_lr": "G's learning rate", "d_lr": "D's learning rate", "n_critic": "D steps per G step",
               "label_smoothing": "label smoothing", "loss": "loss", "beta1": "Adam's β₁"}


def _words(name: str, value: Any) -> str:
    return LOSSES[value].title.split(" (")[0] if name == "loss" else f"{value:g}" if isinstance(value, float) else str(value)


def _fix(config: TrainConfig, **changes: Any) -> tuple[dict[str, Any], str]:
    """Changes clamped to their valid ranges, minus no-ops, and a label for the button;
    no fix at all if the run would refuse it (`with_live` is the one rule)."""
    fix = {}
    for name, value in changes.items():
        if name in RANGES:
            value = _clamped(name, value)
        if value != getattr(config, name):
            fix[name] = value
    try:
        config.with_live(**fix)
    except ConfigError:  # a fix the engine would refuse is never offered
        return {}, ""
    label = ", ".join(f"{FIELD_WORDS.get(k, k)} {_words(k, getattr(config, k))} → {_words(k, v)}"
                      for k, v in fix.items())
    return fix, label


def recommended_lr(config: TrainConfig) -> float:
    """The dataset's recommended learning rate (`default_config`, measured in BENCHMARKS.md)."""
    base = default_config(config.dataset)
    return min(base.g_lr, base.d_lr)


def _lrs_down(config: TrainConfig) -> tuple[dict[str, Any], str]:
    """Learning rates above the recommended value back to it; if none is, both halved."""
    lr = recommended_lr(config)
    if max(config.g_lr, config.d_lr) > lr:
        return _fix(config, g_lr=min(config.g_lr, lr), d_lr=min(config.d_lr, lr))
    return _fix(config, g_lr=config.g_lr * OSC_LR_FIX_FACTOR, d_lr=config.d_lr * OSC_LR_FIX_FACTOR)


def _window(snapshot: Snapshot, n: int) -> np.ndarray:
    """The last `n` recent rows whose statistics are all finite."""
    rows = snapshot.recent[-n:]
    return rows[np.isfinite(rows[:, 2:]).all(1)] if len(rows) else rows


# ------------------------------------------------------------------------------ detectors

def detect_divergence(snapshot: Snapshot) -> Alert | None:
    rows = snapshot.recent[-DIVERGENCE_WINDOW:]
    bad_stats = len(rows) and not np.isfinite(rows[:, 2:]).all()
    msg = snapshot.message or ""
    frame = snapshot.frame
    bad_frame = frame is not None and frame.fake.size and not np.isfinite(frame.fake).all()
    if not (bad_stats or bad_frame or "NaN" in msg or "Inf" in msg):
        return None
    config = snapshot.config
    fix, label = ({}, "") if config is None else _fix(config, g_lr=config.g_lr / 10, d_lr=config.d_lr / 10)
    where = []
    if bad_stats:
        names = [n for n, ok in zip(STAT_FIELDS, np.isfinite(rows[:, 2:]).all(0)) if not ok]
        where.append(f"non-finite {', '.join(names)} in the last {len(rows)} steps")
    if bad_frame:
        where.append("generated samples contain NaN/Inf")
    return Alert(
        kind="divergence",
        title="Training diverged (NaN / Inf)",
        explanation=("A number became infinite or not-a-number. Once a weight is NaN every later "
                     "result is NaN too, so this run cannot recover by itself. It usually means the "
                     "steps were too large: the weights blew up."),
        suggestion="Rewind to a checkpoint from before the blow-up (or reset), then lower both learning rates.",
        fix=fix, fix_label=label, severity="error",
        evidence="; ".join(where) or msg,
    )


def detect_d_overpowering(snapshot: Snapshot) -> Alert | None:
    config = snapshot.config
    if config is None or not LOSSES[config.loss].is_probability or snapshot.step < WARMUP_STEPS:
        return None
    rows = _window(snapshot, OVERPOWER_WINDOW)
    if len(rows) < MIN_WINDOW:
        return None
    d_fake, d_real = float(np.mean(column(rows, "d_fake_g"))), float(np.mean(column(rows, "d_real")))
    if not (d_fake < D_FAKE_LOW and d_real > D_REAL_HIGH):
        return None
    evidence = f"mean D(x) = {d_real:.2f}, mean D(G(z)) = {d_fake:.3f} over the last {len(rows)} steps"

    # Has G's gradient collapsed compared with earlier in the run?
    recent_norm = float(np.median(column(rows, "g_grad_norm")))
    history = snapshot.history
    earlier = history[history[:, 0] <= rows[0, 0]] if len(history) else history
    earlier_norm = float(np.percentile(column(earlier, "g_grad_norm"), 90)) if len(earlier) else math.nan
    vanished = earlier_norm > 0 and recent_norm < GRAD_VANISHED_RATIO * earlier_norm
    if math.isfinite(earlier_norm):
        evidence += f"; G's gradient norm {recent_norm:.3g} (earlier up to {earlier_norm:.3g})"

    if config.loss == "minimax":
        # The "D too strong" lesson's fix: the non-saturating loss gives G its gradient back, and
        # equal footing (one D step per G step, both at D's rate, at most the recommended one)
        # stops D running away again. Measured (bench presets, 20 CPU-s from the alert): the loss
        # switch alone left D(G(z)) ≈ 0.2 with 38% HQ; slowing D to G's 1e-4 instead reached 1 mode.
        lr = min(config.d_lr, recommended_lr(config))
        fix, label = _fix(config, loss="nonsaturating", n_critic=1, g_lr=lr, d_lr=lr)
        return Alert(
            kind="vanishing_gradient" if vanished else "d_overpowering",
            title="Generator's gradient vanishes: the minimax loss saturates" if vanished
            else "The discriminator wins and the minimax loss stops teaching G",
            explanation=("D confidently rejects every fake (D(G(z)) ≈ 0). With the original minimax loss, "
                         "G minimises log(1 − D(G(z))), which is flat near D(G(z)) = 0: exactly when G is "
                         "worst, its gradient is smallest, so G learns almost nothing "
                         "(Goodfellow et al., 2014, §3)."),
            suggestion=("Switch to the non-saturating loss: G maximises log D(G(z)) instead, which has a "
                        "strong gradient exactly when D rejects the fakes (same fixed point, better "
                        "gradients), and put the players on equal footing: one D step per G step, equal "
                        "learning rates."),
            fix=fix, fix_label=label, severity="warning", evidence=evidence,
        )
    if config.n_critic > 1:
        fix, label = _fix(config, n_critic=1)
    else:
        fix, label = _fix(config, d_lr=config.d_lr * D_LR_FIX_FACTOR)
        if not fix and config.label_smoothing == 0:
            fix, label = _fix(config, label_smoothing=0.1)
    return Alert(
        kind="vanishing_gradient" if vanished else "d_overpowering",
        title="The discriminator is overpowering the generator",
        explanation=("D separates real from fake almost perfectly: it says ≈ 1 for real data and ≈ 0 for "
                     "fakes. G then gets little useful signal about *where* to move its samples, and "
                     "training stalls or collapses."),
        suggestion=("Slow the discriminator down: lower its learning rate (or its steps per G step), or "
                    "use one-sided label smoothing (real target 0.9, Salimans et al., 2016) so D "
                    "cannot become over-confident."),
        fix=fix, fix_label=label, severity="warning", evidence=evidence,
    )


def _swing_counts(rows: np.ndarray, config: TrainConfig) -> tuple[int, int]:
    """Large swings of the smoothed D(x) − D(G(z)) gap and of the smoothed D loss in `rows`."""
    if len(rows) <= SMOOTH:
        return 0, 0
    loss = LOSSES[config.loss]
    gap_swings = loss_swings = 0
    if loss.d_equilibrium == 0.5:  # D's output reads as P(real): the gap is on a fixed 0…1 scale
        gap = _moving_average(column(rows, "d_real") - column(rows, "d_fake"), SMOOTH)
        gap_swings = _swings(gap - np.median(gap), GAP_BAND)
    d_loss = _moving_average(column(rows, "d_loss"), SMOOTH)
    centre = float(np.median(d_loss))
    # Band relative to the loss's natural scale (its value at equilibrium, e.g. 2 log 2 for
    # cross-entropy), so a D that wins with a tiny, spiky loss does not count as swinging.
    scale = loss.d_loss_equilibrium or abs(centre)
    if scale > 0:
        loss_swings = _swings(d_loss - centre, LOSS_BAND * scale)
    return gap_swings, loss_swings


def swing_count(rows: np.ndarray, config: TrainConfig) -> int:
    """The oscillation detector's measure: large swings in these (finite) rows."""
    rows = rows[np.isfinite(rows[:, 2:]).all(1)] if len(rows) else rows
    return max(_swing_counts(rows, config))


def detect_oscillation(snapshot: Snapshot) -> Alert | None:
    config = snapshot.config
    if config is None or snapshot.step < WARMUP_STEPS or config.loss == "wgan-gp":
        return None  # WGAN-GP's critic values have no fixed scale or equilibrium to swing around
    rows = _window(snapshot, WINDOW)
    if len(rows) < MIN_WINDOW:
        return None
    gap_swings, loss_swings = _swing_counts(rows, config)
    if max(gap_swings, loss_swings) < MIN_SWINGS:
        return None
    fix, label = _lrs_down(config)
    return Alert(
        kind="oscillation",
        title="D and G are oscillating instead of converging",
        explanation=("The two players take turns winning: D gets ahead, G chases it, D switches, and the "
                     "losses swing back and forth instead of settling. Gradient steps on a two-player game "
                     "can circle around the equilibrium rather than approach it (Mescheder et al., 2018)."),
        suggestion=(f"Take smaller steps: bring both learning rates back to {recommended_lr(config):g} (or "
                    "lower Adam's β₁ so momentum carries the players less far past each other)."),
        fix=fix, fix_label=label, severity="warning",
        evidence=(f"{max(gap_swings, loss_swings)} large swings in the last {len(rows)} steps "
                  f"(D(x) − D(G(z)) gap: {gap_swings}, D loss: {loss_swings})"),
    )


def _collapse_fix(config: TrainConfig) -> tuple[dict[str, Any], str]:
    """The mode-collapse lesson's fix: slow G down. A G faster than D hops between the few
    modes D has not learned yet (Goodfellow, 2016, §5.1.1); at D's pace it spreads out."""
    if config.g_lr > config.d_lr:
        return _fix(config, g_lr=config.d_lr)
    if config.g_lr > recommended_lr(config):
        return _fix(config, g_lr=recommended_lr(config))
    return _fix(config, g_lr=config.g_lr * 0.5)


def detect_mode_collapse(snapshot: Snapshot) -> Alert | None:
    config = snapshot.config
    if config is None or snapshot.step < WARMUP_STEPS:
        return None
    suggestion = ("Lower G's learning rate (at most D's), so D can keep up and push G off its few favourite "
                  "outputs. Other remedies to explore: the WGAN-GP loss (its critic keeps giving G gradients "
                  "towards every mode, Gulrajani et al., 2017) or, for 2-D data, pack > 1 (PacGAN, Lin et al., "
                  "2018: D sees several samples at once and punishes a G that repeats itself).")
    cov = snapshot.coverage
    n_modes = snapshot.frame.n_modes if snapshot.frame is not None else None
    if n_modes and len(cov) >= COLLAPSE_RECENT_ROWS:
        # Early on G is a wide blur that touches many modes with few good samples; that is
        # not coverage. Judge only evaluations where G produces data-like points (HQ%).
        recent = cov[-COLLAPSE_RECENT_ROWS:]
        current = int(np.max(recent[:, 1]))
        learned = float(np.median(recent[:, 2])) >= COLLAPSE_MIN_HQ
        good = cov[-COLLAPSE_HISTORY_ROWS:]
        good = good[good[:, 2] >= COLLAPSE_MIN_HQ]
        best = max(int(np.max(good[:, 1])) if len(good) else 0, current)
        drop = best - current
        few = snapshot.step >= COLLAPSE_WARMUP_STEPS and current <= COLLAPSE_FRACTION * n_modes
        dropped = drop >= max(3, math.ceil(COLLAPSE_DROP * n_modes))
        if learned and (few or dropped):
            fix, label = _collapse_fix(config)
            return Alert(
                kind="mode_collapse",
                title=f"Mode collapse: G covers only {current} of {n_modes} modes",
                explanation=("The generator has found a few outputs that fool D and keeps producing only "
                             "those, ignoring the rest of the data. D then learns to reject that spot, G "
                             "hops to another, and the variety never comes back by itself."),
                suggestion=suggestion, fix=fix, fix_label=label, severity="warning",
                evidence=(f"{current}/{n_modes} modes covered in the last {COLLAPSE_RECENT_ROWS} evaluations"
                          + (f" (it covered {best} recently)" if drop > 0 else "")),
            )
    scores = snapshot.digit_scores
    if len(scores) >= COLLAPSE_RECENT_ROWS:
        current_is = float(np.median(scores[-COLLAPSE_RECENT_ROWS:, 1]))
        best_is = float(np.max(scores[:, 1]))
        fell = best_is >= IS_LEARNED and current_is < IS_DROP_RATIO * best_is
        low = snapshot.step >= IS_WARMUP_STEPS and current_is <= IS_LOW
        if fell or low:
            fix, label = _collapse_fix(config)
            if config.d_batchnorm and config.loss != "wgan-gp":
                suggestion += (" This run's discriminator has BatchNorm, which WGAN-GP cannot use: to try "
                               "WGAN-GP, choose it as the loss, then press Reset for a new D without it.")
            return Alert(
                kind="mode_collapse",
                title="Mode collapse: the generator draws only a few kinds of digit",
                explanation=("A digit classifier's Inception Score counts, roughly, how many distinct and "
                             "recognisable digit classes G produces (10 is best). It is low, so G keeps "
                             "drawing the same few digits."),
                suggestion=suggestion, fix=fix, fix_label=label, severity="warning",
                evidence=f"classifier IS {current_is:.2f} (best so far {best_is:.2f})",
            )
    return None


def detect_d_collapsed(snapshot: Snapshot) -> Alert | None:
    """D gives (almost) the same answer for every input, and that answer is not 0.5."""
    config, frame = snapshot.config, snapshot.frame
    if config is None or frame is None or snapshot.step < WARMUP_STEPS:
        return None
    loss = LOSSES[config.loss]
    if not loss.is_probability:
        return None  # raw critic scores have no fixed scale to call "flat"
    outputs = np.concatenate([frame.d_real_values, frame.d_fake_values])
    outputs = outputs[np.isfinite(outputs)]
    rows = _window(snapshot, MIN_WINDOW)
    if len(outputs) == 0 or len(rows) < MIN_WINDOW:
        return None
    spread, level = float(np.std(outputs)), float(np.mean(outputs))
    gap = float(np.mean(column(rows, "d_real") - column(rows, "d_fake")))
    if spread >= D_FLAT_SPREAD or abs(level - loss.d_equilibrium) <= D_FLAT_OFF or abs(gap) >= D_FLAT_GAP:
        return None
    fix, label = _lrs_down(config)
    return Alert(
        kind="d_collapsed",
        title=f"D has collapsed: it outputs {level:.2f} for everything",
        explanation=("The discriminator gives the same answer for real and fake samples alike — the surface is "
                     "flat and its histogram is one bar — but not the 0.5 of an equilibrium. D has stopped "
                     "judging (a too-large learning rate can do this), so G gets no useful signal. "
                     "This is not G winning: then D would say 0.5 and G's points would match the data."),
        suggestion=(f"Lower D's learning rate (to {recommended_lr(config):g} or less). If D does not recover, "
                    "rewind to a checkpoint from before the change."),
        fix=fix, fix_label=label, severity="warning",
        evidence=f"D's outputs {level:.3f} ± {spread:.4f}; mean D(x) − D(G(z)) = {gap:+.3f} over {len(rows)} steps",
    )


DETECTORS = (detect_divergence, detect_d_collapsed, detect_oscillation, detect_mode_collapse,
             detect_d_overpowering)
# When several symptoms show, the first in this order offers its fix: a collapsed D or too-high
# learning rates cause the others (an oscillating D overpowers G half the time; a collapsing G
# looks like oscillation while it hops), so treating them first treats the rest.


def detect(snapshot: Snapshot) -> list[Alert]:
    """All current symptoms in `snapshot`, most severe first, then in DETECTORS order (one per kind)."""
    diverged = detect_divergence(snapshot)
    if diverged is not None:
        return [diverged]  # after a NaN the other statistics mean nothing
    alerts = [a for a in (d(snapshot) for d in DETECTORS if d is not detect_divergence) if a is not None]
    return sorted(alerts, key=lambda a: -SEVERITIES.index(a.severity))  # stable: DETECTORS order within one
