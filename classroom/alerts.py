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
`python -m benchmarks presets` measures that it helps, per seed, from one
checkpoint: learning rates above the dataset's recommended value come back
to it (oscillation, a D that collapsed), a minimax D that wins is met with
the non-saturating loss (and G brought up to D's rate if slower), a 2-D
mode collapse with WGAN-GP and k = 5. When several symptoms show at once,
`detect` lists first the one whose fix treats the cause (DETECTORS order).

Every detector waits for a warm-up (the first few hundred steps of any GAN
are turbulent) and looks at a window of recent full-resolution steps, so a
single noisy step never fires an alert. Mode collapse is judged per
evaluation through a latch (`latched`: on after 3 collapsed evaluations in
a row, off after 6 clean ones, restarted by a live change), so the alert
neither blinks with a jittery G nor outlives the teacher's fix. Thresholds are the named constants
below, calibrated on ring8_wide runs (default config: D(G(z)) ≈ 0.27, no
smoothed-gap swings, 7–8 of 8 modes; both lrs 2e-2: 5–9 swings per 500
steps, 1–3 of 8 modes; minimax with d_lr = 100 × g_lr: D(G(z)) ≈ 0.03).

Pure functions of the snapshot (the latch is replayed from the snapshot's
coverage table): no threads, no state, no UI. Not here:
computing the statistics (`engine.py`), storing them (`telemetry.py`).
"""

from __future__ import annotations

import functools
import math
import re
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

# --- mode collapse ---------------------------------------------------------------------
COLLAPSE_WARMUP_STEPS = 2000  # G starts as one blob; give it time to spread before judging
COLLAPSE_FRACTION = 0.5  # covering at most half the modes is collapse
COLLAPSE_DROP = 0.3  # …or losing ≥ 30% of the modes (at least 3) from the recent best
COLLAPSE_MIN_HQ = 10.0  # % of samples within 3σ of a mode: below this G has not learned the data yet
COLLAPSE_HISTORY_ROWS = 40  # "recent best" looks back this many evaluations
# Hysteresis (a latch): the alert appears after COLLAPSE_ON_EVALS evaluations in a row show
# collapse and clears only after COLLAPSE_OFF_EVALS in a row do not. One evaluation is one
# moment of G, and a collapsed G's coverage jitters: a frame where a stray sample lands on
# one more mode, or where G is between two modes, is common. With ON = OFF = 1 the alert
# blinked on and off while G stayed collapsed (the class reads that as "fixed"); ON = 3 keeps
# the old rule's "never on one bad frame", OFF = 6 > ON means a brief recovery does not clear
# it. A live change (the teacher acted) starts the latch again from "off", so an applied fix
# takes the alert away until the new rule has been judged for ON evaluations.
COLLAPSE_ON_EVALS = 3
COLLAPSE_OFF_EVALS = 6
COLLAPSE_LATCH_ROWS = 400  # evaluations the latch replays (bounds the work per page update)
IS_DROP_RATIO = 0.6  # digits: classifier IS fell below 60% of its best…
IS_LEARNED = 4.0  # …after having reached at least this (of 10) — i.e. G had learned several digits
IS_LOW = 2.0  # digits: IS still ≤ 2 (about two digit classes) after IS_WARMUP_STEPS is collapse
IS_WARMUP_STEPS = 5000
# The 2-D collapse fix: WGAN-GP with k = 5 critic steps (Gulrajani et al., 2017, Alg. 1). The
# collapse the lesson shows is stable. Measured from the alert, 2,000 more steps on 5 seeds
# (`python -m benchmarks presets`): G's lr halved, or k = 1 with D at 1e-3, kept the same 1–4
# modes (so did label smoothing 0.2, LSGAN and hinge on 2 seeds), while WGAN-GP's critic, whose
# gradient does not vanish between the clusters, took G to 7–8 modes (blurry at first).
COLLAPSE_FIX_CRITIC_STEPS = 5

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
    """A value as the button says it: a loss by its title without its formula, keeping a short
    name in brackets ("Wasserstein + gradient penalty (WGAN-GP)": what the lesson calls it)."""
    if name == "loss":
        title = LOSSES[value].title
        return title if re.fullmatch(r".* \([A-Za-z0-9-]+\)", title) else title.split(" (")[0]
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    return _recommended_lr(config.dataset)


@functools.lru_cache(maxsize=None)
def _recommended_lr(dataset: str) -> float:
    base = default_config(dataset)
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
        # The "D too strong" lesson's fix: the non-saturating loss gives G its gradient back (same
        # fixed point, Goodfellow et al., 2014, §3), and a G slower than D is brought up to D's rate
        # (at most the recommended one). Measured (bench presets, from the alert): on the lesson's
        # preset (equal rates) the loss switch alone took HQ from ~2 % to ~30 % within 250 steps and
        # D(G(z)) from 0.03 to ~0.1; with G's rate 10× below D's the loss switch alone left G stuck
        # (0–8 % HQ after 2,000 steps), so the rate is part of the fix there.
        fix, label = _fix(config, loss="nonsaturating",
                          g_lr=max(config.g_lr, min(config.d_lr, recommended_lr(config))))
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
                        "gradients)" + (", and let G learn as fast as D." if "g_lr" in fix else ".")),
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
    """The mode-collapse lesson's fix. 2-D with a probability loss: WGAN-GP with k = 5 at the
    recommended learning rate (see COLLAPSE_FIX_CRITIC_STEPS). Otherwise (digits, whose D has
    BatchNorm; a run already on WGAN-GP): slow G down, since a G faster than D hops between the
    few modes D has not learned yet (Goodfellow, 2016, §5.1.1)."""
    if not config.is_image and LOSSES[config.loss].is_probability:
        lr = recommended_lr(config)
        return _fix(config, loss="wgan-gp", n_critic=max(config.n_critic, COLLAPSE_FIX_CRITIC_STEPS),
                    g_lr=min(config.g_lr, lr), d_lr=min(config.d_lr, lr))
    if config.g_lr > config.d_lr:
        return _fix(config, g_lr=config.d_lr)
    if config.g_lr > recommended_lr(config):
        return _fix(config, g_lr=recommended_lr(config))
    return _fix(config, g_lr=config.g_lr * 0.5)


def _collapse_suggestion(config: TrainConfig, fix: dict[str, Any]) -> str:
    pacgan = (" For 2-D data, pack > 1 is another remedy (PacGAN, Lin et al., 2018: D sees several samples "
              "at once and punishes a G that repeats itself; it needs a new run).")
    if fix.get("loss") == "wgan-gp":
        return ("Switch to the WGAN-GP loss with k = 5 critic steps: its critic keeps giving G gradients towards "
                "every mode, also across the empty space between them (Gulrajani et al., 2017)." + pacgan)
    text = ("Lower G's learning rate (at most D's), so D can keep up and push G off its few favourite outputs.")
    if config.loss != "wgan-gp":
        text += (" Another remedy to explore: the WGAN-GP loss (its critic keeps giving G gradients towards every "
                 "mode, Gulrajani et al., 2017).")
        if config.d_batchnorm:
            text += (" This run's discriminator has BatchNorm, which WGAN-GP cannot use: to try WGAN-GP, "
                     "choose it as the loss, then press Reset for a new D without it.")
    return text + ("" if config.is_image else pacgan)


def latched(flags: np.ndarray, on: int = COLLAPSE_ON_EVALS, off: int = COLLAPSE_OFF_EVALS) -> bool:
    """A latch replayed over per-evaluation verdicts (True = symptom), starting off: it turns on
    when `on` verdicts in a row are True and off when `off` in a row are False. Each such run
    sets the state whatever it was, so the state now is that of the latest run to complete."""
    flags = np.asarray(flags, dtype=bool)

    def last_run_end(x: np.ndarray, n: int) -> int:
        if len(x) < n:
            return -1
        ends = np.flatnonzero(np.convolve(x.astype(int), np.ones(n, dtype=int), "valid") == n)
        return int(ends[-1]) + n - 1 if len(ends) else -1

    return last_run_end(flags, on) > last_run_end(~flags, off)


def _since_last_change(snapshot: Snapshot, table: np.ndarray) -> np.ndarray:
    """Rows of a (step, …) table after the latest live change (the teacher acted) and the
    statistical warm-up, at most the last COLLAPSE_LATCH_ROWS."""
    start = max([WARMUP_STEPS, *(step for step, _ in snapshot.events)])
    return table[table[:, 0] > start][-COLLAPSE_LATCH_ROWS:] if len(table) else table


def coverage_collapsed(cov: np.ndarray, n_modes: int) -> np.ndarray:
    """Per evaluation (rows of step, modes covered, HQ%): does it show mode collapse? Only
    evaluations where G makes data-like points count (HQ%): early on G is a wide blur that touches
    many modes with few good samples, which is not coverage."""
    modes, hq = cov[:, 1], cov[:, 2]
    learned = hq >= COLLAPSE_MIN_HQ
    # The most modes covered (with HQ) in the last COLLAPSE_HISTORY_ROWS, up to each row: a
    # rolling maximum over windows padded at the front (rows without HQ count as 0 modes).
    counted = np.concatenate([np.zeros(COLLAPSE_HISTORY_ROWS - 1), np.where(learned, modes, 0.0)])
    best = (np.lib.stride_tricks.sliding_window_view(counted, COLLAPSE_HISTORY_ROWS).max(axis=1)
            if len(cov) else np.zeros(0))
    few = (cov[:, 0] >= COLLAPSE_WARMUP_STEPS) & (modes <= COLLAPSE_FRACTION * n_modes)
    dropped = best - modes >= max(3, math.ceil(COLLAPSE_DROP * n_modes))
    return learned & (few | dropped)


def scores_collapsed(scores: np.ndarray) -> np.ndarray:
    """Per digit-score row (step, IS, FD): has the Inception Score collapsed?"""
    best = np.maximum.accumulate(scores[:, 1]) if len(scores) else scores[:, 1]
    fell = (best >= IS_LEARNED) & (scores[:, 1] < IS_DROP_RATIO * best)
    low = (scores[:, 0] >= IS_WARMUP_STEPS) & (scores[:, 1] <= IS_LOW)
    return fell | low


def detect_mode_collapse(snapshot: Snapshot) -> Alert | None:
    """Coverage (2-D) or Inception Score (digits) collapsed, through the latch (`latched`)."""
    config = snapshot.config
    if config is None or snapshot.step < WARMUP_STEPS:
        return None
    n_modes = snapshot.frame.n_modes if snapshot.frame is not None else None
    cov = _since_last_change(snapshot, snapshot.coverage)
    if n_modes and len(cov):
        flags = coverage_collapsed(cov, n_modes)
        if latched(flags):
            fix, label = _collapse_fix(config)
            current, hq, last_bad = int(cov[-1, 1]), float(cov[-1, 2]), int(np.flatnonzero(flags)[-1])
            good = cov[-COLLAPSE_HISTORY_ROWS:]
            best = int(np.max(good[good[:, 2] >= COLLAPSE_MIN_HQ, 1], initial=current))
            shown = int(cov[last_bad, 1])
            evidence = f"{current}/{n_modes} modes covered with {hq:.0f}% high-quality samples at step {int(cov[-1, 0]):,}"
            if best > shown:
                evidence += f" (it covered {best} recently)"
            if last_bad < len(cov) - 1:
                evidence += (f"; collapsed until {len(cov) - 1 - last_bad} evaluation(s) ago: the alert clears "
                             f"after {COLLAPSE_OFF_EVALS} in a row without collapse")
            return Alert(
                kind="mode_collapse",
                title=f"Mode collapse: G covers only {shown} of {n_modes} modes",
                explanation=("The generator piles its samples onto a few of the data's clusters and ignores the "
                             "rest. Between the clusters D says \"fake\" so firmly that G's points, once in a "
                             "cluster, are pushed back into it: the variety does not come back by itself."),
                suggestion=_collapse_suggestion(config, fix), fix=fix, fix_label=label, severity="warning",
                evidence=evidence,
            )
    scores = _since_last_change(snapshot, snapshot.digit_scores)
    if len(scores) and latched(scores_collapsed(scores)):
        current_is, best_is = float(scores[-1, 1]), float(np.max(snapshot.digit_scores[:, 1]))
        fix, label = _collapse_fix(config)
        return Alert(
            kind="mode_collapse",
            title="Mode collapse: the generator draws only a few kinds of digit",
            explanation=("A digit classifier's Inception Score counts, roughly, how many distinct and "
                         "recognisable digit classes G produces (10 is best). It is low, so G keeps "
                         "drawing the same few digits."),
            suggestion=_collapse_suggestion(config, fix), fix=fix, fix_label=label, severity="warning",
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
