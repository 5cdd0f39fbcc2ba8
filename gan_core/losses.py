"""GAN losses as plain functions of the discriminator's raw outputs.

Each loss is a pair (D loss, G loss) over D's outputs on a real batch `r` and a
fake batch `f` — logits for the cross-entropy losses, raw scores otherwise —
plus the analytic gradient of each with respect to those outputs, which the
engine's 2-D path back-propagates by hand (`handgrad.py`). `tests/test_losses.py` checks every
analytic gradient against autograd.

- minimax        Goodfellow et al. (2014), Eq. 1: G minimises log(1 − D(G(z))),
                 which *saturates* (vanishing gradient) when D rejects fakes.
- nonsaturating  Goodfellow et al. (2014), §3: G maximises log D(G(z)) instead.
- lsgan          Mao et al. (2017), least squares with a=0, b=c=1.
- hinge          Lim & Ye (2017); Miyato et al. (2018).
- wgan-gp        Gulrajani et al. (2017): critic f, loss E f(G(z)) − E f(x)
                 + λ E (‖∇f(x̂)‖ − 1)², λ = 10. The penalty needs double
                 back-prop, so the engine computes it with autograd.

Any loss can add the R1 penalty on real data (Mescheder et al., 2018),
γ/2 · E ‖∇ₓ D(x)‖², applied lazily every few steps (Karras et al., 2020).

Label smoothing replaces the real target 1 by 1 − s (one-sided, Salimans et
al., 2016, §3.4) and optionally the fake target 0 by s (two-sided). It applies
to the target-based losses (minimax, nonsaturating, lsgan) only.
All means are over the batch; D losses add the real and fake terms. Outputs are
(batch, 1); a cohort (`cohort.py`) passes R runs' outputs at once as (R, batch, 1)
with targets of shape (R, 1, 1), and every mean, loss and gradient is then per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _mean(x: Tensor) -> Tensor:
    """The batch mean: a scalar for one run's outputs, one per run for (R, batch, 1)."""
    return x.flatten(1).mean(1) if x.ndim == 3 else x.mean()


def _n(x: Tensor) -> int:
    """What a batch mean divides by: the outputs of one run."""
    return x.shape[1] * x.shape[2] if x.ndim == 3 else x.numel()


def bce_with_logits(logits: Tensor, target: float | Tensor) -> Tensor:
    """Mean binary cross-entropy −[t log σ(l) + (1 − t) log(1 − σ(l))]."""
    return _mean(F.softplus(logits) - target * logits)


# --- minimax / non-saturating (shared D loss) --------------------------------

def d_loss_bce(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0) -> Tensor:
    return bce_with_logits(r, real_target) + bce_with_logits(f, fake_target)


def d_grad_bce(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0):
    return (torch.sigmoid(r) - real_target) / _n(r), (torch.sigmoid(f) - fake_target) / _n(f)


def g_loss_minimax(f: Tensor) -> Tensor:
    """E log(1 − D(G(z))) = E −softplus(l): saturates when D(G(z)) → 0."""
    return -_mean(F.softplus(f))


def g_grad_minimax(f: Tensor) -> Tensor:
    return -torch.sigmoid(f) / _n(f)


def g_loss_nonsaturating(f: Tensor) -> Tensor:
    """−E log D(G(z)) = E softplus(−l)."""
    return _mean(F.softplus(-f))


def g_grad_nonsaturating(f: Tensor) -> Tensor:
    return (torch.sigmoid(f) - 1.0) / _n(f)


# --- least squares ------------------------------------------------------------

def d_loss_lsgan(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0) -> Tensor:
    return 0.5 * _mean((r - real_target) ** 2) + 0.5 * _mean((f - fake_target) ** 2)


def d_grad_lsgan(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0):
    return (r - real_target) / _n(r), (f - fake_target) / _n(f)


def g_loss_lsgan(f: Tensor) -> Tensor:
    return 0.5 * _mean((f - 1.0) ** 2)


def g_grad_lsgan(f: Tensor) -> Tensor:
    return (f - 1.0) / _n(f)


# --- hinge ----------------------------------------------------------------------

