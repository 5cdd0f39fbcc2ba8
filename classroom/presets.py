"""Lesson presets: one click loads a configuration that demonstrates one GAN lesson.

Each preset names the lesson, explains what students should watch for, and
gives the `TrainConfig` that shows it within a stated number of steps (a
slower machine gets there later, not differently). `python -m benchmarks
presets` trains each one on 5 seeds and measures the symptom at fixed step
budgets, and each alert's fix against no fix
(docs/benchmarks/presets.json); the numbers in the texts come from there. Not here: the UI, detection
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
clusters — all 8 are covered by about 1,000 steps — and gather on them: the share of high-quality
samples on the coverage plot climbs past 50 % by about 4,000 steps. D's histograms move towards
**0.5** (mean D(x) ≈ 0.55–0.6, D(G(z)) ≈ 0.4–0.45) and the losses settle near their dashed
equilibrium values. The background fades to grey as D loses the ability to tell real from fake.
""",
    "all 8 modes covered by 1,000 steps; D(x) and D(G(z)) near 0.5; no alert",
    default_config("ring8"),
)
_add(
    "whole_class", "Healthy GAN for a whole class (ring of 8)",
    """
**The healthy duel, sized for a class.** The same GAN as "Healthy GAN", with batch 64 instead of
256 and learning rates 2.5·10⁻³ decaying to 5 % over 25,000 steps: a quarter of the work per step,
so a whole class trains it together at a good speed. All 8 modes are covered by 2,000 steps; 47–83 %
of samples are high quality at 4,000 steps, 74–91 % at 8,000 and 90–96 % at 16,000 (5 of 5 seeds,
`python -m benchmarks presets`). Share the link with this lesson chosen when a whole class trains
at once. Watch the orange points spread to all 8 blue clusters and D's histograms move towards
**0.5**.
""",
    "all 8 modes covered by 2,000 steps; D(x) and D(G(z)) near 0.5; no alert",
    default_config("ring8", **CLASSROOM_SETTING),
)
_add(
    "mode_collapse", "Mode collapse",
    """
**Mode collapse.** D is too strong for G: k = 5 D steps per G step, D's learning rate 3× G's, and
D judges one sample at a time. Within about 1,000 steps G piles its samples onto **1 to 4 of the 8
clusters** — sharp samples (70–95 % high quality), but only there — and stays: between the
clusters D says "fake" so firmly that a point that reached a cluster is pushed back into it, and
the empty clusters never pull G across. The mode-coverage plot drops to 1–4 and stays flat.
After about 2,000 steps the **mode-collapse alert** appears; it stays until G recovers or you act.
*Fix* (the alert's button): the **WGAN-GP** loss (Gulrajani et al., 2017) with D's learning rate
back to 10⁻³. The alert goes at once; its critic has no flat "fake" plateau to trap G, and within
about 2,000 steps G spreads over 7–8 of the clusters (blurry at first: 7–16 % high quality).
Lowering G's learning rate, or k = 1 with D at 10⁻³, leaves G on the same clusters (measured on 5
seeds, `python -m benchmarks presets`).
""",
    "1–4 of 8 modes covered with sharp samples, the same ones for thousands of steps; the mode-collapse alert",
    TrainConfig(dataset="ring8_wide", width=32, pack=1, n_critic=5, g_lr=1e-3, d_lr=3e-3),
)
_add(
    "strong_d", "D too strong → G's gradient vanishes",
    """
**The discriminator wins.** The original minimax (saturating) loss, D's learning rate 3× G's and
k = 5 D steps per G step. Within 500 steps D rejects every fake: mean D(G(z)) ≈ 0.03–0.04 and
D(x) ≈ 0.96–0.97 (the two histograms sit at 0 and 1), and the orange cloud never settles on the
clusters (1–2 % of samples high quality for 4,000 steps and more). The minimax loss
log(1 − D(G(z))) has gradient −D(G(z)) with respect to D's logit: exactly when D rejects the fakes,
G's learning signal is ~30× weaker than the non-saturating loss would give (Goodfellow et al.,
2014, §3). By step 500 an alert says the discriminator wins and the minimax loss stops teaching G.
*Fix* (the alert's button, or the Loss menu — live, no restart): switch to **non-saturating**.
Within 250 steps D(G(z)) rises to about 0.1 and the fakes gather onto clusters (high-quality
samples from ~2 % to 25–85 %, 60–96 % by 500 steps) — onto one to three clusters only: this is
the mode collapse of the previous lesson, and its alert follows.
""",
    "mean D(G(z)) near 0, D(x) near 1, almost no high-quality samples; after the switch to non-saturating, HQ climbs within 250 steps",
    TrainConfig(dataset="ring8_wide", width=32, loss="minimax", g_lr=1e-3, d_lr=3e-3, n_critic=5),
)
_add(
    "oscillation", "Oscillation (learning rates too high)",
    """
**Oscillation.** Both learning rates are 20× the default and Adam's momentum is high (β₁ = 0.9).
Each player overshoots its best response, so the two chase each other: the losses and D's outputs
swing (5–10 large swings per 500 steps at most checks), the orange cloud orbits instead of settling
and hardly a sample lands on a cluster. The **oscillation alert** appears at step 500; D also wins
outright now and then (the "discriminator is overpowering" alert comes and goes). *Fix* (the
alert's button): both learning rates back to 10⁻³. The swings stop within 500 steps (0–2 per 500
steps), the alert goes and D(G(z)) returns towards 0.5 (0.26–0.47); the clusters come back slowly
and not on every seed (2,000 steps later: all 8 on 1 of 5 seeds, 0–2 on the others).
""",
    "large swings in the losses and D outputs; the oscillation alert by step 500",
    TrainConfig(dataset="ring8_wide", width=32, g_lr=2e-2, d_lr=2e-2, beta1=0.9),
)
_add(
    "smoothing", "Label smoothing calms an over-confident D",
    """
**One-sided label smoothing** (Salimans et al., 2016): D is trained towards 0.9 instead of 1 on real
data. This D is strong (k = 3 D steps per G step, D's learning rate 3× G's): without smoothing it
pushes its outputs on real data to 1, where it is most confident and G's gradients say least. With
smoothing its histogram of D(x) ends near **0.9** (95 % of real points score below 0.82–0.97 at
every check). Move the slider to 0 live and within 500 steps the blue histogram piles up at
**1.0** (95 % of real points below 0.98–1.0, i.e. at it). Smoothing does not prevent mode
collapse: on 3 of 5 seeds G covers only 3–4 clusters and the mode-collapse alert appears.
""",
    "D(x)'s histogram ends near 0.9 with smoothing, at 1.0 without",
    TrainConfig(dataset="ring8", width=32, pack=2, g_lr=1e-3, d_lr=3e-3, n_critic=3, label_smoothing=0.1),
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
penalty, so it makes about 9× fewer steps per second than the healthy GAN (the status line shows
the rate). Watch G's cloud *move and spread* over the ring instead of settling: the critic's
gradient does not vanish, so G keeps moving. Over the first 2,000 steps the number of modes covered
wanders between 1 and 8 and the samples stay blurry (under 5 % high quality) on 4 of 5 seeds; on the
fifth it settled on all 8 (54 % high quality) by step 2,000. The healthy GAN is the one that
settles on all 8 quickly.
""",
    "G keeps moving over the ring; the mode count wanders between 1 and 8 and samples stay blurry",
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
few hundred steps and digits within a few thousand; the classifier Inception Score (10 = every
digit, all classes) climbs as they do: about 4.2 after 250 steps, 4.4–5.1 after 500 and 5.3–5.9
after 1,000 (5 seeds); about 7 after ~8,000 (BENCHMARKS.md).
""",
    "classifier Inception Score rises step by step",
    default_config("digits"),
)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
