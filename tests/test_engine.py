"""Tests for gan_core/engine.py: the training step, live hyperparameters, Adam,
the hand-written 2-D step against autograd, and evaluation frames."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gan_core import engine as engine_mod
from gan_core import evaluation, torch_ops
from configs import tiny_config as tiny
from gan_core.config import FROZEN_FIELDS, LIVE_FIELDS, ConfigError, TrainConfig
from gan_core.data import DIGITS_FILE
from gan_core.engine import (N_EVAL_POINTS, N_STATS, R1_EVERY, STAT_FIELDS, SURFACE_RES, Engine, adam_step,
                             resolve_device)
from gan_core.losses import LOSSES
from gan_core.models import MLP

needs_digits = pytest.mark.skipif(not DIGITS_FILE.exists(), reason=f"{DIGITS_FILE} not built yet")


def params(e: Engine) -> list[torch.Tensor]:
    return [p.detach().clone() for p in (*e.G.parameters(), *e.D.parameters())]


def run(e: Engine, n: int) -> np.ndarray:
    for _ in range(n):
        e.step()
    return e.drain_stats()


def manual_adam(p, g, m, v, t, lr, beta1, beta2, eps=1e-8):
    """Kingma & Ba (2015), Algorithm 1, one step from moments (m, v) after t steps."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    t = t + 1
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return p - lr * m_hat / (v_hat.sqrt() + eps)


# ---------------------------------------------------------------- targets and live changes

@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "lsgan"])
def test_apply_sets_smoothed_targets_for_target_losses(loss):
    e = Engine(tiny(loss=loss))
    assert (e.real_target, e.fake_target) == (1.0, 0.0)
    e.apply(e.config.with_live(label_smoothing=0.1))
    assert (e.real_target, e.fake_target) == pytest.approx((0.9, 0.0))
    e.apply(e.config.with_live(two_sided_smoothing=True))
    assert (e.real_target, e.fake_target) == pytest.approx((0.9, 0.1))


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_smoothing_is_ignored_for_hinge_and_wgan_gp(loss):
    e = Engine(tiny(loss=loss, label_smoothing=0.2, two_sided_smoothing=True))
    assert (e.real_target, e.fake_target) == (1.0, 0.0)
    e.apply(e.config.with_live(loss="lsgan"))  # switching back to a target loss honours them
    assert (e.real_target, e.fake_target) == pytest.approx((0.8, 0.2))


def test_live_lr_change_keeps_adam_state_and_the_next_step_uses_the_new_lr():
    e = Engine(tiny(d_lr=1e-3, g_lr=1e-3))
    run(e, 3)
    d_params = list(e.D.parameters())
    before = {id(p): {k: e.d_opt.state[p][k] for k in ("exp_avg", "exp_avg_sq", "step")} for p in d_params}
    values = {id(p): {k: t.clone() for k, t in s.items()} for p in d_params for s in [before[id(p)]]}

    e.apply(e.config.with_live(d_lr=5e-3, beta1=0.6))
    assert e.d_opt.param_groups[0]["lr"] == 5e-3 and e.d_opt.param_groups[0]["betas"] == (0.6, 0.999)
    assert e.g_opt.param_groups[0]["lr"] == 1e-3
    for p in d_params:
        for k in ("exp_avg", "exp_avg_sq", "step"):
            assert e.d_opt.state[p][k] is before[id(p)][k]  # same tensors, not re-created
            assert torch.equal(e.d_opt.state[p][k], values[id(p)][k])  # and not reset
        assert float(e.d_opt.state[p]["step"]) == 3

    p_before = [p.detach().clone() for p in d_params]
    run(e, 1)  # n_critic = 1: one D update, whose gradient stays in p.grad
    for p, p0 in zip(d_params, p_before):
        s = values[id(p)]
        new = manual_adam(p0, p.grad, s["exp_avg"], s["exp_avg_sq"], 3, 5e-3, 0.6, 0.999)
        old = manual_adam(p0, p.grad, s["exp_avg"], s["exp_avg_sq"], 3, 1e-3, 0.5, 0.999)
        torch.testing.assert_close(p.detach(), new, rtol=1e-5, atol=1e-7)
        if (new - old).abs().max() > 1e-5:  # the old lr would have been visibly different
            assert not torch.allclose(p.detach(), old, rtol=1e-5, atol=1e-7)
    assert float(e.d_opt.state[d_params[0]]["step"]) == 4


