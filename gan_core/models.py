"""Generator and discriminator networks, as plain `nn.Module`s.

- `MLP`: the 2-D toy networks (G: z → point, D: point → logit), ReLU in G and
  LeakyReLU 0.2 in D.
  D optionally *packs* m samples into one input (PacGAN, Lin et al., 2018),
  which lets it see a set of samples at once and so punish mode collapse.
- `DCGANGenerator` / `DCGANDiscriminator`: 28×28 digits following the DCGAN
  design rules (Radford et al., 2016, §3): strided (transposed) convolutions
  instead of pooling, BatchNorm in G and D (not on D's input or G's output),
  ReLU in G with Tanh output, LeakyReLU 0.2 in D, weights from N(0, 0.02).

All constructors take a `torch.Generator` for initialisation so concurrent runs
never touch the global RNG. Not here: losses, optimisers, the training step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LEAK = 0.2  # LeakyReLU slope (DCGAN §3)


class MLP(nn.Module):
    """`depth` hidden layers of `width` units with LeakyReLU(`leak`) between them.

    G uses ReLU (`leak=0`) and D LeakyReLU(0.2), the DCGAN rule (§3). For G this
    matters beyond style: ReLU units switch fully off, so G can map a whole region
    of z-space onto one tight cluster, where a leaky G always smears between modes.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int, depth: int,
                 generator: torch.Generator | None = None, leak: float = LEAK) -> None:
        super().__init__()
        self.leak = leak
        dims = [in_dim] + [width] * depth + [out_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.in_dim, self.out_dim = in_dim, out_dim
        with torch.no_grad():
            for layer in self.linears:
                # He-uniform for (Leaky)ReLU (He et al., 2015): bound √(6 / ((1 + leak²) · fan_in)),
                # 2.45/√fan_in for G's ReLU and 2.40/√fan_in for D's LeakyReLU(0.2), with zero
                # biases. (nn.Linear's default is 1/√fan_in, biases included.) Drawn from our own
                # generator for reproducibility.
                bound = math.sqrt(6.0 / ((1 + leak**2) * layer.in_features))
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_dim) -> (B, out_dim)
        *hidden, last = self.linears
        for layer in hidden:
            x = nn.functional.leaky_relu(layer(x), self.leak)
        return last(x)


class PackedDiscriminator(nn.Module):
    """D for 2-D points: packs `pack` samples per decision (PacGAN), then an MLP.

    Input (B, 2) with B divisible by `pack`; output (B // pack, 1) logits.
    """

    def __init__(self, width: int, depth: int, pack: int = 1, dim: int = 2,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.pack = pack
        self.mlp = MLP(dim * pack, 1, width, depth, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x.reshape(x.shape[0] // self.pack, -1))


def _dcgan_init(module: nn.Module, generator: torch.Generator | None) -> None:
    """N(0, 0.02) for conv weights, N(1, 0.02) for BatchNorm scales (DCGAN §4)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.normal_(0.0, 0.02, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()


class DCGANGenerator(nn.Module):
    """z (B, z_dim) → image (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, z_dim: int = 64, width: int = 64, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            # "Project and reshape" (DCGAN §3.1): a matrix multiply, (B, z) -> (B, 4w, 7, 7).
            # Same function as a 7×7 transposed conv on a 1×1 input, ~4× faster on a CPU.
            nn.Linear(z_dim, 4 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (4 * width, 7, 7)),
            nn.BatchNorm2d(4 * width),
            nn.ReLU(True),
            # -> (B, 2w, 14, 14)
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(True),
            # -> (B, 1, 28, 28)
            nn.ConvTranspose2d(2 * width, 1, 4, 2, 1),
            nn.Tanh(),
        )
        _dcgan_init(self, generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.z_dim))


class DCGANDiscriminator(nn.Module):
    """image (B, 1, 28, 28) → logit (B, 1). No BatchNorm on the input layer."""

    def __init__(self, width: int = 64, batchnorm: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        # WGAN-GP penalises per-sample gradients, which BatchNorm couples
        # (Gulrajani et al., 2017, §4): use `batchnorm=False` there.
        norm = nn.BatchNorm2d(2 * width) if batchnorm else nn.Identity()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),  # -> (B, w, 14, 14)
            nn.LeakyReLU(LEAK, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=not batchnorm),  # -> (B, 2w, 7, 7)
            norm,
            nn.LeakyReLU(LEAK, True),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1),
        )
        _dcgan_init(self, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