def d_loss_hinge(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0) -> Tensor:
    return _mean(F.relu(1.0 - r)) + _mean(F.relu(1.0 + f))


def d_grad_hinge(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0):
    return -(r < 1.0).to(r.dtype) / _n(r), (f > -1.0).to(f.dtype) / _n(f)


def g_loss_critic(f: Tensor) -> Tensor:
    """−E D(G(z)): the G loss of hinge and WGAN."""
    return -_mean(f)


def g_grad_critic(f: Tensor) -> Tensor:
    return torch.full_like(f, -1.0 / _n(f))


# --- Wasserstein ------------------------------------------------------------------

def d_loss_wasserstein(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0) -> Tensor:
    """E f(G(z)) − E f(x), without the gradient penalty."""
    return _mean(f) - _mean(r)


def d_grad_wasserstein(r: Tensor, f: Tensor, real_target: float = 1.0, fake_target: float = 0.0):
    return torch.full_like(r, -1.0 / _n(r)), torch.full_like(f, 1.0 / _n(f))


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """E (‖∇ₓ̂ f(x̂)‖₂ − 1)² on random interpolates x̂ (Gulrajani et al., 2017, Alg. 1)."""
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    eps = torch.rand(shape, device=real.device, generator=generator)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1 (Mescheder et al., 2018, Eq. 9 without γ/2): E ‖∇ₓ D(x)‖² on real samples.

    Penalising D's slope on the data keeps D from sharpening into a wall that G
    cannot climb. Differentiable in D's parameters (double back-prop).
    """
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


@dataclass(frozen=True)
class GANLoss:
    """One GAN objective: its D/G losses, their output-gradients and how to read D."""

    name: str
    title: str
    d_loss: Callable[..., Tensor]
    d_grad: Callable[..., tuple[Tensor, Tensor]]
    g_loss: Callable[[Tensor], Tensor]
    g_grad: Callable[[Tensor], Tensor]
    uses_targets: bool  # label smoothing applies
    is_probability: bool  # D's output passes through a sigmoid to read as P(real)
    d_equilibrium: float  # D's displayed output at the Nash equilibrium
    d_loss_equilibrium: float | None  # D loss when D outputs d_equilibrium everywhere
    g_loss_equilibrium: float | None
    gradient_penalty: bool = False

    def display(self, out: Tensor) -> Tensor:
        """D's output as shown in plots: P(real) for cross-entropy losses, raw otherwise."""
        return torch.sigmoid(out) if self.is_probability else out


LOG2 = math.log(2.0)
LOSSES: dict[str, GANLoss] = {
    "nonsaturating": GANLoss(
        "nonsaturating", "Non-saturating (−log D(G(z)))", d_loss_bce, d_grad_bce,
        g_loss_nonsaturating, g_grad_nonsaturating, True, True, 0.5, 2 * LOG2, LOG2),
    "minimax": GANLoss(
        "minimax", "Minimax / saturating (log(1 − D(G(z))))", d_loss_bce, d_grad_bce,
        g_loss_minimax, g_grad_minimax, True, True, 0.5, 2 * LOG2, -LOG2),
    "lsgan": GANLoss(
        "lsgan", "Least squares (LSGAN)", d_loss_lsgan, d_grad_lsgan,
        g_loss_lsgan, g_grad_lsgan, True, False, 0.5, 0.25, 0.125),
    "hinge": GANLoss(
        "hinge", "Hinge", d_loss_hinge, d_grad_hinge,
        g_loss_critic, g_grad_critic, False, False, 0.0, 2.0, 0.0),
    "wgan-gp": GANLoss(
        "wgan-gp", "Wasserstein + gradient penalty (WGAN-GP)", d_loss_wasserstein, d_grad_wasserstein,
        g_loss_critic, g_grad_critic, False, False, 0.0, None, None, gradient_penalty=True),
}


def get_loss(name: str) -> GANLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None


def smoothed_targets(label_smoothing: float, two_sided: bool) -> tuple[float, float]:
    """(real target, fake target): 1 − s and s if two-sided else 0."""
    return 1.0 - label_smoothing, (label_smoothing if two_sided else 0.0)