@pytest.mark.parametrize("field, value", [("width", 16), ("ema_decay", 0.5), ("seed", 3), ("pack", 2)])
def test_apply_refuses_every_kind_of_frozen_field(field, value):
    e = Engine(tiny())
    assert field in FROZEN_FIELDS
    with pytest.raises(ConfigError, match=f"{field} cannot change"):
        e.apply(TrainConfig(**{**e.config.to_dict(), field: value}))
    assert e.config == tiny()  # nothing applied


def test_apply_and_with_live_agree_on_every_field():
    """Each field is either accepted by both or refused by both (one frozen set)."""
    e = Engine(tiny(ema_decay=0.9))
    changed = dict(loss="hinge", g_lr=2e-3, d_lr=2e-3, beta1=0.6, beta2=0.99, n_critic=2, label_smoothing=0.1,
                   two_sided_smoothing=True, batch_size=32, gp_weight=5.0, r1_gamma=1.0, lr_decay_steps=100,
                   lr_decay_final=0.5, dataset="grid25", z_dim=4, width=16, depth=1, pack=2, ema_decay=0.5,
                   seed=1, device="auto")
    # Every field is tried; d_batchnorm can only differ on digits (its own test below).
    assert set(changed) | {"d_batchnorm"} == set(e.config.to_dict())
    for field, value in changed.items():
        other = TrainConfig(**{**e.config.to_dict(), field: value})
        assert getattr(other, field) != getattr(e.config, field)
        try:
            e.config.with_live(**{field: value})
            accepted_by_config = True
        except ConfigError:
            accepted_by_config = False
        try:
            Engine(e.config).apply(other)
            accepted_by_engine = True
        except ConfigError:
            accepted_by_engine = False
        assert accepted_by_config == accepted_by_engine == (field in LIVE_FIELDS), field


def test_live_lr_decay_change_takes_effect_at_the_next_step():
    e = Engine(tiny(g_lr=1e-3, d_lr=1e-3))
    run(e, 10)
    e.apply(e.config.with_live(lr_decay_steps=20, lr_decay_final=0.0))
    run(e, 1)  # scheduled at step 10 of 20: half the lr
    assert e.g_opt.param_groups[0]["lr"] == pytest.approx(0.5e-3)
    e.apply(e.config.with_live(lr_decay_steps=0))
    run(e, 1)
    assert e.g_opt.param_groups[0]["lr"] == pytest.approx(1e-3)


@needs_digits
def test_wgan_gp_on_a_digits_d_with_batchnorm_is_refused_and_start_with_it_builds_none():
    small = dict(dataset="digits", width=4, z_dim=4, batch_size=8, device="cpu")
    bn = Engine(TrainConfig(**small))
    assert bn.config.d_batchnorm and any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.D.modules())
    with pytest.raises(ConfigError, match="WGAN-GP needs a discriminator without BatchNorm"):
        bn.apply(bn.config.with_live(loss="wgan-gp"))
    assert bn.loss.name == "nonsaturating"
    wgan = Engine(TrainConfig(loss="wgan-gp", **small))
    assert not wgan.config.d_batchnorm
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in wgan.D.modules())
    wgan.apply(wgan.config.with_live(loss="hinge"))  # a D without BatchNorm takes any loss
    wgan.apply(wgan.config.with_live(loss="wgan-gp"))
    assert np.isfinite(run(wgan, 1)).all()


def test_live_batch_size_change_reallocates_buffers_and_keeps_training():
    e = Engine(tiny(pack=2, batch_size=16))
    run(e, 2)
    e.apply(e.config.with_live(batch_size=32))
    stats = run(e, 2)
    assert e.real_buf.shape[0] == 32 and e.z_buf.shape == (32, 3)
    assert stats.shape == (2, N_STATS) and np.isfinite(stats).all()
    assert e.step_count == 4


