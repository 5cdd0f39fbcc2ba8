"""Lesson benchmarks: does each lesson show its symptom by a fixed number of steps, on every
seed, and does its alert's one-click fix help?

    python -m benchmarks presets [--seeds 0,1,2,3,4]

Step budgets, not seconds: what a lesson shows after 2,000 steps does not depend on the
machine (a slow laptop only gets there later). Each preset trains in a plain loop over
`Engine` (no threads), publishing its telemetry as the runner does (`Telemetry.record_steps`,
`record_frame`) every `Plan.eval_every` steps, and `alerts.detect` reads every snapshot, as the
page does. At each budget the symptom metrics are read (`measure`); the alerts are logged at
every evaluation (the first step each fired, how often it appeared, its share of evaluations).

Fixes: a lesson with a one-click fix trains until its alert fires, then two branches leave that
same checkpoint — no change, and the change the page's Apply-fix button makes (the first alert
with a fix) — plus any alternatives the plan names; all are measured at the same steps after it.
A lesson without an alert may compare alternatives the same way from a fixed step (e.g. label
smoothing switched off).

Not here: the engine's quality (`engine.py`), the page (`page.py`).
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gan_core.checkpoints import capture, restore
from gan_core.config import TrainConfig
from gan_core.engine import Engine
from gan_core.metrics import mode_coverage
from gan_core.records import column
from gan_core.telemetry import Telemetry

from classroom.alerts import WINDOW, detect, swing_count
from classroom.presets import PRESETS

SEEDS = (0, 1, 2, 3, 4)
STAT_STEPS = 200  # steps averaged for the D means and G's gradient norm at a budget
START_STEPS = 100  # G's gradient norm at the start of the run: median of its first steps
FEW_MODES = (1, 5)  # "a few modes": the mode-collapse lesson's band


@dataclass(frozen=True)
class Plan:
    """How one lesson is measured."""

    budgets: tuple[int, ...]  # steps at which its symptom is read
    eval_every: int = 100  # steps between evaluations (the page: every 0.25 s, ~250 steps at full speed)
    alerts: tuple[str, ...] = ()  # alert kinds that name the lesson's symptom (its fix is compared)
    fix_budgets: tuple[int, ...] = ()  # steps after the branch point at which the branches are read
    max_alert_step: int = 0  # wait at most this long for the alert
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)  # other changes to compare
    branch_step: int = 0  # a lesson without an alert: where its alternatives branch off


PLANS: dict[str, Plan] = {
    "healthy": Plan((500, 1000, 2000, 4000)),
    "whole_class": Plan((2000, 4000, 8000, 16000), eval_every=200),
    # The alternatives are the fixes that do not work here (the old "slow G down", and equal footing).
    "mode_collapse": Plan((500, 1000, 2000, 4000), alerts=("mode_collapse",), fix_budgets=(500, 1000, 2000),
                          max_alert_step=4000,
                          alternatives={"slow_g": {"g_lr": 5e-4}, "equal_footing": {"n_critic": 1, "d_lr": 1e-3}}),
    "strong_d": Plan((500, 1000, 2000, 4000), alerts=("d_overpowering", "vanishing_gradient"),
                     fix_budgets=(250, 500, 1000, 2000), max_alert_step=4000),
    "oscillation": Plan((500, 1000, 2000, 4000), alerts=("oscillation",), fix_budgets=(500, 1000, 2000),
                        max_alert_step=4000),
    "smoothing": Plan((500, 1000, 2000, 4000), branch_step=2000, fix_budgets=(500, 1000, 2000),
                      alternatives={"no_smoothing": {"label_smoothing": 0.0}}),
    "wgan_gp": Plan((250, 500, 1000, 2000), eval_every=50),
    # ~25 steps/s on one core here: 1,000 steps per seed is what this benchmark can afford.
    "dcgan_digits": Plan((250, 500, 1000), eval_every=250),
}


class Trial:
    """One run trained step by step, its telemetry published as the runner publishes it."""

    def __init__(self, config: TrainConfig, eval_every: int) -> None:
        self.engine = Engine(config)
        self.telemetry = Telemetry()
        self.telemetry.set_status("running", "", device=str(self.engine.device), config=config)
        self.eval_every = eval_every
        self.log: list[dict] = []  # per evaluation: step, alerts up, and (2-D) modes, HQ%, covered modes

    def train_to(self, step: int) -> None:
        engine, tel = self.engine, self.telemetry
        while engine.step_count < step:
            n = min(self.eval_every - engine.step_count % self.eval_every, step - engine.step_count)
            for _ in range(n):
                engine.step()
            stats = engine.drain_stats()
            tel.record_steps(np.arange(engine.step_count - n + 1, engine.step_count + 1),
                             np.zeros(n), stats, 0.0)
            frame = engine.evaluate()
            tel.record_frame(frame)
            entry: dict[str, Any] = dict(step=engine.step_count)
            if engine.data.is_image:
                scores = engine.digit_scores()
                tel.record_digit_scores(engine.step_count, scores.inception_score, scores.frechet_distance)
                entry["inception_score"] = scores.inception_score
            elif frame.modes_covered is not None:
                entry.update(modes=frame.modes_covered, hq=frame.hq_percent, covered=self._covered())
            entry["alerts"] = [a.kind for a in detect(tel.snapshot())]
            self.log.append(entry)

    def _covered(self) -> tuple[int, ...]:
        """Which modes the shown G covers (the evaluation's own score, per mode)."""
        engine = self.engine
        with torch.no_grad():
            samples = engine.shown_generator(engine.coverage_noise) * engine.data.scale
        counts = mode_coverage(samples, engine.data.modes, engine.data.sigma).counts
        return tuple(i for i, c in enumerate(counts) if c)

    def apply(self, changes: dict[str, Any]) -> None:
        """A live change, as the page's controls make it (recorded as an event)."""
        old = self.engine.config
        new = old.with_live(**changes)
        self.engine.apply(new)
        self.telemetry.record_change(self.engine.step_count, old, new)
        self.telemetry.set_status(config=new)

    def branch(self, changes: dict[str, Any]) -> "Trial":
        """A copy of this run from its current state (weights, Adam, RNG, telemetry), with `changes`."""
        twin = Trial.__new__(Trial)
        twin.engine = Engine(self.engine.config)
        restore(twin.engine, capture(self.engine))
        twin.telemetry = copy.deepcopy(self.telemetry)
        twin.eval_every, twin.log = self.eval_every, list(self.log)
        if changes:
            twin.apply(changes)
        return twin


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def measure(trial: Trial, since: int) -> dict:
    """The symptom metrics now, over the evaluations after step `since` and the last STAT_STEPS steps."""
    snap = trial.telemetry.snapshot()
    rows = snap.recent[snap.recent[:, 0] > snap.step - STAT_STEPS]
    d_on_real = snap.frame.d_real_values  # the "real" histogram of the latest evaluation
    start = snap.history[snap.history[:, 0] <= START_STEPS]
    g_start = float(np.median(column(start, "g_grad_norm"))) if len(start) else float("nan")
    evals = [e for e in trial.log if since < e["step"] <= snap.step]
    out: dict[str, Any] = dict(
        step=snap.step,
        d_real=_r(np.mean(column(rows, "d_real"))), d_fake=_r(np.mean(column(rows, "d_fake"))),
        d_real_p95=_r(np.percentile(d_on_real, 95)),
        g_grad_norm=_r(np.median(column(rows, "g_grad_norm")), 4),
        g_grad_norm_vs_start=_r(np.median(column(rows, "g_grad_norm")) / g_start),
        swings_last_500=swing_count(snap.recent[-WINDOW:], snap.config),
        alerts=evals[-1]["alerts"] if evals else [],
    )
    if evals and "modes" in evals[-1]:
        modes = np.array([e["modes"] for e in evals])
        out.update(
            modes=evals[-1]["modes"], hq_percent=_r(evals[-1]["hq"], 1), covered=list(evals[-1]["covered"]),
            window_modes_min_max=[int(modes.min()), int(modes.max())],
            window_hq_median=_r(np.median([e["hq"] for e in evals]), 1),
            window_share_few_modes=_r(np.mean((modes >= FEW_MODES[0]) & (modes <= FEW_MODES[1])), 2),
            window_covered_set_changes=sum(a["covered"] != b["covered"] for a, b in zip(evals, evals[1:])),
        )
    if evals and "inception_score" in evals[-1]:
        out["inception_score"] = _r(evals[-1]["inception_score"], 2)
    return out


def alert_summary(log: list[dict], after: int = 0) -> dict:
    """Per alert kind (evaluations after step `after`): the first step it was up, how many
    times it appeared (off → on: more than one is flapping) and its share of the evaluations."""
    log = [e for e in log if e["step"] > after]
    out = {}
    for kind in sorted({k for e in log for k in e["alerts"]}):
        up = [kind in e["alerts"] for e in log]
        out[kind] = dict(first_step=next(e["step"] for e, u in zip(log, up) if u),
                         appearances=sum(u and not prev for prev, u in zip([False, *up], up)),
                         share=_r(np.mean(up), 2))
    return out


def bench_lesson(name: str, seed: int) -> dict:
    """One lesson preset on one seed: its symptom at every budget, and its alerts."""
    plan = PLANS[name]
    trial = Trial(TrainConfig(**{**PRESETS[name].config.to_dict(), "seed": seed, "device": "cpu"}),
                  plan.eval_every)
    budgets, since = {}, 0
    for budget in plan.budgets:
        trial.train_to(budget)
        budgets[budget] = measure(trial, since)
        since = budget
    result = dict(budgets=budgets, alerts=alert_summary(trial.log))
    if any("covered" in e for e in trial.log):
        sets = [e["covered"] for e in trial.log if e["covered"]]
        result["distinct_covered_sets"] = len(set(sets))
    return result


def bench_branches(name: str, seed: int) -> dict:
    """Train lesson `name` until its alert fires (or to `Plan.branch_step` if it has none), then
    compare no change, the Apply-fix button's change and the plan's alternatives from that one
    checkpoint, at the same steps after it."""
    plan = PLANS[name]
    trial = Trial(TrainConfig(**{**PRESETS[name].config.to_dict(), "seed": seed, "device": "cpu"}),
                  plan.eval_every)
    button = None
    if plan.alerts:
        while button is None and trial.engine.step_count < plan.max_alert_step:
            trial.train_to(trial.engine.step_count + plan.eval_every)
            found = detect(trial.telemetry.snapshot())
            if any(a.kind in plan.alerts for a in found):
                button = next((a for a in found if a.fix), None)
        if button is None:
            return dict(alert_step=None)
    else:
        trial.train_to(plan.branch_step)
    at = trial.engine.step_count
    result: dict[str, Any] = dict(branch_step=at)
    if button:
        result.update(alert_step=at, button=button.kind, fix=button.fix, fix_label=button.fix_label)
    result["at_branch"] = measure(trial, at - 500)
    branches = {"no_change": {}, **({"with_fix": button.fix} if button else {}), **plan.alternatives}
    for label, changes in branches.items():
        twin, since, out = trial.branch(changes), at, {}
        for extra in plan.fix_budgets:
            twin.train_to(at + extra)
            out[extra] = measure(twin, since)
            since = at + extra
        out["alerts"] = alert_summary(twin.log, after=at)
        result[label] = out
    return result


def bench_presets(seeds: tuple[int, ...] = SEEDS, lessons: tuple[str, ...] = tuple(PLANS)) -> dict:
    """Every lesson on every seed (`bench_lesson`), and every fix or alternative (`bench_branches`)."""
    torch.set_num_threads(1)
    out = {}
    for name in lessons:
        plan = PLANS[name]
        out[name] = dict(watch=PRESETS[name].watch, budgets=list(plan.budgets), eval_every=plan.eval_every,
                         seeds={seed: bench_lesson(name, seed) for seed in seeds})
        if plan.alerts or plan.alternatives:
            out[name]["branches"] = {seed: bench_branches(name, seed) for seed in seeds}
        print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    return out
