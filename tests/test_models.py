"""Tests for gan_core/models.py: shapes, PacGAN packing, initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_core.models import LEAK, MLP, DCGANDiscriminator, DCGANGenerator, PackedDiscriminator, parameter_count


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mlp_shapes_and_parameter_count():
    mlp = MLP(3, 2, width=16, depth=3, generator=gen())
    assert mlp(torch.randn(5, 3)).shape == (5, 2)
    assert len(mlp.linears) == 4
    dims = [3, 16, 16, 16, 2]
    assert parameter_count(mlp) == sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def test_mlp_forward_matches_a_hand_written_reference():
    mlp = MLP(2, 1, width=4, depth=2, generator=gen())
    x = torch.randn(7, 2)
    h = x
    for i, layer in enumerate(mlp.linears):
        h = h @ layer.weight.T + layer.bias
        if i < len(mlp.linears) - 1:
            h = torch.where(h > 0, h, LEAK * h)
    assert torch.allclose(mlp(x), h, atol=1e-6)


def test_mlp_init_is_he_uniform_zero_bias_and_reproducible():
    mlp = MLP(64, 1, width=256, depth=2, generator=gen(1))
    for layer in mlp.linears:
        bound = math.sqrt(6.0 / ((1 + LEAK**2) * layer.in_features))
        assert layer.weight.abs().max() <= bound
        assert torch.all(layer.bias == 0)
    w = mlp.linears[1].weight.detach()  # 256×256 entries: std of U(−b, b) is b/√3
    bound = math.sqrt(6.0 / ((1 + LEAK**2) * 256))
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.02)
    again = MLP(64, 1, width=256, depth=2, generator=gen(1))
    other = MLP(64, 1, width=256, depth=2, generator=gen(2))
    assert all(torch.equal(a, b) for a, b in zip(mlp.parameters(), again.parameters()))
    assert not torch.equal(mlp.linears[0].weight, other.linears[0].weight)


def test_weights_depend_only_on_the_given_generator_not_the_global_rng():
    def build():
        return [MLP(2, 2, 8, 2, generator=gen()), DCGANGenerator(8, 4, generator=gen()),
                DCGANDiscriminator(4, generator=gen())]

    torch.manual_seed(1)
    first = build()
    torch.manual_seed(2)
    second = build()
    for a, b in zip(first, second):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("pack", [1, 2, 4])
def test_packed_discriminator_takes_pack_points_per_decision(pack):
    d = PackedDiscriminator(width=8, depth=2, pack=pack, generator=gen())
    assert d.mlp.in_dim == 2 * pack
    x = torch.randn(12, 2)
    out = d(x)
    assert out.shape == (12 // pack, 1)
    # Decision i sees points i·pack … i·pack+pack−1, concatenated in order.
    expected = d.mlp(x.reshape(12 // pack, 2 * pack))
    assert torch.equal(out, expected)
    if pack > 1:  # permuting points inside one pack changes that decision only
        y = x.clone()
        y[[0, 1]] = y[[1, 0]]
        changed = (d(y) != out).flatten()
        assert changed[0] and not changed[1:].any()


def test_dcgan_shapes():
    g = DCGANGenerator(z_dim=16, width=8, generator=gen())
    d = DCGANDiscriminator(width=8, generator=gen())
    z = torch.randn(4, 16)
    img = g(z)
    assert img.shape == (4, 1, 28, 28)
    assert img.abs().max() <= 1.0  # Tanh output
    assert d(img).shape == (4, 1)
    assert d(torch.randn(3, 1, 28, 28)).shape == (3, 1)
    assert g(z.reshape(4, 16, 1, 1)).shape == (4, 1, 28, 28)  # (B, z, 1, 1) works too


def test_dcgan_intermediate_shapes_follow_the_comments():
    g = DCGANGenerator(z_dim=8, width=4, generator=gen())
    x = torch.randn(2, 8)
    shapes = []
    for layer in g.net:
        x = layer(x)
        if isinstance(layer, (nn.Unflatten, nn.ConvTranspose2d)):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 7, 7), (8, 14, 14), (1, 28, 28)]


def test_dcgan_projection_equals_a_7x7_transposed_conv():
    """The first layer is DCGAN's "project and reshape": the same map as a 7×7 transposed
    convolution on a 1×1 input, with the weights laid out accordingly."""
    g = DCGANGenerator(z_dim=8, width=4, generator=gen())
    linear = g.net[0]
    conv = nn.ConvTranspose2d(8, 16, 7, 1, 0, bias=False)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.T.reshape(8, 16, 7, 7))
    z = torch.randn(5, 8)
    assert torch.allclose(g.net[1](linear(z)), conv(z.reshape(5, 8, 1, 1)), atol=1e-6)


@pytest.mark.parametrize("module_fn", [
    lambda: DCGANGenerator(z_dim=64, width=32, generator=gen(0)),
    lambda: DCGANDiscriminator(width=32, generator=gen(0)),
])
def test_dcgan_init_weights_are_normal_0_002(module_fn):
    m = module_fn().requires_grad_(False)
    weights = [mod.weight for mod in m.modules() if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    w = torch.cat([t.detach().flatten() for t in weights])
    assert float(w.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(w.std()) == pytest.approx(0.02, rel=0.02)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            assert float(mod.weight.mean()) == pytest.approx(1.0, abs=0.01)
            assert 0.01 < float(mod.weight.std()) < 0.03
            assert torch.all(mod.bias == 0)
        if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and mod.bias is not None:
            assert torch.all(mod.bias == 0)


def test_dcgan_discriminator_without_batchnorm_for_wgan_gp():
    d = DCGANDiscriminator(width=4, batchnorm=False, generator=gen())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)  # no BatchNorm to absorb the bias
    with_bn = DCGANDiscriminator(width=4, batchnorm=True, generator=gen())
    assert isinstance(with_bn.net[0], nn.Conv2d)  # no BatchNorm on D's input layer (DCGAN §3)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules()) == 1
    # Per-sample outputs do not depend on the rest of the batch without BatchNorm.
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(d(x)[:2], d(x[:2]), atol=1e-6)
