"""Sample-quality metrics.

2-D mode coverage follows VEEGAN (Srivastava et al., 2017, §5.1) and PacGAN
(Lin et al., 2018, §5.1): draw 2,500 generated samples; a sample is
*high quality* if it lies within 3σ of its nearest mode centre; a mode is
*covered* if at least one high-quality sample is nearest to it. Reported:
modes covered and the percentage of high-quality samples (HQ%).

Not here: training, plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

N_COVERAGE_SAMPLES = 2500


@dataclass(frozen=True)
class ModeCoverage:
    modes_covered: int
    n_modes: int
    hq_fraction: float  # in [0, 1]
    counts: tuple[int, ...]  # high-quality samples per mode

    @property
    def hq_percent(self) -> float:
        return 100.0 * self.hq_fraction


def mode_coverage(samples: torch.Tensor, modes: torch.Tensor, sigma: float) -> ModeCoverage:
    """Score 2-D `samples` (N, 2) against mode `modes` (M, 2) of std `sigma`."""
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples must be (N, {modes.shape[1]}), got {tuple(samples.shape)}")
    samples = samples.detach().float().to(modes.device)
    dist = torch.cdist(samples, modes.float())  # (N, M)
    nearest_d, nearest = dist.min(1)
    finite = torch.isfinite(nearest_d)
    hq = finite & (nearest_d <= 3 * sigma)
    counts = torch.bincount(nearest[hq], minlength=len(modes))
    n = max(len(samples), 1)
    return ModeCoverage(
        modes_covered=int((counts > 0).sum()),
        n_modes=len(modes),
        hq_fraction=float(hq.sum()) / n,
        counts=tuple(int(c) for c in counts.tolist()),
    )
