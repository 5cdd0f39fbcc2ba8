"""The one tiny run configuration the tests share (also served as the `tiny` fixture)."""

from __future__ import annotations

from gan_core.config import TrainConfig


def tiny_config(**overrides) -> TrainConfig:
    """A 2-D run small enough that a step takes well under a millisecond; two hidden
    layers so the hand-written backward passes through a hidden-to-hidden layer."""
    base = dict(dataset="ring8", width=8, depth=2, batch_size=16, z_dim=3, seed=0, device="cpu")
    base.update(overrides)
    return TrainConfig(**base)