def test_switching_to_wgan_gp_uses_the_autograd_step_and_back():
    e = Engine(tiny())
    assert e._use_fast
    e.apply(e.config.with_live(loss="wgan-gp"))
    assert not e._use_fast
    assert np.isfinite(run(e, 2)).all()
    e.apply(e.config.with_live(loss="hinge"))
    assert e._use_fast


# ---------------------------------------------------------------- Adam

@pytest.mark.parametrize("dataset", ["ring8", pytest.param("digits", marks=needs_digits)])
def test_lazy_r1_adds_a_d_update_every_r1_every_steps_only(dataset):
    small = dict(width=4, z_dim=4, batch_size=8) if dataset == "digits" else {}
    plain, r1 = Engine(tiny(dataset=dataset, **small)), Engine(tiny(dataset=dataset, r1_gamma=5.0, **small))
    d_steps = lambda e: int(e.d_opt.state[next(iter(e.D.parameters()))]["step"])
    for _ in range(R1_EVERY - 1):  # no penalty yet: the two runs are identical
        plain.step(), r1.step()
    assert all(torch.equal(a, b) for a, b in zip(params(plain), params(r1)))
    plain.step(), r1.step()
    assert d_steps(r1) == d_steps(plain) + 1  # one extra, penalty-only D update
    d_plain, d_r1 = list(plain.D.parameters()), list(r1.D.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(d_plain, d_r1))
    assert all(torch.equal(a, b) for a, b in zip(plain.G.parameters(), r1.G.parameters()))
    assert np.isfinite(r1.drain_stats()).all()


def test_r1_gamma_and_gp_weight_change_live_and_take_effect_at_the_next_step():
    e = Engine(tiny(r1_gamma=0.0))
    e.apply(e.config.with_live(r1_gamma=5.0, gp_weight=3.0))
    d_adam_steps = lambda: int(e.d_opt.state[e.d_params[0]]["step"])
    run(e, R1_EVERY)
    assert d_adam_steps() == R1_EVERY + 1  # the penalty update now runs


def test_r1_penalty_flattens_d_on_the_data():
    """Trained only on the penalty, D's slope at the real points shrinks."""
    e = Engine(tiny(r1_gamma=10.0, d_lr=1e-2))
    real = e.data.sample(256, torch.Generator().manual_seed(1))

    def slope() -> float:
        x = real.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(e.D(x).sum(), x)
        return float(g.pow(2).sum(1).mean())

    before = slope()
    for _ in range(50):
        e._r1_update()
    assert slope() < 0.5 * before


