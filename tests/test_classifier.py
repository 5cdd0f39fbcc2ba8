"""Tests for gan_core/classifier.py and the bundled assets it relies on."""

import math

import numpy as np
import pytest
import torch

from gan_core.classifier import (
    DigitScorer,
    classifier_inception_score,
    frechet_distance,
    load_classifier,
    sqrtm_psd,
)
from gan_core.data import DIGITS_FILE, load_digits

N_TEST = 500  # the last 500 bundled digits are held out from classifier training


# ---------------------------------------------------------------- inception score

def test_inception_score_one_hot_spread_over_ten_classes_is_ten():
    probs = torch.eye(10).repeat(7, 1)  # every class equally often, each image certain
    assert classifier_inception_score(probs) == pytest.approx(10.0, rel=1e-12)


def test_inception_score_identical_one_hot_is_one():
    probs = torch.zeros(50, 10)
    probs[:, 3] = 1.0
    assert classifier_inception_score(probs) == pytest.approx(1.0, abs=1e-12)


def test_inception_score_uniform_probs_is_one():
    assert classifier_inception_score(torch.full((50, 10), 0.1)) == pytest.approx(1.0, abs=1e-12)


def test_inception_score_matches_hand_computation():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    # p(y) = (0.75, 0.25); KL_1 = log(1/0.75); KL_2 = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25)
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert classifier_inception_score(probs) == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)


def test_inception_score_splits_average_per_split_scores():
    probs = torch.cat([torch.eye(2)[[0]].repeat(4, 1), torch.eye(2)[[1]].repeat(4, 1)])
    assert classifier_inception_score(probs, splits=1) == pytest.approx(2.0)
    assert classifier_inception_score(probs, splits=2) == pytest.approx(1.0)  # each half is one class


def test_inception_score_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        classifier_inception_score(torch.randn(8, 10))


# ---------------------------------------------------------------- Fréchet distance

def _random_spd(d: int, seed: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def test_frechet_distance_of_identical_gaussians_is_zero():
    mu, sigma = torch.randn(16, dtype=torch.float64), _random_spd(16, seed=0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_diagonal_gaussians_matches_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    s1, s2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    expected = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_1d_gaussians_matches_closed_form():
    # 1-D: d² = (m1 - m2)² + (σ1 - σ2)²
    got = frechet_distance(torch.tensor([2.0]), torch.tensor([[9.0]]), torch.tensor([-1.0]), torch.tensor([[4.0]]))
    assert got == pytest.approx(9.0 + 1.0, rel=1e-12)


def test_frechet_distance_matches_trace_sqrt_of_product_for_full_covariances():
    # tr((σ1 σ2)^½) = Σ sqrt(eigenvalues of σ1 σ2): an independent route to the cross term.
    s1, s2 = _random_spd(8, seed=1), _random_spd(8, seed=2)
    mu1, mu2 = torch.zeros(8, dtype=torch.float64), torch.ones(8, dtype=torch.float64)
    tr_covmean = torch.linalg.eigvals(s1 @ s2).real.sqrt().sum()
    expected = float(8.0 + s1.trace() + s2.trace() - 2 * tr_covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2, sqrt_sigma1=sqrtm_psd(s1)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="sigma2"):
        frechet_distance(torch.zeros(3), torch.eye(3), torch.zeros(3), torch.eye(4))


# ---------------------------------------------------------------- bundled classifier

@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def scorer():
    return DigitScorer.bundled()


def test_bundled_classifier_accuracy_on_held_out_digits(digits, scorer):
    with torch.inference_mode():
        logits, features = scorer.classifier(digits.images[-N_TEST:])
    assert logits.shape == (N_TEST, 10) and features.shape == (N_TEST, 128)
    accuracy = float((logits.argmax(1) == digits.labels[-N_TEST:]).float().mean())
    assert accuracy >= 0.95


def test_real_digits_score_well_and_noise_scores_badly(digits, scorer):
    real = scorer.score(digits.images[-N_TEST:])
    noise = scorer.score(torch.rand(N_TEST, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    assert real.n == noise.n == N_TEST
    assert real.inception_score > 8.0
    assert noise.frechet_distance > 20 * real.frechet_distance


def test_scorer_returns_nan_for_diverged_images_and_rejects_wrong_shapes(scorer):
    images = torch.zeros(4, 1, 28, 28)
    images[0, 0, 0, 0] = float("nan")
    scores = scorer.score(images)
    assert math.isnan(scores.inception_score) and math.isnan(scores.frechet_distance)
    with pytest.raises(ValueError, match="28x28"):
        scorer.score(torch.zeros(4, 1, 32, 32))


def test_missing_weights_error_names_rebuild_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python assets/train_classifier.py"):
        load_classifier(path=tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- bundled digits

def test_digits_npz_shape_dtype_and_balance():
    with np.load(DIGITS_FILE) as f:
        images, labels = f["images"], f["labels"]
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and labels.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() >= 400 and counts.max() <= 600
    assert not np.all(np.diff(labels.astype(int)) >= 0), "labels are sorted; the npz must be shuffled"
    assert np.bincount(labels[-N_TEST:], minlength=10).min() >= 30  # held-out split covers every digit
