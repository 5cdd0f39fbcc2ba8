"""Tests for classroom/presets.py: every lesson's configuration is a valid, self-consistent
`TrainConfig` that the page can load, and each lesson's text names what the page will show
(its fix is checked against alerts.py in test_alerts.py; its numbers are measured by
`python -m benchmarks presets`, not here)."""

from __future__ import annotations

import pytest

from classroom.presets import PRESETS, get_preset
from gan_core.config import TrainConfig


@pytest.mark.parametrize("name", list(PRESETS))
def test_each_preset_config_validates_and_survives_a_round_trip(name):
    preset = get_preset(name)
    config = preset.config
    assert TrainConfig.from_dict(config.to_dict()) == config  # validated again on construction
    assert preset.name == name and preset.title and preset.watch
    assert preset.explanation.startswith("**") and "\n\n" not in preset.explanation


def test_lessons_set_up_what_their_text_says():
    collapse, strong, smoothing = get_preset("mode_collapse").config, get_preset("strong_d").config, \
        get_preset("smoothing").config
    assert (collapse.loss, collapse.n_critic, collapse.pack) == ("nonsaturating", 5, 1)
    assert collapse.d_lr == 3 * collapse.g_lr, "D's learning rate 3× G's"
    # The D-too-strong lesson is the mode-collapse setup with the minimax loss: after the
    # switch to non-saturating it *is* the previous lesson, as its text says.
    assert strong.with_live(loss="nonsaturating") == collapse and strong.loss == "minimax"
    assert smoothing.label_smoothing == 0.1 and smoothing.n_critic == 3
    assert get_preset("wgan_gp").config.loss == "wgan-gp" and get_preset("wgan_gp").config.n_critic == 5


def test_an_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="mode_collapse"):
        get_preset("nonsense")
