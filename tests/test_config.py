"""Tests for gan_core/config.py: validation, live vs frozen fields, round trips."""

from __future__ import annotations

import math

import pytest

from gan_core.config import FROZEN_FIELDS, LIVE_FIELDS, RANGES, ConfigError, TrainConfig, can_continue, default_config
from gan_core.data import DATASET_NAMES
from gan_core.losses import LOSSES


def test_defaults_are_valid_for_every_dataset_and_loss():
    for name in DATASET_NAMES:
        cfg = default_config(name)
        assert cfg.dataset == name
        assert cfg.is_image == (name == "digits")
    for loss in LOSSES:
        assert TrainConfig(loss=loss).loss == loss


def test_default_config_follows_dcgan_for_digits_and_packs_the_toys():
    digits = default_config("digits")
    assert (digits.beta1, digits.beta2) == (0.5, 0.999)  # DCGAN's Adam betas
    assert (digits.g_lr, digits.d_lr) == (5e-4, 5e-4)  # measured faster than 2e-4 here
    assert digits.z_dim == 64 and digits.pack == 1
    grid, ring = default_config("grid25"), default_config("ring8")
    assert (grid.pack, grid.width, ring.pack, ring.width) == (2, 64, 2, 32)
    assert grid.ema_decay == ring.ema_decay == 0.999
    assert (grid.n_critic, ring.n_critic) == (2, 1)  # grid-25 needs the stronger D (BENCHMARKS.md)
    assert default_config("ring8", pack=2, batch_size=32).pack == 2  # overrides win


@pytest.mark.parametrize("name", sorted(RANGES))
def test_every_range_rejects_values_just_outside_and_accepts_the_ends(name):
    lo, hi = RANGES[name]
    kwargs = dict(batch_size=4096) if name == "pack" else {}  # keep batch % pack == 0
    assert getattr(TrainConfig(**{**kwargs, name: lo}), name) == lo
    assert getattr(TrainConfig(**{**kwargs, name: hi}), name) == hi
    step = 1 if isinstance(lo, int) and isinstance(hi, int) else max(abs(hi), abs(lo), 1e-6) * 1e-3
    for bad in (lo - step, hi + step):
        with pytest.raises(ConfigError, match=name):
            TrainConfig(**{**kwargs, name: bad})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "0.001", None, True])
def test_non_numbers_are_rejected_with_the_field_name(bad):
    with pytest.raises(ConfigError, match="d_lr"):
        TrainConfig(d_lr=bad)


def test_whole_number_fields_reject_fractions_and_coerce_integral_floats():
    with pytest.raises(ConfigError, match="n_critic must be a whole number"):
        TrainConfig(n_critic=2.5)
    cfg = TrainConfig(batch_size=64.0, n_critic=3.0)
    assert cfg.batch_size == 64 and type(cfg.batch_size) is int
    assert cfg.n_critic == 3 and type(cfg.n_critic) is int


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="multiple of pack"):
        TrainConfig(batch_size=30, pack=4)
    with pytest.raises(ConfigError, match="only available for 2-D"):
        TrainConfig(dataset="digits", pack=2)
    with pytest.raises(ConfigError, match="unknown dataset"):
        TrainConfig(dataset="cifar")
    with pytest.raises(ConfigError, match="unknown loss 'wgan'.*wgan-gp"):
        TrainConfig(loss="wgan")
    with pytest.raises(ConfigError, match="two_sided_smoothing"):
        TrainConfig(two_sided_smoothing=1)
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="tpu")
    assert TrainConfig(dataset="csv").dataset == "csv"


def test_config_is_frozen():
    cfg = TrainConfig()
    with pytest.raises(AttributeError):
        cfg.d_lr = 0.01  # type: ignore[misc]


def test_with_live_changes_live_fields_and_validates():
    cfg = TrainConfig()
    new = cfg.with_live(d_lr=3e-4, n_critic=5, label_smoothing=0.1, two_sided_smoothing=True)
    assert (new.d_lr, new.n_critic, new.label_smoothing, new.two_sided_smoothing) == (3e-4, 5, 0.1, True)
    assert cfg.d_lr == 1e-3  # original untouched
    with pytest.raises(ConfigError, match="label_smoothing"):
        cfg.with_live(label_smoothing=0.5)


def test_frozen_fields_are_every_field_that_is_not_live():
    assert FROZEN_FIELDS == set(TrainConfig().to_dict()) - set(LIVE_FIELDS)
    # The networks, the data and the EMA copy of G are built once; the rest is read every step.
    assert FROZEN_FIELDS == {"dataset", "z_dim", "width", "depth", "pack", "d_batchnorm", "seed", "device",
                             "ema_decay"}


def test_with_live_refuses_frozen_fields_naming_them():
    with pytest.raises(ConfigError, match="seed, width cannot change while training"):
        TrainConfig().with_live(width=32, seed=1, d_lr=1e-4)
    for field in FROZEN_FIELDS:
        with pytest.raises(ConfigError, match=f"{field} cannot change"):
            TrainConfig().with_live(**{field: getattr(TrainConfig(), field)})  # even to the same value


def test_d_batchnorm_follows_the_starting_loss_and_wgan_gp_refuses_it():
    assert TrainConfig(dataset="digits").d_batchnorm is True
    assert TrainConfig(dataset="digits", loss="wgan-gp").d_batchnorm is False
    assert TrainConfig(dataset="ring8").d_batchnorm is False
    # A live loss change keeps the networks, so the field keeps its value.
    assert TrainConfig(dataset="digits", loss="wgan-gp").with_live(loss="hinge").d_batchnorm is False
    with pytest.raises(ConfigError, match="WGAN-GP needs a discriminator without BatchNorm"):
        TrainConfig(dataset="digits").with_live(loss="wgan-gp")
    with pytest.raises(ConfigError, match="WGAN-GP needs a discriminator without BatchNorm"):
        TrainConfig(dataset="digits", loss="wgan-gp", d_batchnorm=True)
    with pytest.raises(ConfigError, match="digits discriminator only"):
        TrainConfig(dataset="ring8", d_batchnorm=True)
    with pytest.raises(ConfigError, match="d_batchnorm must be"):
        TrainConfig(dataset="digits", d_batchnorm="yes")


def test_can_continue_needs_equal_frozen_fields_and_an_accepted_live_change():
    ring = TrainConfig(dataset="ring8")
    assert can_continue(ring, TrainConfig(dataset="ring8", loss="hinge", d_lr=1e-4, gp_weight=1.0))
    assert not can_continue(ring, TrainConfig(dataset="ring8", width=16))
    assert not can_continue(ring, TrainConfig(dataset="ring8", ema_decay=0.9))
    digits_bn = TrainConfig(dataset="digits")
    assert not can_continue(digits_bn, TrainConfig(dataset="digits", loss="wgan-gp"))  # needs a new D
    # The controls resolve d_batchnorm from their current loss; the running D keeps its own.
    digits_no_bn = TrainConfig(dataset="digits", loss="wgan-gp").with_live(loss="hinge")
    assert can_continue(digits_no_bn, TrainConfig(dataset="digits", loss="hinge"))
    assert can_continue(digits_no_bn, TrainConfig(dataset="digits", loss="wgan-gp"))


def test_dict_round_trip_and_unknown_keys():
    cfg = TrainConfig(dataset="grid25", loss="hinge", pack=4, seed=7, label_smoothing=0.2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown configuration keys: bogus"):
        TrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_float_ranges_are_finite():
    for lo, hi in RANGES.values():
        assert math.isfinite(lo) and math.isfinite(hi) and lo < hi
