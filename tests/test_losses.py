"""Tests for gan_core/losses.py against hand-computed values and autograd."""

from __future__ import annotations

import math

import pytest
import torch

from gan_core import losses
from gan_core.losses import LOSSES, get_loss, gradient_penalty, r1_penalty, smoothed_targets

LN3 = math.log(3.0)
TARGETS = [(1.0, 0.0), (0.9, 0.0), (0.9, 0.1), (0.7, 0.3)]


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).reshape(-1, 1)  # D outputs are (B, 1)


# ---------------------------------------------------------------- hand-computed values

def test_bce_matches_the_textbook_formula_with_and_without_smoothing():
    logits = t(0.0, LN3)  # σ = 0.5, 0.75
    assert float(losses.bce_with_logits(logits, 1.0)) == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2)
    assert float(losses.bce_with_logits(logits, 0.0)) == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25) + 0.9 * math.log(0.5) + 0.1 * math.log(0.5)) / 2
    assert float(losses.bce_with_logits(logits, 0.9)) == pytest.approx(expected)


def test_bce_losses_on_logits_zero_and_ln3():
    r, f = t(0.0, LN3), t(0.0, -LN3)  # D(x) = 0.5, 0.75; D(G(z)) = 0.5, 0.25
    # −E log D(x) − E log(1 − D(G(z))) = (ln 2 + ln 4/3)/2 · 2 = ln(8/3)
    assert float(losses.d_loss_bce(r, f)) == pytest.approx(math.log(8 / 3))
    # non-saturating: −E log D(G(z)) = (ln 2 + ln 4)/2
    assert float(losses.g_loss_nonsaturating(f)) == pytest.approx(1.5 * math.log(2))
    # minimax: E log(1 − D(G(z))) = (ln 0.5 + ln 0.75)/2
    assert float(losses.g_loss_minimax(f)) == pytest.approx((math.log(0.5) + math.log(0.75)) / 2)
    # one-sided smoothing, real target 0.9
    d_smooth = -(0.9 * math.log(0.5) + 0.1 * math.log(0.5) + 0.9 * math.log(0.75) + 0.1 * math.log(0.25)) / 2
    d_smooth += -(math.log(0.5) + math.log(0.75)) / 2
    assert float(losses.d_loss_bce(r, f, 0.9, 0.0)) == pytest.approx(d_smooth)


def test_minimax_saturates_where_nonsaturating_does_not():
    f = t(-8.0)  # D confidently rejects the fake: D(G(z)) ≈ 3e-4
    g_mm = abs(float(losses.g_grad_minimax(f)))
    g_ns = abs(float(losses.g_grad_nonsaturating(f)))
    assert g_mm < 1e-3 and g_ns > 0.99


def test_lsgan_hinge_and_wasserstein_values():
    r, f = t(0.0, 2.0), t(1.0, -1.0)
    assert float(losses.d_loss_lsgan(r, f)) == pytest.approx(0.5 * 1.0 + 0.5 * 1.0)
    assert float(losses.d_loss_lsgan(r, f, 0.9, 0.1)) == pytest.approx(
        0.5 * (0.81 + 1.21) / 2 + 0.5 * (0.81 + 1.21) / 2)
    assert float(losses.g_loss_lsgan(f)) == pytest.approx(0.5 * (0 + 4) / 2)
    r, f = t(0.5, 2.0), t(-2.0, 0.5)
    assert float(losses.d_loss_hinge(r, f)) == pytest.approx((0.5 + 0) / 2 + (0 + 1.5) / 2)
    assert float(losses.g_loss_critic(f)) == pytest.approx(0.75)
    assert float(losses.d_loss_wasserstein(r, f)) == pytest.approx(-0.75 - 1.25)


@pytest.mark.parametrize("name", [n for n, l in LOSSES.items() if l.d_loss_equilibrium is not None])
def test_losses_at_the_equilibrium_output_equal_the_documented_values(name):
    loss = LOSSES[name]
    raw = 0.0 if loss.is_probability else loss.d_equilibrium  # logit(0.5) = 0
    out = torch.full((6, 1), raw, dtype=torch.float64)
    assert float(loss.display(out).mean()) == pytest.approx(loss.d_equilibrium)
    assert float(loss.d_loss(out, out)) == pytest.approx(loss.d_loss_equilibrium)
    assert float(loss.g_loss(out)) == pytest.approx(loss.g_loss_equilibrium)


def test_display_is_probability_only_for_cross_entropy_losses():
    x = t(-1.0, 0.0, 2.0)
    for name, loss in LOSSES.items():
        expected = torch.sigmoid(x) if name in ("nonsaturating", "minimax") else x
        assert torch.equal(loss.display(x), expected), name
        assert loss.uses_targets == (name in ("nonsaturating", "minimax", "lsgan"))


