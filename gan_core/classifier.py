"""A small MNIST digit classifier and the GAN quality scores built on it.

Inception Score and FID are defined with an ImageNet Inception-v3 network; for
28x28 digits the usual classroom substitute is a digit classifier trained on
the same data. So the numbers here are *classifier* IS / FD: comparable with
each other, not with published Inception-based figures.

- Inception Score (Salimans et al., 2016, "Improved Techniques for Training
  GANs", §4): IS = exp(E_x KL(p(y|x) || p(y))). 1 = useless, 10 = every image
  confidently a digit and all ten digits equally often.
- Fréchet distance (Heusel et al., 2017, "GANs Trained by a Two Time-Scale
  Update Rule ...", §4 "FID"): the Fréchet (2-Wasserstein) distance between
  Gaussians fitted to classifier features of real and generated images. 0 =
  same statistics. It is biased upwards for small n (Chong & Forsyth, 2020,
  "Effectively Unbiased FID and Inception Score"), so compare values at equal n.

The weights are `assets/digit_classifier.safetensors`, produced by
`assets/train_classifier.py` (accuracy and sha256 in assets/README.md).

Not here: training the classifier (assets/train_classifier.py), 2-D mode
coverage (metrics.py), any plotting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from .data import ASSETS_DIR, load_digits

CLASSIFIER_FILE = ASSETS_DIR / "digit_classifier.safetensors"
REBUILD_HINT = "rebuild it with `python assets/train_classifier.py` (see assets/README.md)"
N_CLASSES = 10
FEATURE_DIM = 128


class DigitClassifier(nn.Module):
    """Two conv blocks and a 128-d feature layer; input (N, 1, 28, 28) in [-1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)  # train-time only; eval() turns it off
        self.head = nn.Linear(FEATURE_DIM, N_CLASSES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (N, 10), features (N, 128)); features feed the Fréchet distance.

        The features are the penultimate layer *before* its ReLU: after it,
        units that never fire are exact zeros and make the covariance singular.
        """
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (N, 16, 14, 14)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # (N, 32, 7, 7)
        features = self.fc(x.flatten(1))  # (N, 128)
        logits = self.head(self.dropout(F.relu(features)))  # (N, 10)
        return logits, features


def load_classifier(device: torch.device | str = "cpu", path: Path = CLASSIFIER_FILE) -> DigitClassifier:
    """The bundled classifier in eval mode (safetensors only, never pickle)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"digit classifier weights not found at {path}; {REBUILD_HINT}")
    model = DigitClassifier()
    try:
        model.load_state_dict(load_file(path))
    except RuntimeError as exc:  # missing/unexpected keys or wrong shapes
        raise RuntimeError(f"{path} does not match DigitClassifier ({exc}); {REBUILD_HINT}") from exc
    return model.to(device).eval()