def test_adam_step_matches_opt_step_exactly():
    a = MLP(3, 2, 8, 2, torch.Generator().manual_seed(0))
    b = copy.deepcopy(a)
    opt_a = torch.optim.Adam(a.parameters(), 1e-2, (0.5, 0.999), fused=True)
    opt_b = torch.optim.Adam(b.parameters(), 1e-2, (0.5, 0.999), fused=True)
    g = torch.Generator().manual_seed(1)
    for i in range(6):
        if i == 3:  # a live change in param_groups is honoured by both
            for opt in (opt_a, opt_b):
                opt.param_groups[0].update(lr=3e-3, betas=(0.7, 0.99))
        for pa, pb in zip(a.parameters(), b.parameters()):
            grad = torch.randn(pa.shape, generator=g)
            pa.grad, pb.grad = grad.clone(), grad.clone()
        opt_a.step()
        adam_step(opt_b)
    # The same kernel gives the same bits; torch_ops' public fallback, if bound, agrees to a rounding.
    exact = torch_ops.FAST["fused_adam"]
    for pa, pb in zip(a.parameters(), b.parameters()):
        for x, y in ((pa, pb), *((opt_a.state[pa][k], opt_b.state[pb][k]) for k in ("exp_avg", "exp_avg_sq", "step"))):
            if exact:
                assert torch.equal(x, y)
            else:
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-8)
    assert float(opt_b.state[next(b.parameters())]["step"]) == 6
    # And it is really an Adam step (reference: Kingma & Ba).
    p0 = [p.detach().clone() for p in b.parameters()]
    st = [{k: opt_b.state[p][k].clone() for k in ("exp_avg", "exp_avg_sq")} for p in b.parameters()]
    adam_step(opt_b)  # same gradients as the last step
    for p, q, s in zip(b.parameters(), p0, st):
        ref = manual_adam(q, p.grad, s["exp_avg"], s["exp_avg_sq"], 6, 3e-3, 0.7, 0.99)
        torch.testing.assert_close(p.detach(), ref, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- the step

@pytest.mark.parametrize("loss", ["nonsaturating", "minimax", "lsgan", "hinge"])
@pytest.mark.parametrize("pack", [1, 2])
@pytest.mark.parametrize("smoothing", [(0.0, False), (0.1, False), (0.2, True)])
def test_hand_written_2d_step_matches_autograd(loss, pack, smoothing):
    cfg = tiny(loss=loss, pack=pack, label_smoothing=smoothing[0], two_sided_smoothing=smoothing[1],
               n_critic=2, d_lr=1e-2, g_lr=1e-2)
    fast, slow = Engine(cfg), Engine(cfg)
    slow._use_fast = False
    assert fast._use_fast
    for _ in range(3):
        fast.step()
        slow.step()
    np.testing.assert_allclose(fast.drain_stats(), slow.drain_stats(), rtol=1e-4, atol=1e-5)
    for a, b in zip(params(fast), params(slow)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert not torch.equal(params(fast)[0], params(Engine(cfg))[0])  # training moved the weights


@pytest.mark.parametrize("fast", [True, False])
def test_n_critic_discriminator_steps_per_generator_step(fast):
    e = Engine(tiny(n_critic=3))
    e._use_fast = fast
    run(e, 4)
    d_steps = {float(s["step"]) for s in e.d_opt.state.values()}
    g_steps = {float(s["step"]) for s in e.g_opt.state.values()}
    assert d_steps == {12.0} and g_steps == {4.0}
    assert e.step_count == 4


@pytest.mark.parametrize("fast", [True, False])
def test_step_is_k_d_updates_then_one_g_update(fast):
    """step() and n_critic × d_update() + g_update() train identically (same RNG stream)."""
    cfg = tiny(n_critic=2, ema_decay=0.9)
    a, b = Engine(cfg), Engine(cfg)
    a._use_fast = b._use_fast = fast
    a.step()
    b.d_update(), b.d_update(), b.g_update()
    assert all(torch.equal(x, y) for x, y in zip(params(a), params(b)))
    assert all(torch.equal(x, y) for x, y in zip(a.G_ema.parameters(), b.G_ema.parameters()))
    assert (a.d_updates, a.g_updates, a.step_count) == (2, 1, 1)
    assert (b.d_updates, b.g_updates, b.step_count) == (2, 1, 3)  # three rows: one per call
    row_a, rows_b = a.drain_stats()[0], b.drain_stats()
    np.testing.assert_array_equal(row_a, rows_b[-1])  # the G row carries the last D update's values


def test_d_only_and_g_only_rows_repeat_the_other_players_last_values():
    e = Engine(tiny())
    col = lambda rows, name: rows[:, STAT_FIELDS.index(name)]
    g_cols, d_cols = ("g_loss", "d_fake_g", "g_grad_norm"), ("d_loss", "d_real", "d_fake", "d_grad_norm")
    e.d_update()  # before any G update its columns are zeros
    first = e.drain_stats()
    assert all(col(first, name)[0] == 0.0 for name in g_cols)
    assert all(col(first, name)[0] != 0.0 for name in d_cols)
    g_before = [p.detach().clone() for p in e.G.parameters()]
    e.step()
    d_before = [p.detach().clone() for p in e.D.parameters()]
    e.d_update(), e.g_update()
    rows = e.drain_stats()
    for name in g_cols:  # D-only row: G's columns as after the step
        assert col(rows, name)[1] == col(rows, name)[0]
    for name in d_cols:  # G-only row: D's columns as after the D-only update
        assert col(rows, name)[2] == col(rows, name)[1]
    assert not all(torch.equal(p, q) for p, q in zip(e.G.parameters(), g_before))
    assert not all(torch.equal(p, q) for p, q in zip(e.D.parameters(), d_before))


def test_d_update_leaves_g_alone_and_g_update_leaves_d_alone():
    e = Engine(tiny(ema_decay=0.9))
    g0, ema0 = [p.detach().clone() for p in e.G.parameters()], [p.clone() for p in e.G_ema.parameters()]
    e.d_update()
    assert all(torch.equal(p, q) for p, q in zip(e.G.parameters(), g0))
    assert all(torch.equal(p, q) for p, q in zip(e.G_ema.parameters(), ema0))  # no G update, no EMA update
    d0 = [p.detach().clone() for p in e.D.parameters()]
    e.g_update()
    assert all(torch.equal(p, q) for p, q in zip(e.D.parameters(), d0))
    assert not all(torch.equal(p, q) for p, q in zip(e.G.parameters(), g0))
    assert (e.d_updates, e.g_updates) == (1, 1)


def test_same_seed_same_run_different_seed_different_run():
    a, b, c = Engine(tiny(seed=5)), Engine(tiny(seed=5)), Engine(tiny(seed=6))
    sa, sb, sc = run(a, 5), run(b, 5), run(c, 5)
    assert np.array_equal(sa, sb)
    assert all(torch.equal(x, y) for x, y in zip(params(a), params(b)))
    assert not np.array_equal(sa, sc)
    assert not torch.equal(params(a)[0], params(c)[0])


def test_stats_rows_are_finite_and_in_the_documented_order():
    e = Engine(tiny(loss="nonsaturating"))
    stats = run(e, 5)
    assert stats.shape == (5, N_STATS) == (5, len(STAT_FIELDS)) and stats.dtype == np.float64
    assert np.isfinite(stats).all()
    col = {name: stats[:, i] for i, name in enumerate(STAT_FIELDS)}
    for name in ("d_real", "d_fake", "d_fake_g"):  # probabilities for the BCE losses
        assert ((0 < col[name]) & (col[name] < 1)).all()
    assert (col["g_grad_norm"] > 0).all() and (col["d_grad_norm"] > 0).all()
    assert run(e, 0).shape == (0, N_STATS)  # drained


def test_first_step_d_loss_matches_a_reference_recomputation():
    """Re-run the first D batch from the same RNG stream and check the logged D loss."""
    cfg = tiny(n_critic=1, label_smoothing=0.1)
    e = Engine(cfg)
    ref = Engine(cfg)
    real = ref.data.sample(cfg.batch_size, ref.rng)
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=ref.rng)
    with torch.no_grad():
        r, f = ref.D(real), ref.D(ref.G(z))
    expected = LOSSES["nonsaturating"].d_loss(r, f, 0.9, 0.0)
    stats = run(e, 1)
    assert stats[0, STAT_FIELDS.index("d_loss")] == pytest.approx(float(expected), rel=1e-5)
    assert stats[0, STAT_FIELDS.index("d_real")] == pytest.approx(float(torch.sigmoid(r).mean()), rel=1e-5)


def test_stats_buffer_full_raises_a_clear_error(monkeypatch):
    monkeypatch.setattr(engine_mod, "STATS_CAPACITY", 4)
    e = Engine(tiny())
    for _ in range(4):
        e.step()
    before = params(e)
    for one_more in (e.step, e.d_update, e.g_update):
        with pytest.raises(RuntimeError, match="drain_stats"):
            one_more()
    assert e.step_count == 4 and all(torch.equal(a, b) for a, b in zip(before, params(e)))  # refused, not run
    assert e.drain_stats().shape == (4, N_STATS)
    e.step()
    assert e.step_count == 5


@pytest.mark.parametrize("pack", [1, 2])
def test_wgan_gp_penalises_one_gradient_per_d_decision(monkeypatch, pack):
    """With PacGAN packing, D is a function of the whole pack, so each interpolate
    the penalty sees must be one packed input (Gulrajani et al. on the packed critic)."""
    calls = []
    real_gp = engine_mod.gradient_penalty

    def spy(critic, real, fake, generator=None):
        rows = []

        def watched(x):
            out = critic(x)
            rows.append((x.shape[0], out.shape[0]))
            return out

        calls.append(rows)
        return real_gp(watched, real, fake, generator)

    monkeypatch.setattr(engine_mod, "gradient_penalty", spy)
    e = Engine(tiny(loss="wgan-gp", pack=pack, n_critic=2))
    stats = run(e, 1)
    assert np.isfinite(stats).all()
    assert len(calls) == 2  # once per critic update
    for (n_in, n_out), in calls:
        assert n_in == n_out == e.config.batch_size // pack


def test_zeroed_d_weights_give_gp_of_one():
    """A constant critic has zero gradient, so the penalty is (0 − 1)² = 1 and
    the logged D loss is E f(G(z)) − E f(x) + λ·1 = λ."""
    e = Engine(tiny(loss="wgan-gp", pack=2, gp_weight=3.0))
    with torch.no_grad():
        for p in e.D.parameters():
            p.zero_()
    stats = run(e, 1)
    assert stats[0, STAT_FIELDS.index("d_loss")] == pytest.approx(3.0)


@needs_digits
@pytest.mark.parametrize("loss", ["nonsaturating", "wgan-gp"])
def test_dcgan_digits_step_and_evaluate(loss):
    e = Engine(TrainConfig(dataset="digits", loss=loss, batch_size=8, width=4, z_dim=4, device="cpu"))
    assert not e._use_fast
    stats = run(e, 1)
    assert stats.shape == (1, N_STATS) and np.isfinite(stats).all()
    frame = e.evaluate()
    assert frame.step == 1
    assert frame.fake.shape == (64, 28, 28) and frame.real.shape == (64, 28, 28)
    assert frame.generator == "G" and frame.fake_raw is None
    assert frame.surface is None and frame.g_field is None and frame.modes_covered is None
    assert frame.d_real_values.shape == (256,) and frame.d_fake_values.shape == (64,)
    assert (frame.value_estimate is None) == (loss == "wgan-gp")


# ---------------------------------------------------------------- evaluation

@pytest.mark.parametrize("pack", [1, 2])
def test_evaluate_2d_frame_shapes_and_read_only_arrays(pack):
    e = Engine(tiny(pack=pack))
    run(e, 2)
    frame = e.evaluate()
    assert frame.step == 2
    assert frame.real.shape == frame.fake.shape == (N_EVAL_POINTS, 2)
    assert frame.d_real_values.shape == frame.d_fake_values.shape == (N_EVAL_POINTS,)
    assert frame.surface.shape == (SURFACE_RES, SURFACE_RES) and frame.surface_extent == e.data.bounds
    assert frame.g_field.shape == (N_EVAL_POINTS, 2)
    assert frame.n_modes == 8 and 0 <= frame.modes_covered <= 8 and 0.0 <= frame.hq_percent <= 100.0
    assert frame.value_estimate is not None and frame.value_estimate <= 0.0
    for arr in (frame.real, frame.fake, frame.surface, frame.g_field, frame.d_real_values):
        with pytest.raises(ValueError):
            arr[0] = 0.0
    np.testing.assert_array_equal(frame.real, e.evaluate().real)  # fixed real batch


def test_evaluate_surface_is_d_on_the_grid_and_g_field_lowers_the_g_loss():
    e = Engine(tiny(pack=2))
    run(e, 3)
    frame = e.evaluate()
    x0, x1, y0, y1 = frame.surface_extent
    # surface[i, j] is D at (x_j, y_i) (rows = y, as a heatmap expects)
    point = torch.tensor([[x1, y0]]).repeat(2, 1)
    with torch.no_grad():
        d = torch.sigmoid(e.D(point)).item()
    assert frame.surface[0, -1] == pytest.approx(d, rel=1e-5)
    # Moving each fake a little along G's push lowers G's loss (first-order descent).
    loss = e.loss
    fake = torch.from_numpy(frame.fake.copy())
    push = torch.from_numpy(frame.g_field.copy())
    with torch.no_grad():
        before = loss.g_loss(evaluation.d_single(e, fake))
        after = loss.g_loss(evaluation.d_single(e, fake + 1e-3 * push / push.norm(dim=1).max()))
    assert after < before


def test_evaluate_has_no_coverage_for_point_clouds():
    e = Engine(tiny(dataset="spiral"))
    frame = e.evaluate()
    assert frame.modes_covered is None and frame.n_modes is None and frame.hq_percent is None


def test_sample_is_reproducible_and_leaves_training_rng_alone():
    e = Engine(tiny())
    state = e.rng.get_state()
    a, b = e.sample(10, seed=1), e.sample(10, seed=1)
    assert a.shape == (10, 2) and torch.equal(a, b)
    assert not torch.equal(a, e.sample(10, seed=2))
    assert torch.equal(e.rng.get_state(), state)


def test_parameters_finite_detects_nan():
    e = Engine(tiny())
    assert e.parameters_finite()
    with torch.no_grad():
        next(e.D.parameters())[0, 0] = float("nan")
    assert not e.parameters_finite()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


# --- EMA of G and learning-rate decay --------------------------------------------------------

def test_g_ema_tracks_a_manual_exponential_moving_average():
    engine = Engine(TrainConfig(width=8, depth=1, batch_size=16, ema_decay=0.9))
    expected = [p.detach().clone() for p in engine.G.parameters()]
    for _ in range(25):
        engine.step()
        t = engine.step_count
        decay = min(0.9, (1 + t) / (10 + t))
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, engine.G.parameters())]
    for e, p in zip(expected, engine.G_ema.parameters()):
        torch.testing.assert_close(p, e, rtol=1e-5, atol=1e-6)
    assert not any(p.requires_grad for p in engine.G_ema.parameters())
    assert not torch.equal(engine.sample(8, ema=True), engine.sample(8))


