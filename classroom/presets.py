"""Lesson presets: one click loads a configuration that demonstrates one GAN lesson.

Each preset names the lesson, explains what students should watch for, and
gives the `TrainConfig` that shows it on a CPU within about 30 seconds.
`python -m benchmarks presets` trains each one and measures the symptom
it is meant to show (numbers in BENCHMARKS.md). Not here: the UI, detection
of symptoms in arbitrary runs (`alerts.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from gan_core.config import CLASSROOM_SETTING, TrainConfig, default_config


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    explanation: str  # markdown shown to students when the preset loads
    config: TrainConfig
    watch: str  # the symptom `bench presets` measures, in words


PRESETS: dict[str, Preset] = {}


def _add(name: str, title: str, explanation: str, watch: str, config: TrainConfig) -> None:
    PRESETS[name] = Preset(name, title, explanation.strip(), config, watch)


_add(
    "healthy", "Healthy GAN (ring of 8)",
    """
**A healthy duel.** Non-saturating loss, equal learning rates, PacGAN packing (D judges pairs of
samples, which punishes a G that repeats itself). Watch the orange points spread to all 8 blue
clusters, D's histograms move towards **0.5** and the losses settle near their dashed
equilibrium values. The background fades as D loses the ability to tell real from fake.
""",
    "all 8 modes covered; D(x) and D(G(z)) near 0.5",
    default_config("ring8"),
)
_add(
    "whole_class", "Healthy GAN for a whole class (ring of 8)",
    """
**The healthy duel, sized for a class.** The same GAN as "Healthy GAN", with batch 128 instead of
256 and learning rates 2·10⁻³ decaying to 5 % over 10,000 steps: at half the work per step, 4 of 5
seeds reached all 8 modes with ≥ 90 % high-quality samples in 6,000–8,500 steps
(`python -m benchmarks cohort_setting`), where the default took more steps or did not get there
within 10,000. Share the link with this lesson chosen when a whole class trains at once. Watch the
orange points spread to all 8 blue clusters and D's histograms move towards **0.5**.
""",
    "all 8 modes covered; D(x) and D(G(z)) near 0.5",
    default_config("ring8", **CLASSROOM_SETTING),
)
_add(
    "mode_collapse", "Mode collapse",
    """
**Mode collapse.** The generator learns far faster than the discriminator (G lr 10× D's, D sees one
sample at a time). G finds a few points that fool D and piles its samples there; D slowly learns
to reject them, G jumps to *another* few modes, and so on. Watch the mode-coverage plot: G covers
only some of the 8 clusters, and which ones keeps changing. *Fix to try*: lower G's learning rate.
""",
    "fewer than 8 modes covered most of the time",
    TrainConfig(dataset="ring8", width=32, pack=1, g_lr=1e-2, d_lr=1e-3),
)
_add(
    "strong_d", "D too strong → G's gradient vanishes",
    """
**The discriminator wins.** Minimax (saturating) loss, D's learning rate 10× G's and k = 5 D steps per
G step. D quickly rejects every fake: D(G(z)) → 0 and D(x) → 1. The minimax loss log(1 − D(G(z)))
has gradient −D(G(z)) with respect to D's logit, so G's learning signal vanishes exactly then
(Goodfellow et al., 2014, §3): the fakes barely improve and the D histograms stay at 0 and 1.
*Fix to try* (the alert's button does it): switch the loss to non-saturating, whose gradient is
strong exactly when D rejects the fakes, and put the players on equal footing (k = 1, equal learning
rates). Then watch for the next lesson: freed from a dominant D, G may pile onto a few clusters.
""",
    "mean D(G(z)) near 0, D(x) near 1, and almost no high-quality samples",
    TrainConfig(dataset="ring8", width=32, loss="minimax", g_lr=1e-4, d_lr=1e-3, n_critic=5),
)
_add(
    "oscillation", "Oscillation (learning rates too high)",
    """
**Oscillation.** Both learning rates are 20× the default and Adam's momentum is high (β₁ = 0.9).
Each player overshoots its best response, so the two chase each other: losses swing, the
orange cloud orbits instead of settling. *Fix to try*: bring both learning rates back to 10⁻³.
""",
    "large swings in the losses and D outputs",
    TrainConfig(dataset="ring8_wide", width=32, g_lr=2e-2, d_lr=2e-2, beta1=0.9),
)
_add(
    "smoothing", "Label smoothing calms an over-confident D",
    """
**One-sided label smoothing** (Salimans et al., 2016): D is trained towards 0.9 instead of 1 on real
data. An over-confident D pushes its outputs to exactly 0 and 1, where G's gradients are tiny;
with smoothing, D's histogram stays away from 1 and G keeps getting useful gradients. Compare the
D(x) histogram with smoothing 0 (move the slider live!).
""",
    "D(x) stays below 0.9 on real samples",
    TrainConfig(dataset="ring8", width=32, pack=2, g_lr=1e-3, d_lr=3e-3, label_smoothing=0.1),
)
_add(
    "wgan_gp", "WGAN-GP with k = 5 critic steps",
    """
**Wasserstein GAN with gradient penalty** (Gulrajani et al., 2017): D becomes a *critic* that
outputs a score, not a probability; the gap between its mean score on real and on fake samples
estimates the Wasserstein distance, and the penalty keeps the critic's gradient norm near 1. The
critic trains 5 times per G step (k = 5) with Adam β = (0.5, 0.9) and λ = 10, as in the paper; the
learning rate is 10⁻³ instead of the paper's 10⁻⁴ so that something happens within a lesson.
**It is slow here:** each step is 5 critic updates, each with a second back-propagation for the
penalty, so it makes about 9× fewer steps per second than the healthy GAN (measured: 3,900 against
36,000 steps in 30 s on one free CPU core; fewer on a busy server, the status line shows the rate).
Watch G's cloud *spread out* over the ring instead of collapsing: the critic's gradient does not
vanish, so G keeps moving. At this budget the samples stay blurry (few high-quality samples) and
the number of modes covered wanders (in that 30 s run: between 1 and 8, all 8 in about a quarter of
the checks); the healthy GAN is the one that settles on all 8.
""",
    "G spreads over the ring; the mode count wanders (all 8 only some of the time) and samples stay blurry",
    TrainConfig(dataset="ring8_wide", width=32, loss="wgan-gp", n_critic=5, g_lr=1e-3, d_lr=1e-3,
                beta1=0.5, beta2=0.9),
)
_add(
    "dcgan_digits", "DCGAN on MNIST digits",
    """
**DCGAN** (Radford et al., 2016) on 5,000 bundled MNIST digits: strided (transposed) convolutions,
BatchNorm, ReLU in G with a Tanh output, LeakyReLU(0.2) in D, weights from N(0, 0.02), Adam with
β₁ = 0.5 (lr 5·10⁻⁴: DCGAN's 2·10⁻⁴ learns slower on this small set), plus a small R1 penalty
(Mescheder et al., 2018) that keeps D smooth around the real digits. Blobs become strokes within a
minute and digits within a few minutes on a CPU; the classifier Inception Score (10 = every digit,
all classes) climbs as they do.
""",
    "classifier Inception Score rises",
    default_config("digits"),
)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