def classifier_inception_score(probs: torch.Tensor, splits: int = 1) -> float:
    """exp(E_x KL(p(y|x) || p(y))) for class probabilities `probs` (N, C).

    With `splits` > 1 the N rows are cut into that many parts and the mean of
    the per-part scores is returned, as in Salimans et al.'s reference code.
    Computed in float64; 0 * log 0 is taken as 0.
    """
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"probs must be a non-empty (N, C) tensor, got shape {tuple(probs.shape)}")
    if not 1 <= splits <= len(probs):
        raise ValueError(f"splits must be between 1 and N={len(probs)}, got {splits}")
    p = probs.detach().to(torch.float64)
    rows_sum_to_one = torch.allclose(p.sum(1), torch.ones_like(p[:, 0]), atol=1e-4)
    if not torch.isfinite(p).all() or (p < 0).any() or not rows_sum_to_one:
        raise ValueError("probs must be finite, non-negative rows summing to 1 (apply softmax to logits first)")
    scores = []
    for part in torch.tensor_split(p, splits):
        p_y = part.mean(0, keepdim=True)  # marginal p(y), (1, C)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, p_y)).sum(1)  # (n,)
        scores.append(math.exp(float(kl.mean())))
    return sum(scores) / len(scores)


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via eigh."""
    eigvals, eigvecs = torch.linalg.eigh(a)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def frechet_distance(
    mu1: torch.Tensor,
    sigma1: torch.Tensor,
    mu2: torch.Tensor,
    sigma2: torch.Tensor,
    *,
    sqrt_sigma1: torch.Tensor | None = None,
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al., 2017).

    d² = |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1^½ sigma2 sigma1^½)^½).
    The symmetric form of the cross term lets us use `eigh` in float64
    instead of scipy's general `sqrtm`; both give tr((sigma1 sigma2)^½).
    Pass `sqrt_sigma1` (from `sqrtm_psd`) to skip one eigendecomposition
    when sigma1 is fixed, as `DigitScorer` does for the real digits.
    """
    # Small float64 eigendecompositions are fastest on the CPU, whatever device made the features.
    mu1, mu2 = (torch.as_tensor(m).to("cpu", torch.float64).reshape(-1) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s).to("cpu", torch.float64) for s in (sigma1, sigma2))
    d = len(mu1)
    for name, t, shape in (("mu2", mu2, (d,)), ("sigma1", sigma1, (d, d)), ("sigma2", sigma2, (d, d))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} to match mu1, got {tuple(t.shape)}")
    sqrt_sigma1 = sqrtm_psd(sigma1) if sqrt_sigma1 is None else sqrt_sigma1.to("cpu", torch.float64)
    cross = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    cross = (cross + cross.T) / 2  # remove rounding asymmetry before eigh
    tr_covmean = torch.linalg.eigvalsh(cross).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    d2 = diff @ diff + sigma1.trace() + sigma2.trace() - 2 * tr_covmean
    return max(float(d2), 0.0)  # rounding can leave -1e-12 for identical inputs


def feature_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), float64 on the CPU."""
    f = features.detach().to("cpu", torch.float64)
    return f.mean(0), torch.cov(f.T)


@dataclass(frozen=True)
class DigitScores:
    inception_score: float  # 1 (worst) .. 10 (best)
    frechet_distance: float  # 0 = real-digit feature statistics; lower is better
    n: int  # images scored; FD is only comparable at equal n


class DigitScorer:
    """Scores generated digits against the real bundled digits.

    Built once (classifier forward pass over the reference images); after that
    it is read-only, so `score` may be called from any thread.
    """

    def __init__(self, classifier: DigitClassifier, reference_images: torch.Tensor, batch_size: int = 1000) -> None:
        self.classifier = classifier.eval()
        self.device = next(classifier.parameters()).device
        self.batch_size = batch_size
        _, ref_features = self._forward(reference_images)
        self.ref_mu, self.ref_sigma = feature_statistics(ref_features)
        self.ref_sigma_sqrt = sqrtm_psd(self.ref_sigma)
        self.n_reference = len(reference_images)

    @classmethod
    def bundled(cls, device: torch.device | str = "cpu") -> "DigitScorer":
        """Bundled classifier against all 5,000 bundled digits."""
        return cls(load_classifier(device), load_digits(device).images)

    @torch.inference_mode()
    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim < 2 or images[0].numel() != 28 * 28:
            raise ValueError(f"expected N images of 28x28 pixels, e.g. (N, 1, 28, 28); got {tuple(images.shape)}")
        x = images.detach().reshape(-1, 1, 28, 28).to(self.device, torch.float32)
        probs, features = [], []
        for batch in x.split(self.batch_size):
            logits, feats = self.classifier(batch)
            probs.append(logits.softmax(1))
            features.append(feats)
        return torch.cat(probs), torch.cat(features)

    def score(self, images: torch.Tensor) -> DigitScores:
        """IS and FD of `images` (N, 1, 28, 28) in [-1, 1]; N >= 2.

        A diverged generator (NaN/inf pixels) scores NaN rather than raising,
        so a live run can plot the failure instead of crashing.
        """
        n = len(images)
        if n < 2:
            raise ValueError(f"need at least 2 images to estimate a covariance, got {n}")
        if not torch.isfinite(images).all():
            return DigitScores(math.nan, math.nan, n)
        probs, features = self._forward(images)
        mu, sigma = feature_statistics(features)
        return DigitScores(
            inception_score=classifier_inception_score(probs),
            frechet_distance=frechet_distance(
                self.ref_mu, self.ref_sigma, mu, sigma, sqrt_sigma1=self.ref_sigma_sqrt
            ),
            n=n,
        )
