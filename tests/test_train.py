"""The headless CLI, `python -m gan_core.train`."""

from __future__ import annotations

import json

from gan_core import train
from gan_core.config import default_config


def test_flags_override_the_dataset_defaults():
    args = train.parse_args(["--data", "digits", "--r1-gamma", "0", "--n-critic", "2", "--label-smoothing", "0.1",
                             "--two-sided", "--seed", "4"])
    cfg = train.config_from_args(args)
    assert cfg == default_config("digits", r1_gamma=0.0, n_critic=2, label_smoothing=0.1,
                                 two_sided_smoothing=True, seed=4)
    assert train.config_from_args(train.parse_args(["--data", "grid25"])) == default_config("grid25")


def test_a_short_run_prints_progress_and_a_json_summary(capsys):
    code = train.main(["--data", "ring8", "--steps", "40", "--width", "8", "--batch-size", "16", "--every", "0.1"])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    assert out[0].startswith("training ring8 on cpu")
    summary = json.loads(out[-1])
    assert summary["steps"] == 40 and summary["state"] == "finished"
    assert summary["n_modes"] == 8 and 0 <= summary["modes_covered"] <= 8


def test_an_invalid_value_is_a_clear_error_not_a_traceback(capsys):
    assert train.main(["--data", "ring8", "--g-lr", "5", "--steps", "1"]) == 2
    assert "error: g_lr must be between" in capsys.readouterr().err
