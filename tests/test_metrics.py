"""Tests for gan_core/metrics.py: the VEEGAN/PacGAN mode-coverage metric on
synthetic samples whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from gan_core.data import make_toy
from gan_core.metrics import N_COVERAGE_SAMPLES, mode_coverage

# In 2-D, ‖x − μ‖/σ for x ~ N(μ, σ²I) is Rayleigh: P(‖x − μ‖ ≤ 3σ) = 1 − e^{−9/2} ≈ 98.9%
# (the familiar 99.7% is the 1-D three-sigma rule).
HQ_2D = 1.0 - math.exp(-4.5)


@pytest.mark.parametrize("name", ["ring8", "ring8_wide", "grid25"])
def test_samples_from_the_true_mixture_cover_every_mode_at_the_rayleigh_rate(name):
    ds = make_toy(name)
    x = ds.sample(20_000, torch.Generator().manual_seed(0)) * ds.scale  # data units
    cov = mode_coverage(x, ds.modes, ds.sigma)
    assert cov.n_modes == len(ds.modes)
    assert cov.modes_covered == len(ds.modes)
    se = math.sqrt(HQ_2D * (1 - HQ_2D) / len(x))
    assert abs(cov.hq_fraction - HQ_2D) < 5 * se
    assert cov.hq_percent == pytest.approx(100 * cov.hq_fraction)
    assert sum(cov.counts) == round(cov.hq_fraction * len(x))


def test_the_benchmark_sample_size_also_covers_all_modes():
    ds = make_toy("grid25")
    x = ds.sample(N_COVERAGE_SAMPLES, torch.Generator().manual_seed(1)) * ds.scale  # data units
    assert N_COVERAGE_SAMPLES == 2500
    assert mode_coverage(x, ds.modes, ds.sigma).modes_covered == 25


def test_collapse_onto_one_mode_covers_one_mode():
    ds = make_toy("ring8")
    x = ds.modes[3].repeat(500, 1) + 0.5 * ds.sigma * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    cov = mode_coverage(x, ds.modes, ds.sigma)
    assert cov.modes_covered == 1 and cov.hq_fraction == 1.0
    assert cov.counts == tuple(500 if i == 3 else 0 for i in range(8))


def test_points_far_from_every_mode_are_not_high_quality():
    ds = make_toy("ring8")
    far = torch.full((100, 2), 10.0)
    between = (ds.modes[0] + ds.modes[1]).repeat(50, 1) / 2  # midway between two modes
    origin = torch.zeros(50, 2)  # centre of the ring
    cov = mode_coverage(torch.cat([far, between, origin]), ds.modes, ds.sigma)
    assert cov.modes_covered == 0 and cov.hq_fraction == 0.0 and sum(cov.counts) == 0


def test_threshold_is_three_sigma_from_the_nearest_mode():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    x = torch.tensor([[0.299, 0.0], [0.0, -0.301], [10.0, 0.29], [5.0, 0.0]])
    cov = mode_coverage(x, modes, sigma=0.1)
    assert cov.counts == (1, 1) and cov.hq_fraction == 0.5 and cov.modes_covered == 2


def test_non_finite_samples_are_not_high_quality_and_shapes_are_checked():
    ds = make_toy("ring8")
    x = torch.cat([ds.modes[:2], torch.full((2, 2), float("nan")), torch.full((1, 2), float("inf"))])
    cov = mode_coverage(x, ds.modes, ds.sigma)
    assert cov.modes_covered == 2 and cov.hq_fraction == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match=r"samples must be \(N, 2\)"):
        mode_coverage(torch.zeros(4, 3), ds.modes, ds.sigma)
    empty = mode_coverage(torch.zeros(0, 2), ds.modes, ds.sigma)
    assert empty.modes_covered == 0 and empty.hq_fraction == 0.0
