"""Tests for the benchmarks' plumbing (never their figures: targets live in the JSON):
the command line, and that the speed baselines run the engine's own networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import __main__ as cli, engine as bench
from gan_core.config import default_config
from gan_core.engine import Engine


def test_no_arguments_means_speed_and_quality():
    assert cli.parse_args([]).what == ["speed", "quality"]
    args = cli.parse_args(["digits", "--seeds", "0,1"])
    assert args.what == ["digits"] and args.seeds == (0, 1)


def test_an_unknown_benchmark_exits_with_a_message(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["nonsense"])
    assert exc.value.code == 2
    assert "unknown benchmark 'nonsense'" in capsys.readouterr().err


def test_the_textbook_baseline_trains_the_engines_networks_from_the_same_start():
    config = default_config("ring8", device="cpu")
    engine = Engine(config)
    G, D = bench._nets_like_the_engine(config, torch.device("cpu"))
    assert type(G) is type(engine.G) and type(D) is type(engine.D) and D.pack == config.pack == 2
    assert G.leak == engine.G.leak == 0.0  # ReLU G, as in the engine
    for mine, theirs in ((G, engine.G), (D, engine.D)):
        assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))


def test_a_tiny_speed_round_reports_three_rates_their_ratios_and_the_decision():
    result = bench.bench_speed(seconds=0.02, rounds=1, with_runner=False)
    assert result["columns"] == ["textbook", "engine_autograd", "engine_hand_backward"]
    assert all(rate > 0 for rate in result["steps_per_s"].values())
    assert set(result["ratios_per_cpu_s"]) == {"autograd_vs_textbook", "hand_vs_autograd", "hand_vs_textbook"}
    assert result["hand_backward_decision"].split(":")[0] in ("keep", "delete")


def test_cohort_rates_in_threads_and_in_processes_count_every_run(tiny):
    from benchmarks.cohort import cohort_rates, cohort_rates_processes

    config = tiny()
    threads = cohort_rates(config, 3, 2, 0.2)
    processes = cohort_rates_processes(config, 3, 2, 0.2)  # spawned: 2 runs in one, 1 in the other
    for rates in (*threads, *processes):  # per second and per CPU-second
        assert len(rates) == 3 and min(rates) > 0


def test_cohort_rate_beside_a_busy_python_thread_measures_both(tiny):
    from benchmarks.cohort import cohort_rate_beside_python

    import threading

    alone, beside = cohort_rate_beside_python(tiny(), 2, 0.2)
    # Beside the busy thread a short window may see no step at all (that is what it measures).
    assert alone > 0 and beside >= 0
    assert not [t for t in threading.enumerate() if t.name == "gan-bench-busy"]



# ------------------------------------------------------------------------------ lessons (python -m benchmarks presets)

def test_a_lesson_branch_continues_exactly_as_its_trunk_and_a_fix_is_a_live_change(tiny):
    from benchmarks.lessons import Trial

    trunk = Trial(tiny(), eval_every=10)
    trunk.train_to(30)
    same, fixed = trunk.branch({}), trunk.branch({"g_lr": 5e-4})
    for run in (trunk, same, fixed):
        run.train_to(50)
    a, b = trunk.telemetry.snapshot(), same.telemetry.snapshot()
    np.testing.assert_array_equal(a.recent[:, 2:], b.recent[:, 2:])  # bit-identical: weights, Adam, RNG
    assert [e["step"] for e in same.log] == [10, 20, 30, 40, 50]
    changed = fixed.telemetry.snapshot()
    assert changed.config.g_lr == 5e-4 and changed.events == ((30, "G lr 0.001→0.0005"),)
    assert not np.array_equal(changed.recent[-20:, 2:], a.recent[-20:, 2:])
    assert trunk.engine.config.g_lr == 1e-3, "the trunk is untouched"


def test_alert_summary_counts_first_step_appearances_and_share():
    from benchmarks.lessons import alert_summary

    log = [dict(step=100 * i, alerts=kinds) for i, kinds in enumerate(
        [[], ["oscillation"], ["oscillation"], [], ["oscillation", "mode_collapse"], ["mode_collapse"]], start=1)]
    assert alert_summary(log) == {
        "mode_collapse": dict(first_step=500, appearances=1, share=0.33),
        "oscillation": dict(first_step=200, appearances=2, share=0.5)}
    assert alert_summary(log, after=400) == {"mode_collapse": dict(first_step=500, appearances=1, share=1.0),
                                             "oscillation": dict(first_step=500, appearances=1, share=0.5)}


def test_every_lesson_preset_has_a_plan_and_every_lesson_measures_its_symptom(tiny):
    from benchmarks.lessons import PLANS, Trial, measure
    from classroom.presets import PRESETS

    assert set(PLANS) == set(PRESETS)
    for plan in PLANS.values():
        assert list(plan.budgets) == sorted(plan.budgets) and plan.eval_every > 0
        assert not plan.alerts or plan.max_alert_step >= plan.budgets[-1] // 2
    trial = Trial(tiny(), eval_every=25)
    trial.train_to(100)
    m = measure(trial, since=50)
    assert m["step"] == 100 and len(m["covered"]) == m["modes"]
    assert m["window_modes_min_max"][0] <= m["modes"] <= m["window_modes_min_max"][1]
    assert 0 <= m["d_real_p95"] <= 1 and m["swings_last_500"] >= 0


def test_a_tiny_cohort_benchmark_reports_each_rate_beside_the_rounds_solo_rate(tiny):
    from benchmarks.cohort import bench_cohort

    result = bench_cohort(seconds=0.2, n_runs=4, rounds=1, batch_sizes=(16,), base=tiny(), implementations=False)
    assert list(result) == ["batch16"]
    (row,) = result["batch16"]["rounds"]
    for per in ("per_s", "per_cpu_s"):
        assert min(row[f"solo_{per}"], row[f"two_processes_min_{per}"], row[f"one_cohort_mean_{per}"]) > 0
        for how in ("two_processes", "one_cohort"):
            ratio = row[f"{how}_ratio_{per}"]
            assert ratio == pytest.approx(row[f"{how}_mean_{per}"] / row[f"solo_{per}"], abs=2e-3)
            assert result["batch16"][f"median_ratio_{how}_{per}"] == ratio
