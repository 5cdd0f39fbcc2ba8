"""Lesson benchmarks: does each lesson preset show its symptom, and does its alert's fix help?

    python -m benchmarks presets

Not here: the engine's quality (`engine.py`), the page (`page.py`).
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np

from gan_core.records import STAT_FIELDS
from gan_core.serve.runner import Runner

from classroom.alerts import detect
from classroom.presets import PRESETS


def bench_presets(seconds: float) -> dict:
    """Train every lesson preset for `seconds` and measure the symptom it should show,
    plus the alerts `alerts.detect` raised along the way (checked every second)."""
    out = {}
    for name, preset in PRESETS.items():
        runner = Runner(preset.config, eval_interval_s=0.25)
        kinds: dict[str, int] = {}
        runner.start()
        t0 = time.perf_counter()
        coverage_seen = []
        while time.perf_counter() - t0 < seconds:
            time.sleep(1.0)
            snap = runner.snapshot()
            for alert in detect(snap):
                kinds[alert.kind] = kinds.get(alert.kind, 0) + 1
            if snap.frame is not None and snap.frame.modes_covered is not None:
                coverage_seen.append(snap.frame.modes_covered)
        runner.stop()
        snap = runner.snapshot()
        col = lambda n: snap.column(n, recent=True)[-1000:]
        early = snap.column("g_grad_norm")[:50]
        g_norm_early = float(np.max(early)) if len(early) else float("nan")
        d_loss = col("d_loss")
        out[name] = dict(
            watch=preset.watch, steps=snap.step, state=snap.state,
            final_modes=snap.frame.modes_covered if snap.frame else None,
            final_hq_percent=round(snap.frame.hq_percent, 1) if snap.frame and snap.frame.hq_percent is not None else None,
            modes_seen_min_max=[min(coverage_seen), max(coverage_seen)] if coverage_seen else None,
            share_of_evals_below_all_modes=round(float(np.mean(np.array(coverage_seen) < (snap.frame.n_modes or 0))), 2)
            if coverage_seen and snap.frame and snap.frame.n_modes else None,
            mean_d_real_last_1000=round(float(col("d_real").mean()), 3),
            mean_d_fake_last_1000=round(float(col("d_fake").mean()), 3),
            g_grad_norm_last_over_early_max=round(float(col("g_grad_norm").mean()) / g_norm_early, 4),
            d_loss_mean_std_last_1000=[round(float(d_loss.mean()), 3), round(float(d_loss.std()), 3)],
            digit_is_last=round(float(snap.digit_scores[-1, 1]), 2) if len(snap.digit_scores) else None,
            alerts_seen=kinds,
        )
    return out


# Lessons whose symptom has a one-click fix, and the alert kinds that name that symptom.
FIX_LESSONS = {"mode_collapse": ("mode_collapse",), "strong_d": ("d_overpowering", "vanishing_gradient"),
               "oscillation": ("oscillation",)}


def _symptoms(snap, since_step: int) -> dict:
    """The symptoms a fix should improve, measured on the second half of what was recorded
    after `since_step`: modes covered and HQ% (evaluations), mean D(x) / D(G(z)) and the
    oscillation detector's swing count (full-resolution steps)."""
    from classroom.alerts import WINDOW, swing_count

    cov = snap.coverage[snap.coverage[:, 0] > since_step]
    cov = cov[len(cov) // 2:]
    rows = snap.recent[snap.recent[:, 0] > since_step]
    rows = rows[len(rows) // 2:]
    col = lambda name: rows[:, 2 + STAT_FIELDS.index(name)]
    swings = swing_count(rows[-WINDOW:], snap.config) if len(rows) else None
    return dict(
        steps=int(snap.step - since_step),
        modes_mean=round(float(cov[:, 1].mean()), 2) if len(cov) else None,
        hq_percent_mean=round(float(cov[:, 2].mean()), 1) if len(cov) else None,
        d_real_mean=round(float(np.nanmean(col("d_real"))), 3) if len(rows) else None,
        d_fake_mean=round(float(np.nanmean(col("d_fake"))), 3) if len(rows) else None,
        swings_last_500=swings,
        alerts=[a.kind for a in detect(snap)],
    )


def _train_for(runner: Runner, cpu_seconds: float) -> None:
    """Train for `cpu_seconds` of the training thread's CPU time: branches compared on a shared,
    busy machine get the same compute (on an idle core, CPU time ≈ wall time)."""
    start = runner.cpu_seconds
    runner.resume()
    while runner.cpu_seconds - start < cpu_seconds:
        time.sleep(0.05)
    runner.pause()
    while runner.state() == "running":
        time.sleep(0.01)


def bench_fixes(seconds: float = 30.0, lessons=tuple(FIX_LESSONS), fixes: dict | None = None,
                max_wait_s: float = 90.0) -> dict:
    """Does each lesson's one-click fix help? Train the lesson until its symptom's alert fires
    (at most `max_wait_s`), checkpoint, then from that same checkpoint train `seconds` (CPU
    seconds) with no change and `seconds` with the fix the page's button applies (the first
    alert with a fix), and compare the symptoms. `fixes` maps a lesson to candidate fixes
    ({label: changes}) to measure as well."""
    out = {}
    for name in lessons:
        # No timed checkpoints: the ring keeps only the one every branch starts from.
        runner = Runner(PRESETS[name].config, eval_interval_s=0.25, checkpoint_interval_s=math.inf)
        runner.start()
        t0, alert = time.perf_counter(), None
        while alert is None and time.perf_counter() - t0 < max_wait_s:
            time.sleep(1.0)
            found = detect(runner.snapshot())
            if any(a.kind in FIX_LESSONS[name] for a in found):
                alert = next((a for a in found if a.fix), None)
        runner.pause()
        while runner.state() == "running":
            time.sleep(0.01)
        result = dict(alert=alert and alert.kind, fix=alert and alert.fix, fix_label=alert and alert.fix_label,
                      seconds_to_alert=round(time.perf_counter() - t0, 1))
        checkpoint = runner.checkpoint_now()
        start = runner.snapshot().step
        result["at_alert"] = _symptoms(runner.snapshot(), max(0, start - 2000))
        branches = {"no_fix": {}}
        branches.update({"with_fix": alert.fix} if alert else {})
        branches.update((fixes or {}).get(name) or {})
        for label, changes in branches.items():
            runner.rewind(checkpoint)
            if changes:
                runner.update(**changes)
            _train_for(runner, seconds)
            result[label] = _symptoms(runner.snapshot(), start)
        runner.stop()
        out[name] = result
        print(json.dumps({name: result}), file=sys.stderr, flush=True)
    return out