def test_smoothing_is_ignored_by_hinge_and_wasserstein():
    r, f = t(0.3, -0.4, 1.5), t(-2.0, 0.1, 0.7)
    for name in ("hinge", "wgan-gp"):
        loss = LOSSES[name]
        assert float(loss.d_loss(r, f, 0.9, 0.1)) == float(loss.d_loss(r, f))
        for a, b in zip(loss.d_grad(r, f, 0.9, 0.1), loss.d_grad(r, f)):
            assert torch.equal(a, b)


# ---------------------------------------------------------------- analytic gradients vs autograd

@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("targets", TARGETS)
@pytest.mark.parametrize("shape", [(7, 1), (3,)])
def test_analytic_d_grad_equals_autograd(name, targets, shape):
    loss = LOSSES[name]
    g = torch.Generator().manual_seed(len(name) + len(shape))
    r = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    f = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    value = loss.d_loss(r, f, *targets)
    auto_r, auto_f = torch.autograd.grad(value, (r, f))
    hand_r, hand_f = loss.d_grad(r.detach(), f.detach(), *targets)
    assert hand_r.shape == r.shape and hand_f.shape == f.shape
    torch.testing.assert_close(hand_r, auto_r, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(hand_f, auto_f, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(LOSSES))
def test_analytic_g_grad_equals_autograd(name):
    loss = LOSSES[name]
    f = (3 * torch.randn(9, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)).requires_grad_(True)
    (auto,) = torch.autograd.grad(loss.g_loss(f), f)
    torch.testing.assert_close(loss.g_grad(f.detach()), auto, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- gradient penalty

def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic():
    u = torch.tensor([0.6, -0.8], dtype=torch.float64)
    real, fake = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda x: x @ u, real, fake, torch.Generator().manual_seed(0))
    assert float(gp) == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("a", [[3.0, 4.0], [0.1, 0.0], [0.0, 0.0]])
def test_gradient_penalty_of_linear_critic_is_norm_minus_one_squared(a):
    a = torch.tensor(a, dtype=torch.float64)
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda x: (x @ a).unsqueeze(1), real, fake)
    assert float(gp) == pytest.approx((float(a.norm()) - 1.0) ** 2)


def test_gradient_penalty_uses_per_sample_interpolates_on_images():
    """f(x) = ½‖x‖² has ∇f(x̂) = x̂, so the penalty is E(‖x̂‖ − 1)² with x̂ = ε·real + (1−ε)·fake."""
    real = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    gp = gradient_penalty(lambda x: 0.5 * (x**2).flatten(1).sum(1), real, fake, torch.Generator().manual_seed(3))
    eps = torch.rand((5, 1, 1, 1), generator=torch.Generator().manual_seed(3)).double()
    x_hat = eps * real + (1 - eps) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert float(gp.detach()) == pytest.approx(float(expected), rel=1e-6)


def test_gradient_penalty_is_differentiable_in_the_critic_parameters():
    a = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    gradient_penalty(lambda x: x @ a, real, fake).backward()
    # d/da (‖a‖ − 1)² = 2(‖a‖ − 1) a/‖a‖ = 2·4·(0.6, 0.8)
    torch.testing.assert_close(a.grad, torch.tensor([4.8, 6.4], dtype=torch.float64))


def test_r1_penalty_of_a_linear_critic_is_its_squared_slope_and_differentiable():
    a = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    real = torch.randn(6, 2, dtype=torch.float64)
    r1 = r1_penalty(lambda x: (x @ a).unsqueeze(1), real)
    assert float(r1.detach()) == pytest.approx(25.0)  # ‖a‖² at every sample
    r1.backward()
    torch.testing.assert_close(a.grad, 2 * a.detach())  # d/da ‖a‖² = 2a
    assert not real.requires_grad  # the caller's batch is left alone


def test_r1_penalty_is_per_sample_squared_gradient_norm_on_images():
    """f(x) = ½‖x‖² has ∇f(x) = x, so R1 = E‖x‖²."""
    real = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    r1 = r1_penalty(lambda x: 0.5 * (x**2).flatten(1).sum(1), real)
    assert float(r1.detach()) == pytest.approx(float((real.flatten(1) ** 2).sum(1).mean()))


# ---------------------------------------------------------------- registry and targets

def test_smoothed_targets():
    assert smoothed_targets(0.0, False) == (1.0, 0.0)
    assert smoothed_targets(0.1, False) == pytest.approx((0.9, 0.0))
    assert smoothed_targets(0.1, True) == pytest.approx((0.9, 0.1))


def test_get_loss_names_the_choices():
    assert get_loss("hinge") is LOSSES["hinge"]
    with pytest.raises(ValueError, match="unknown loss 'wgan'; choose one of nonsaturating"):
        get_loss("wgan")
    assert LOSSES["wgan-gp"].gradient_penalty and not LOSSES["hinge"].gradient_penalty
