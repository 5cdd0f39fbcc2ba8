"""The 2-D GAN updates back-propagated by hand: the engine's fast path for the MLPs.

At the classroom's size (three hidden layers of 32 units, batch 256) every
matrix product is tiny, so per-operation overhead (Python, allocation,
autograd's graph) dominates a step. Here the forward pass keeps its
activations and the backward pass is written out: no graph, no host syncs.
Measured 1.9× the engine's own autograd step on the default ring-8 model, per
CPU-second (`python -m benchmarks speed`, docs/benchmarks/speed.json).

- `HandMLP`: forward/backward of a `models.MLP` on its own parameter tensors.
- `HandGAN.d_backward` / `g_backward`: the gradients of one D update and one
  G update, written into the parameters' `.grad` tensors; the engine then
  takes the Adam step.

The output-gradients of the losses (`GANLoss.d_grad` / `g_grad`) are derived
in `losses.py`. `tests/test_handgrad.py` checks these gradients against
autograd directly, and `tests/test_engine.py` checks whole runs of both paths
agree. Not here: WGAN-GP or R1 (double back-prop: autograd only), DCGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import torch_ops
from .losses import GANLoss
from .models import MLP, PackedDiscriminator


class HandMLP:
    """Forward/backward of a `models.MLP` by hand, on its own parameter tensors.

    Layer l: aₗ₊₁ = leaky_relu(aₗ Wₗᵀ + bₗ) (no activation after the last).
    Backward: ∂W = gᵀ a, ∂b = Σ g, ∂a = g W, then through the LeakyReLU
    (`torch_ops.leaky_relu_backward`).
    Gradients are written into `grads` (the parameters' `.grad` tensors).
    """

    def __init__(self, mlp: MLP) -> None:
        self.params = [t for layer in mlp.linears for t in (layer.weight, layer.bias)]
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.grads = [p.grad for p in self.params]
        self.n_layers = len(mlp.linears)
        self.leak = mlp.leak

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All activations [x, a₁, …, output]; the backward pass needs them."""
        acts = [x]
        for l in range(self.n_layers):
            h = torch.addmm(self.params[2 * l + 1], acts[-1], self.params[2 * l].t())
            if l < self.n_layers - 1:
                h = F.leaky_relu(h, self.leak)
            acts.append(h)
        return acts

    def backward(self, acts: list[torch.Tensor], grad_out: torch.Tensor, *, param_grads: bool) -> torch.Tensor:
        """Back-propagate ∂L/∂output; returns ∂L/∂input (and fills `grads` if `param_grads`)."""
        g = grad_out
        for l in reversed(range(self.n_layers)):
            if param_grads:
                torch.mm(g.t(), acts[l], out=self.grads[2 * l])
                torch.sum(g, 0, out=self.grads[2 * l + 1])
            g = torch.mm(g, self.params[2 * l])
            if l > 0:
                g = torch_ops.leaky_relu_backward(g, acts[l], self.leak)
        return g


class HandGAN:
    """The hand-written backward passes of one D update and one G update."""

    def __init__(self, G: MLP, D: PackedDiscriminator) -> None:
        self.g, self.d = HandMLP(G), HandMLP(D.mlp)
        self.pack = D.pack

    def generate(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, 2)
        return self.g.forward(z)[-1]

    @torch.no_grad()
    def d_backward(self, real_and_fake: torch.Tensor, loss: GANLoss, real_target: float,
                   fake_target: float) -> tuple[torch.Tensor, torch.Tensor]:
        """∇θ_D of the D loss on (2B, 2) = [real; fake] rows; returns D's raw outputs (d_real, d_fake).

        One D forward over both halves: the MLP has no BatchNorm, so this equals two passes.
        """
        acts = self.d.forward(real_and_fake.view(len(real_and_fake) // self.pack, -1))  # (2B/pack, 2·pack)
        d_out = acts[-1]
        d_real, d_fake = d_out.chunk(2)
        grad_real, grad_fake = loss.d_grad(d_real, d_fake, real_target, fake_target)
        self.d.backward(acts, torch.cat([grad_real, grad_fake]), param_grads=True)
        return d_real, d_fake

    @torch.no_grad()
    def g_backward(self, z: torch.Tensor, loss: GANLoss) -> torch.Tensor:
        """∇θ_G of the G loss on noise z (B, z_dim), through D; returns D's raw outputs on G(z)."""
        g_acts = self.g.forward(z)
        fake = g_acts[-1]  # (B, 2)
        d_acts = self.d.forward(fake.view(len(fake) // self.pack, -1))
        d_fake = d_acts[-1]
        grad_fake = self.d.backward(d_acts, loss.g_grad(d_fake), param_grads=False)  # ∂L_G/∂G(z)
        self.g.backward(g_acts, grad_fake.view(fake.shape), param_grads=True)
        return d_fake
