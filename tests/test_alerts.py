"""Tests for gan_core/alerts.py: each symptom in a synthetic snapshot fires the right
alert with an applicable fix, healthy runs (synthetic and real) stay quiet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classroom import alerts
from classroom.alerts import Alert, detect
from gan_core.config import TrainConfig, default_config
from gan_core.engine import Engine
from gan_core.records import STAT_FIELDS, EvalFrame
from gan_core.telemetry import Snapshot, Telemetry

LOG2 = np.log(2.0)


def frame(step: int, n_modes: int | None = 8, fake: np.ndarray | None = None, d_values: float = 0.5) -> EvalFrame:
    pts = np.zeros((16, 2), np.float32)
    return EvalFrame(step=step, d_real_values=np.full(16, d_values), d_fake_values=np.full(16, d_values), real=pts,
                     fake=pts if fake is None else fake, surface=None, surface_extent=None, g_field=None,
                     value_estimate=None, modes_covered=n_modes, n_modes=n_modes, hq_percent=80.0)


def snapshot(steps: int = 3000, *, config: TrainConfig | None = None, message: str = "", seed: int = 0,
             coverage: list[tuple[int, float]] | None = None, digit_is: list[float] | None = None,
             n_modes: int | None = 8, fake: np.ndarray | None = None, d_values: float = 0.5,
             **columns) -> Snapshot:
    """A snapshot of `steps` steps. Columns default to a healthy BCE run at equilibrium
    (D ≈ 0.5, losses ≈ 2 log 2 and log 2, with per-step noise); pass an array or a
    function of the step array to override one. Coverage: (modes, HQ%) per evaluation."""
    rng = np.random.default_rng(seed)
    step = np.arange(1, steps + 1, dtype=float)
    healthy = dict(d_loss=2 * LOG2 + 0.05 * rng.standard_normal(steps),
                   g_loss=LOG2 + 0.05 * rng.standard_normal(steps),
                   d_real=0.5 + 0.03 * rng.standard_normal(steps),
                   d_fake=0.5 + 0.03 * rng.standard_normal(steps),
                   d_fake_g=0.5 + 0.03 * rng.standard_normal(steps),
                   g_grad_norm=np.abs(2.0 + 0.3 * rng.standard_normal(steps)),
                   d_grad_norm=np.abs(2.0 + 0.3 * rng.standard_normal(steps)))
    for name, value in columns.items():
        healthy[name] = value(step) if callable(value) else np.broadcast_to(value, (steps,)).astype(float)
    table = np.column_stack([step, step / 1000, *(healthy[n] for n in STAT_FIELDS)])
    if coverage is None:
        coverage = [(8, 80.0)] * 30
    cov_steps = np.linspace(steps / len(coverage), steps, len(coverage)) if coverage else []
    cov = np.array([[s, m, hq] for s, (m, hq) in zip(cov_steps, coverage)]).reshape(-1, 3)
    scores = np.zeros((0, 3))
    if digit_is is not None:
        scores = np.array([[s, v, 50.0] for s, v in zip(np.linspace(500, steps, len(digit_is)), digit_is)])
    return Snapshot(version=1, state="running", message=message, step=steps, steps_per_s=1000.0, device="cpu",
                    config=config or TrainConfig(dataset="ring8"), history=table, history_bin=1,
                    recent=table[-2048:], frame=frame(steps, n_modes, fake, d_values), coverage=cov, digit_scores=scores)


def only(found: list[Alert], kind: str) -> Alert:
    assert [a.kind for a in found] == [kind], [a.kind for a in found]
    return found[0]


def assert_fix_applies(alert: Alert, config: TrainConfig) -> TrainConfig:
    assert alert.fix, "the alert should offer a one-click fix"
    new = config.with_live(**alert.fix)  # raises ConfigError on a frozen field or bad value
    assert new != config
    for name in alert.fix:
        assert alerts.FIELD_WORDS[name] in alert.fix_label, "plain words on the button, not code names"
        assert "_" not in name or name not in alert.fix_label
    return new


# ------------------------------------------------------------------------------ healthy

@pytest.mark.parametrize("seed", range(3))
def test_healthy_synthetic_run_raises_no_alert(seed):
    assert detect(snapshot(seed=seed)) == []


def test_a_fresh_run_with_no_data_raises_no_alert():
    empty = Snapshot(version=0, state="idle", message="", step=0, steps_per_s=0.0, device="cpu",
                     config=TrainConfig(), history=np.zeros((0, 9)), history_bin=1, recent=np.zeros((0, 9)),
                     frame=None)
    assert detect(empty) == []


def test_old_nan_rows_outside_the_divergence_window_neither_alarm_nor_blind_the_detectors():
    # E.g. a run rewound past a blow-up whose telemetry still holds the bad steps.
    d_loss = np.full(3000, 2 * LOG2)
    d_loss[2800:2810] = np.nan  # inside the statistical window, before the divergence window
    assert detect(snapshot(d_loss=d_loss)) == []
    d_loss = swinging(0.2)["d_loss"](np.arange(1, 3001, dtype=float))
    d_loss[2800:2810] = np.nan
    # Swings only in the D loss: the NaN rows must not hide them.
    assert only(detect(snapshot(d_real=0.6, d_fake=0.4, d_loss=d_loss)), "oscillation")


def test_no_statistical_alert_during_warm_up():
    config = TrainConfig(loss="minimax")
    sick = snapshot(steps=alerts.WARMUP_STEPS - 50, config=config, d_fake_g=0.01, d_real=0.99,
                    coverage=[(8, 80.0)] * 5 + [(2, 80.0)] * 5,
                    d_loss=lambda s: 1.4 + 0.5 * np.sin(2 * np.pi * s / 80))
    assert detect(sick) == []


# ------------------------------------------------------------------------------ divergence

def test_nan_losses_fire_divergence_and_silence_other_alerts():
    config = TrainConfig(g_lr=1e-3, d_lr=2e-3)
    d_loss = np.full(3000, 2 * LOG2)
    d_loss[-3:] = np.nan
    found = detect(snapshot(config=config, d_loss=d_loss, d_fake_g=0.01, d_real=0.99))
    alert = only(found, "divergence")
    assert alert.severity == "error" and "d_loss" in alert.evidence
    new = assert_fix_applies(alert, config)
    assert new.g_lr == pytest.approx(1e-4) and new.d_lr == pytest.approx(2e-4)


def test_runner_nan_message_or_nan_samples_fire_divergence():
    msg = "Paused at step 812: a loss or weight became NaN/Inf (training diverged)."
    assert only(detect(snapshot(message=msg)), "divergence")
    bad = np.array([[0.0, np.inf], [1.0, 2.0]], np.float32)
    assert "samples" in only(detect(snapshot(fake=bad)), "divergence").evidence


def test_divergence_fix_stays_inside_the_valid_range():
    config = TrainConfig(g_lr=5e-6, d_lr=1e-6)
    d_loss = np.full(3000, np.inf)
    alert = only(detect(snapshot(config=config, d_loss=d_loss)), "divergence")
    assert alert.fix == {"g_lr": 1e-6}  # d_lr is already at its minimum: not offered


# ------------------------------------------------------------------------------ D overpowering

def test_strong_discriminator_with_nonsaturating_loss_suggests_slowing_d():
    config = TrainConfig(d_lr=1e-3)
    alert = only(detect(snapshot(config=config, d_real=0.97, d_fake=0.03, d_fake_g=0.03)), "d_overpowering")
    assert "D(G(z)) = 0.030" in alert.evidence
    assert assert_fix_applies(alert, config).d_lr == pytest.approx(1e-3 * alerts.D_LR_FIX_FACTOR)


def test_strong_discriminator_with_extra_critic_steps_suggests_one_step():
    config = TrainConfig(n_critic=5)
    alert = only(detect(snapshot(config=config, d_real=0.97, d_fake_g=0.03)), "d_overpowering")
    assert alert.fix == {"n_critic": 1}
    assert_fix_applies(alert, config)


def test_minimax_with_vanishing_generator_gradient_suggests_nonsaturating():
    config = TrainConfig(loss="minimax")
    # G's gradient decays from ~5 to ~0.05 while D rejects the fakes.
    found = detect(snapshot(config=config, d_real=0.98, d_fake_g=0.02,
                            g_grad_norm=lambda s: 5.0 * np.exp(-s / 400) + 0.05))
    alert = only(found, "vanishing_gradient")
    assert alert.fix == {"loss": "nonsaturating"} and "saturat" in alert.title
    assert "log(1 − D(G(z)))" in alert.explanation
    assert_fix_applies(alert, config)


def test_minimax_overpowered_without_collapsed_gradient_still_suggests_nonsaturating():
    config = TrainConfig(loss="minimax")
    alert = only(detect(snapshot(config=config, d_real=0.98, d_fake_g=0.02)), "d_overpowering")
    assert alert.fix == {"loss": "nonsaturating"}


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_raw_score_losses_are_not_judged_on_a_probability_scale(loss):
    # Raw critic outputs near 0 are normal for hinge / WGAN: no "D(G(z)) < 0.1" alert.
    config = TrainConfig(loss=loss)
    assert detect(snapshot(config=config, d_real=0.98, d_fake=0.02, d_fake_g=0.02, d_loss=2.0)) == []


# ------------------------------------------------------------------------------ oscillation

def swinging(amplitude: float, period: float = 120.0):
    return dict(d_real=lambda s: 0.5 + amplitude * np.sin(2 * np.pi * s / period),
                d_fake=lambda s: 0.5 - amplitude * np.sin(2 * np.pi * s / period),
                d_loss=lambda s: 2 * LOG2 + 2 * amplitude * np.sin(2 * np.pi * s / period))


def test_oscillating_players_fire_oscillation_with_smaller_learning_rates():
    config = TrainConfig(g_lr=1e-3, d_lr=1e-3)
    alert = only(detect(snapshot(config=config, **swinging(0.2))), "oscillation")
    new = assert_fix_applies(alert, config)
    assert new.g_lr == pytest.approx(5e-4) and new.d_lr == pytest.approx(5e-4)


def test_small_swings_and_per_step_noise_are_not_oscillation():
    assert detect(snapshot(**swinging(0.02))) == []
    rng = np.random.default_rng(1)
    noisy = dict(d_real=0.5 + 0.15 * rng.standard_normal(3000), d_fake=0.5 + 0.15 * rng.standard_normal(3000),
                 d_loss=2 * LOG2 + 0.3 * rng.standard_normal(3000))
    assert detect(snapshot(**noisy)) == []


def test_wobbles_of_a_tiny_d_loss_are_judged_on_the_loss_scale_not_as_a_percentage():
    # D ahead but not overpowering, its small loss wobbling by ±0.03: 30% of itself, but
    # nothing next to the cross-entropy scale of 2 log 2. Not oscillation.
    assert detect(snapshot(d_real=0.9, d_fake=0.2, d_fake_g=0.2,
                           d_loss=lambda s: 0.1 + 0.03 * np.sin(2 * np.pi * s / 120))) == []


def test_oscillation_of_the_hinge_loss_is_seen_in_its_d_loss():
    config = TrainConfig(loss="hinge")
    found = detect(snapshot(config=config, d_real=1.0, d_fake=-1.0,
                            d_loss=lambda s: 2.0 + 0.8 * np.sin(2 * np.pi * s / 120)))
    assert_fix_applies(only(found, "oscillation"), config)


# ------------------------------------------------------------------------------ mode collapse

def test_coverage_collapsing_from_its_best_fires_mode_collapse():
    config = TrainConfig()
    cov = [(8, 70.0)] * 20 + [(4, 75.0)] * 5
    alert = only(detect(snapshot(steps=1500, config=config, coverage=cov)), "mode_collapse")
    assert "4 of 8" in alert.title and "covered 8" in alert.evidence
    # 2-D with a probability loss: WGAN-GP with k = 5, the fix the lesson teaches.
    new = assert_fix_applies(alert, config)
    assert (new.loss, new.n_critic, new.g_lr, new.d_lr) == ("wgan-gp", 5, 1e-3, 1e-3)


def test_few_modes_after_warm_up_fire_mode_collapse_even_without_a_drop():
    cov = [(3, 40.0)] * 20
    assert only(detect(snapshot(steps=alerts.COLLAPSE_WARMUP_STEPS + 500, coverage=cov)), "mode_collapse")
    # The same numbers before the collapse warm-up: G may still be spreading out.
    assert detect(snapshot(steps=alerts.COLLAPSE_WARMUP_STEPS - 500, coverage=cov)) == []


def test_an_early_blurry_generator_is_not_called_collapsed():
    # At first G is a wide cloud touching every mode with almost no good samples; then it
    # concentrates. Few modes with a low HQ% is "not learned yet", not collapse.
    cov = [(8, 2.0)] * 10 + [(3, 5.0)] * 10
    assert detect(snapshot(steps=alerts.COLLAPSE_WARMUP_STEPS + 500, coverage=cov)) == []


def test_mode_collapse_lesson_fix_is_wgan_gp_as_its_text_says():
    from classroom.presets import get_preset

    preset = get_preset("mode_collapse")
    assert "WGAN-GP" in preset.explanation
    config = preset.config  # non-saturating, k = 5, G lr 1e-3, D lr 3e-3
    alert = only(detect(snapshot(config=config, coverage=[(3, 60.0)] * 10)), "mode_collapse")
    assert alert.fix == {"loss": "wgan-gp", "d_lr": 1e-3}, "k = 5 already; D back to the recommended rate"
    assert alert.fix_label == ("loss Non-saturating → Wasserstein + gradient penalty (WGAN-GP), "
                               "D's learning rate 0.003 → 0.001")
    assert_fix_applies(alert, config)


def test_a_collapse_already_on_wgan_gp_slows_g_instead():
    config = TrainConfig(dataset="ring8_wide", loss="wgan-gp", n_critic=5)
    alert = only(detect(snapshot(config=config, coverage=[(3, 60.0)] * 10)), "mode_collapse")
    assert alert.fix == {"g_lr": 5e-4} and "WGAN-GP" not in alert.suggestion


# --- the latch: on after COLLAPSE_ON_EVALS collapsed evaluations, off after COLLAPSE_OFF_EVALS clean

ON, OFF = alerts.COLLAPSE_ON_EVALS, alerts.COLLAPSE_OFF_EVALS
HEALTHY, COLLAPSED = (8, 80.0), (2, 90.0)


def collapse_alert(coverage, steps: int = 6000, **kw) -> Alert | None:
    found = [a for a in detect(snapshot(steps=steps, coverage=coverage, **kw)) if a.kind == "mode_collapse"]
    return found[0] if found else None


def reference_latch(flags, on: int, off: int) -> bool:
    """The latch as a plain state machine, one evaluation at a time."""
    state, run_on, run_off = False, 0, 0
    for flag in flags:
        run_on, run_off = (run_on + 1, 0) if flag else (0, run_off + 1)
        if run_on >= on:
            state = True
        if run_off >= off:
            state = False
    return state


@pytest.mark.parametrize("seed", range(20))
def test_the_vectorised_latch_matches_a_plain_state_machine(seed):
    rng = np.random.default_rng(seed)
    for n in range(0, 40):
        flags = rng.random(n) < rng.random()
        assert alerts.latched(flags, 3, 6) == reference_latch(flags, 3, 6), flags.astype(int)


def test_the_collapse_alert_appears_only_after_enough_collapsed_evaluations_in_a_row():
    assert collapse_alert([HEALTHY] * 30 + [COLLAPSED] * (ON - 1)) is None
    alert = collapse_alert([HEALTHY] * 30 + [COLLAPSED] * ON)
    assert alert is not None and "2 of 8" in alert.title
    # The same number, but not in a row, is not enough.
    assert collapse_alert([HEALTHY] * 30 + [COLLAPSED, HEALTHY] * ON) is None


def test_the_collapse_alert_clears_only_after_enough_clean_evaluations_in_a_row():
    start = [HEALTHY] * 20 + [COLLAPSED] * 10
    staying = collapse_alert(start + [HEALTHY] * (OFF - 1))
    assert staying is not None and "2 of 8" in staying.title, "the collapse it saw, not the latest frame"
    assert "8/8 modes covered" in staying.evidence and f"after {OFF} in a row" in staying.evidence
    assert collapse_alert(start + [HEALTHY] * OFF) is None


def test_a_jittery_collapsed_generator_does_not_make_the_alert_flap():
    # A collapsed G that touches every mode in one frame out of three: once up, the alert stays up
    # at every evaluation (without the latch it would blink off at every third).
    run = [HEALTHY] * 20 + [COLLAPSED] * ON + [COLLAPSED, COLLAPSED, HEALTHY] * 10
    shown = [collapse_alert(run[:n], steps=120 * n) is not None for n in range(20 + ON, len(run) + 1)]
    assert all(shown), shown
    # One collapsed frame in two never makes ON in a row: the alert never appears.
    run = [HEALTHY] * 20 + [COLLAPSED, HEALTHY] * 15
    assert not any(collapse_alert(run[:n], steps=120 * n) for n in range(21, len(run) + 1))


def test_a_live_change_takes_the_collapse_alert_down_until_the_new_rule_is_judged():
    from dataclasses import replace

    coverage = [HEALTHY] * 20 + [COLLAPSED] * 30  # one evaluation every 120 steps
    snap = snapshot(steps=6000, coverage=coverage)
    assert any(a.kind == "mode_collapse" for a in detect(snap))
    acted = replace(snap, events=((6000 - 120 * (ON - 1), "loss → wgan-gp"),))  # ON - 1 evaluations ago
    assert not any(a.kind == "mode_collapse" for a in detect(acted))
    acted = replace(snap, events=((6000 - 120 * ON, "loss → wgan-gp"),))  # ON evaluations ago: still collapsed
    assert any(a.kind == "mode_collapse" for a in detect(acted))


def test_digit_inception_score_collapse_fires_and_healthy_progress_does_not():
    config = TrainConfig(dataset="digits", g_lr=2e-4, d_lr=2e-4, batch_size=64, z_dim=64, width=32)
    falling = snapshot(config=config, n_modes=None, coverage=[], digit_is=[2, 4, 6, 7, 7, 4, 3.5, 3.2])
    alert = only(detect(falling), "mode_collapse")
    assert "3.20" in alert.evidence and "7.00" in alert.evidence
    assert alert.fix == {"g_lr": 1e-4}  # slow G down; WGAN-GP is only a suggestion:
    assert "Reset" in alert.suggestion  # its D has BatchNorm, so WGAN-GP needs a reset
    assert assert_fix_applies(alert, config).g_lr == pytest.approx(1e-4), "slow G down, never a WGAN-GP switch"
    rising = snapshot(config=config, n_modes=None, coverage=[], digit_is=[1.5, 3, 5, 6.5, 7, 7.2, 7.1])
    assert detect(rising) == []


def test_a_fix_the_engine_would_refuse_is_never_offered():
    from classroom.alerts import _fix

    with_bn = TrainConfig(dataset="digits")  # D built with BatchNorm: WGAN-GP needs a new run
    assert with_bn.d_batchnorm
    assert _fix(with_bn, loss="wgan-gp") == ({}, "")
    # A digits run that started with WGAN-GP (no BatchNorm) and switched away may switch back.
    no_bn = TrainConfig(dataset="digits", loss="wgan-gp").with_live(loss="hinge")
    fix, label = _fix(no_bn, loss="wgan-gp")
    assert fix == {"loss": "wgan-gp"} and label


def test_oscillation_lesson_fix_brings_both_rates_back_and_wins_over_d_overpowering():
    from classroom.presets import get_preset

    config = get_preset("oscillation").config  # both lrs 2e-2
    swings = swinging(0.2)
    found = detect(snapshot(config=config, d_real=lambda s: 0.95 + 0.04 * np.sin(s / 19), d_fake=swings["d_fake"],
                            d_fake_g=0.05, d_loss=swings["d_loss"]))
    assert [a.kind for a in found] == ["oscillation", "d_overpowering"]
    button = next(a for a in found if a.fix)  # what the page's Apply-fix button applies
    assert button.fix == {"g_lr": 1e-3, "d_lr": 1e-3}, "the lesson: bring both learning rates back to 10⁻³"


def test_strong_d_lesson_fix_is_the_loss_switch_alone_as_its_text_says():
    from classroom.presets import get_preset

    preset = get_preset("strong_d")
    config = preset.config  # minimax, G 1e-3, D 3e-3, k = 5
    alert = detect(snapshot(config=config, d_real=0.98, d_fake=0.02, d_fake_g=0.02))[0]
    assert alert.kind in ("d_overpowering", "vanishing_gradient")
    assert alert.fix == {"loss": "nonsaturating"} and alert.fix_label == "loss Minimax / saturating → Non-saturating"
    assert "non-saturating" in preset.explanation


def test_a_minimax_g_slower_than_d_also_gets_ds_rate():
    config = TrainConfig(loss="minimax", g_lr=1e-4, d_lr=1e-3, n_critic=5)
    alert = detect(snapshot(config=config, d_real=0.98, d_fake=0.02, d_fake_g=0.02))[0]
    assert alert.fix == {"loss": "nonsaturating", "g_lr": 1e-3}
    fast_d = TrainConfig(loss="minimax", g_lr=1e-4, d_lr=1e-2)  # never above the recommended rate
    assert detect(snapshot(config=fast_d, d_real=0.98, d_fake=0.02, d_fake_g=0.02))[0].fix["g_lr"] == 1e-3


# ------------------------------------------------------------------------------ D collapsed

def test_a_constant_d_away_from_one_half_fires_d_collapsed_with_a_lower_d_lr():
    config = TrainConfig(d_lr=0.032)  # 10^-1.5, as in the issue
    sick = snapshot(config=config, d_values=0.38, d_real=0.38, d_fake=0.38, d_fake_g=0.38)
    alert = only(detect(sick), "d_collapsed")
    assert "0.38" in alert.title and "not G winning" in alert.explanation
    assert assert_fix_applies(alert, config).d_lr == pytest.approx(default_config("ring8").d_lr)


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge"])
def test_d_at_one_half_everywhere_or_a_raw_score_is_not_d_collapsed(loss):
    # 0.5 everywhere is the equilibrium (G has won); raw scores have no fixed scale.
    assert detect(snapshot(config=TrainConfig(loss=loss), d_values=0.5 if loss != "hinge" else 0.38,
                           d_loss=2.0 if loss == "hinge" else 2 * LOG2)) == []


def test_a_real_discriminator_stuck_at_a_constant_fires_d_collapsed():
    torch.set_num_threads(1)
    # A D whose last layer is zero with bias logit(0.38) outputs 0.38 everywhere; at the
    # smallest learning rate it stays (almost) constant, as a D killed by a huge rate does.
    config = TrainConfig(dataset="ring8_wide", width=16, depth=2, batch_size=64, z_dim=2, d_lr=1e-6, device="cpu")
    e, tel = Engine(config), Telemetry()
    last = [m for m in e.D.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(float(np.log(0.38 / 0.62)))
    tel.set_status("running", config=config, device="cpu")
    for _ in range(6):
        for _ in range(100):
            e.step()
        stats = e.drain_stats()
        tel.record_steps(np.arange(e.step_count - len(stats) + 1, e.step_count + 1), np.zeros(len(stats)), stats, 0.0)
    tel.record_frame(e.evaluate())
    found = detect(tel.snapshot())
    assert found and found[0].kind == "d_collapsed", [a.kind for a in found]


def test_alert_rejects_an_unknown_severity():
    with pytest.raises(ValueError, match="severity"):
        Alert(kind="oscillation", title="t", explanation="e", suggestion="s", severity="panic")


# ------------------------------------------------------------------------------ real runs

def run_real(config: TrainConfig, steps: int, every: int = 100) -> list[list[Alert]]:
    """Train for real, publishing telemetry like the runner does; detect() after each chunk."""
    e, tel = Engine(config), Telemetry()
    tel.set_status("running", config=config, device="cpu")
    seen = []
    for _ in range(steps // every):
        for _ in range(every):
            e.step()
        stats = e.drain_stats()
        tel.record_steps(np.arange(e.step_count - len(stats) + 1, e.step_count + 1),
                         np.zeros(len(stats)), stats, 0.0)
        tel.record_frame(e.evaluate())
        seen.append(detect(tel.snapshot()))
    return seen


def test_real_healthy_run_raises_no_alert():
    """Long enough that every detector is past its warm-up for the last checks."""
    torch.set_num_threads(1)
    config = TrainConfig(dataset="ring8_wide", width=16, depth=2, batch_size=64, z_dim=2, device="cpu")
    every = 250
    seen = run_real(config, alerts.COLLAPSE_WARMUP_STEPS + 2 * every, every)
    assert (len(seen) - 2) * every >= alerts.COLLAPSE_WARMUP_STEPS  # the last two checks judge everything
    assert [a.kind for found in seen for a in found] == []


def test_real_blow_up_raises_divergence():
    torch.set_num_threads(1)
    # β₂ = 0 makes Adam's step ≈ lr · sign(g) with momentum 0.999: at lr 0.1 the weights explode.
    config = TrainConfig(dataset="ring8_wide", loss="lsgan", width=16, depth=2, batch_size=64, z_dim=2,
                         g_lr=0.1, d_lr=0.1, beta1=0.999, beta2=0.0, device="cpu")
    seen = run_real(config, 400)
    assert any(a.kind == "divergence" for a in seen[-1])