def test_frames_show_the_ema_of_g_when_kept_with_raw_g_beside_it():
    e = Engine(tiny(ema_decay=0.99, pack=2))
    run(e, 30)
    frame = e.evaluate()
    assert frame.generator == "G (EMA of weights)"
    with torch.no_grad():
        ema, raw = e.G_ema(e.eval_noise) * e.data.scale, e.G(e.eval_noise) * e.data.scale
        cov = evaluation.mode_coverage(e.G_ema(e.coverage_noise) * e.data.scale, e.data.modes, e.data.sigma)
    np.testing.assert_array_equal(frame.fake, ema.numpy())
    np.testing.assert_array_equal(frame.fake_raw, raw.numpy())
    assert not np.array_equal(frame.fake, frame.fake_raw)
    assert (frame.modes_covered, frame.hq_percent) == (cov.modes_covered, cov.hq_percent)
    assert len(e.coverage_noise) == 2500  # as many samples as the quality benchmark scores
    plain = Engine(tiny()).evaluate()
    assert plain.generator == "G" and plain.fake_raw is None


def test_no_ema_by_default_and_sample_falls_back_to_g():
    engine = Engine(TrainConfig(width=8, depth=1, batch_size=16))
    assert engine.G_ema is None
    assert torch.equal(engine.sample(8, ema=True), engine.sample(8))


def test_linear_lr_decay_reaches_the_final_fraction():
    cfg = TrainConfig(width=8, depth=1, batch_size=16, g_lr=1e-3, d_lr=2e-3, lr_decay_steps=10, lr_decay_final=0.1)
    engine = Engine(cfg)
    for _ in range(6):
        engine.step()
    # The 6th step ran with the lr scheduled at step_count 5: 1 − 0.9 · 5/10 = 0.55.
    assert engine.g_opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.55)
    assert engine.d_opt.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.55)
    for _ in range(20):
        engine.step()
    assert engine.g_opt.param_groups[0]["lr"] == pytest.approx(1e-4)
