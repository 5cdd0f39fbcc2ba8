"""Tests for gan_core/handgrad.py: the hand-written backward passes give autograd's
gradients, directly (one D update's and one G update's parameter gradients)."""

from __future__ import annotations

import pytest
import torch

from gan_core.handgrad import HandGAN, HandMLP
from gan_core.losses import LOSSES, smoothed_targets
from gan_core.models import MLP, PackedDiscriminator

TARGET_LOSSES = [name for name, loss in LOSSES.items() if not loss.gradient_penalty]


def nets(pack: int, depth: int = 3):
    g = torch.Generator().manual_seed(0)
    G = MLP(3, 2, 16, depth, g, leak=0.0)  # ReLU G, as the engine builds it
    D = PackedDiscriminator(16, depth, pack, generator=g)
    return G, D


def autograd_grads(loss_value: torch.Tensor, params) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss_value, params))


@pytest.mark.parametrize("leak", [0.0, 0.2])
def test_hand_mlp_backward_is_autograds_vector_jacobian_product(leak):
    mlp = MLP(5, 3, 7, 3, torch.Generator().manual_seed(1), leak=leak)
    hand = HandMLP(mlp)
    x = torch.randn(11, 5, generator=torch.Generator().manual_seed(2), requires_grad=True)
    grad_out = torch.randn(11, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        grad_x = hand.backward(hand.forward(x.detach()), grad_out, param_grads=True)
    ref = torch.autograd.grad((mlp(x) * grad_out).sum(), [x, *mlp.parameters()])
    torch.testing.assert_close(grad_x, ref[0], rtol=1e-5, atol=1e-6)
    for got, want in zip(hand.grads, ref[1:]):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss_name", TARGET_LOSSES)
@pytest.mark.parametrize("pack", [1, 2])
@pytest.mark.parametrize("smoothing", [(0.0, False), (0.2, True)])
def test_d_backward_gives_autograds_gradient_of_the_d_loss(loss_name, pack, smoothing):
    G, D = nets(pack)
    hand, loss = HandGAN(G, D), LOSSES[loss_name]
    real_target, fake_target = smoothed_targets(*smoothing) if loss.uses_targets else (1.0, 0.0)
    g = torch.Generator().manual_seed(4)
    real, z = torch.randn(32, 2, generator=g), torch.randn(32, 3, generator=g)
    with torch.no_grad():
        fake = G(z)
    d_real, d_fake = hand.d_backward(torch.cat([real, fake]), loss, real_target, fake_target)
    ref_real, ref_fake = D(real), D(fake)
    want = autograd_grads(loss.d_loss(ref_real, ref_fake, real_target, fake_target), list(D.parameters()))
    torch.testing.assert_close(d_real, ref_real.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(d_fake, ref_fake.detach(), rtol=1e-5, atol=1e-6)
    assert any(w.abs().max() > 0 for w in want)
    for p, w in zip(D.parameters(), want):
        torch.testing.assert_close(p.grad, w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("loss_name", TARGET_LOSSES)
@pytest.mark.parametrize("pack", [1, 2])
def test_g_backward_gives_autograds_gradient_of_the_g_loss_through_d(loss_name, pack):
    G, D = nets(pack)
    hand, loss = HandGAN(G, D), LOSSES[loss_name]
    d_before = [p.grad.clone() for p in D.parameters()]
    z = torch.randn(32, 3, generator=torch.Generator().manual_seed(5))
    d_fake = hand.g_backward(z, loss)
    ref = D(G(z))
    want = autograd_grads(loss.g_loss(ref), list(G.parameters()))
    torch.testing.assert_close(d_fake, ref.detach(), rtol=1e-5, atol=1e-6)
    assert any(w.abs().max() > 0 for w in want)
    for p, w in zip(G.parameters(), want):
        torch.testing.assert_close(p.grad, w, rtol=1e-4, atol=1e-6)
    assert all(torch.equal(p.grad, b) for p, b in zip(D.parameters(), d_before))  # D's gradients untouched
