"""Cohort benchmarks: per-run speed of many 2-D runs trained as cohorts vs one solo run.

    python -m benchmarks cohort [--seconds 3]
    python -m benchmarks cohort_setting      # which ring-8 batch / lr a full class should use
    python -m benchmarks ring8_solo          # that classroom setting vs the default, solo

Prints JSON (and `docs/benchmarks/cohort.json` is a saved copy):
- `batch64`, `batch128`, `batch256`: interleaved rounds (each round measures
  every batch size in turn) of a solo `Engine` (the fast path a lone run uses),
  of `runs` runs as two cohorts in two processes (one core each, as the app's
  trainer processes) and of one cohort of `runs` / 2 on one core; every row
  holds the round's solo rate beside the per-run rates, and their ratios
  (per-run ÷ solo) are taken within the round, because a shared machine drifts
  between rounds. Each figure comes per second and per CPU-second of the
  training thread: another job on the machine takes a core from the two
  processes first, which the second leaves out (the row's load average says
  how busy the machine was);
- `implementations`: one cohort step by hand (`cohort.Cohort`: baddbmm + hand
  backprop) vs `torch.func` (`stack_module_state` + `vmap` + `grad` +
  `functional_call`, PyTorch's model-ensembling recipe) at 1 / 15 / 30 runs,
  one thread, steps/s per run, beside a solo run's;
- `beside_python`: one cohort alone and with a busy pure-Python thread beside it
  (threads share Python's interpreter lock, processes do not).
Targets (issue 12): per-run speed with 30 runs ≥ 0.40× a solo run's, at batch 64.
Not here: the app (`benchmarks.page`), quality (`bench.py quality`).
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch

from gan_core import torch_ops
from gan_core.serve.cohort import Cohort, cohort_key
from gan_core.config import CLASSROOM_SETTING, TrainConfig, default_config
from gan_core.engine import Engine
from gan_core.losses import get_loss
from gan_core.models import MLP, PackedDiscriminator


def _drain(engines) -> None:
    if engines and engines[0].rows >= 256:
        for e in engines:
            e.drain_stats()


class Rates(NamedTuple):
    """Steps/s of each run, and per CPU-second of the thread that trained it: the second leaves out
    the time other jobs on a shared machine took that thread's core away."""

    per_s: list[float]
    per_cpu_s: list[float]


def solo_rate(config: TrainConfig, seconds: float) -> Rates:
    engine = Engine(config)
    for _ in range(20):
        engine.step()
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            engine.step()
        _drain([engine])
        n += 20
    return Rates([n / (time.perf_counter() - t0)], [n / (time.thread_time() - c0)])


def _class(config: TrainConfig, n_runs: int) -> list[Engine]:
    return [Engine(replace(config, seed=i)) for i in range(n_runs)]


def cohort_rates(config: TrainConfig, n_runs: int, n_threads: int, seconds: float, others=None) -> Rates:
    """Steps/s of every run when `n_runs` runs train as `n_threads` cohorts, one thread each
    (`others`: a barrier shared with other processes, waited at before measuring)."""
    engines = _class(config, n_runs)
    cohorts = [Cohort(cohort_key(config, "cpu")) for _ in range(n_threads)]
    for i, e in enumerate(engines):
        cohorts[i % n_threads].join(e)
    start, stop = threading.Barrier(n_threads + 1), threading.Event()
    per_cpu_s = {}

    def train(cohort):
        cohort.step()
        start.wait()
        n, c0 = 0, time.thread_time()
        while not stop.is_set():
            cohort.step()
            _drain(cohort.members)
            n += 1
        per_cpu_s.update({id(e): n / (time.thread_time() - c0) for e in cohort.members})

    threads = [threading.Thread(target=train, args=(c,), name="gan-bench", daemon=True) for c in cohorts]
    for t in threads:
        t.start()
    start.wait()
    if others is not None:
        others.wait()
    s0, t0 = [e.step_count for e in engines], time.perf_counter()
    time.sleep(seconds)
    s1, t1 = [e.step_count for e in engines], time.perf_counter()
    stop.set()
    for t in threads:
        t.join()
    return Rates([(b - a) / (t1 - t0) for a, b in zip(s0, s1)], [per_cpu_s[id(e)] for e in engines])


def cohort_rate_beside_python(config: TrainConfig, n_runs: int, seconds: float) -> tuple[float, float]:
    """Steps/s of a cohort of `n_runs` alone, then with one pure-Python thread beside it (as a web
    server's event loop is): every torch op lets go of the interpreter lock and must take it back."""
    import json

    blob = {"rows": [list(range(50)) for _ in range(200)]}
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            json.dumps(blob)

    alone = float(np.mean(cohort_rates(config, n_runs, 1, seconds).per_s))
    thread = threading.Thread(target=busy, name="gan-bench-busy", daemon=True)
    thread.start()
    try:
        beside = float(np.mean(cohort_rates(config, n_runs, 1, seconds).per_s))
    finally:
        stop.set()
        thread.join()
    return alone, beside


def _process_cohort(config: TrainConfig, n_runs: int, seconds: float, start, out) -> None:
    torch.set_num_threads(1)
    out.put(cohort_rates(config, n_runs, 1, seconds, others=start))


def cohort_rates_processes(config: TrainConfig, n_runs: int, n_procs: int, seconds: float) -> Rates:
    """Steps/s of every run when `n_runs` runs train as `n_procs` cohorts, one process each
    (each with its own interpreter lock, unlike threads)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(n_procs), ctx.Queue()
    share = [n_runs // n_procs + (i < n_runs % n_procs) for i in range(n_procs)]
    procs = [ctx.Process(target=_process_cohort, args=(config, n, seconds, start, out), daemon=True) for n in share]
    for p in procs:
        p.start()
    rates = [out.get(timeout=120 + seconds) for _ in procs]
    for p in procs:
        p.join()
    return Rates([r for rs in rates for r in rs.per_s], [r for rs in rates for r in rs.per_cpu_s])


def vmap_rate(config: TrainConfig, n_runs: int, seconds: float) -> float:
    """Steps/s per run of the same step written with torch.func (autograd, not by hand)."""
    from torch.func import functional_call, grad, stack_module_state, vmap

    gens = [torch.Generator().manual_seed(i) for i in range(n_runs)]
    Gs = [MLP(config.z_dim, 2, config.width, config.depth, g, leak=0.0) for g in gens]
    Ds = [PackedDiscriminator(config.width, config.depth, config.pack, generator=g) for g in gens]
    g_params, _ = stack_module_state(Gs)
    d_params, _ = stack_module_state(Ds)
    g_base, d_base = copy.deepcopy(Gs[0]).to("meta"), copy.deepcopy(Ds[0]).to("meta")
    loss = get_loss(config.loss)
    data = Engine(config).data
    B = config.batch_size

    def d_loss(dp, gp, real, z):
        fake = functional_call(g_base, gp, (z,))
        return loss.d_loss(functional_call(d_base, dp, (real,)), functional_call(d_base, dp, (fake,)))

    def g_loss(gp, dp, z):
        return loss.g_loss(functional_call(d_base, dp, (functional_call(g_base, gp, (z,)),)))

    d_grad, g_grad = vmap(grad(d_loss)), vmap(grad(g_loss))
    states = {}
    real, z = torch.empty(n_runs, B, 2), torch.empty(n_runs, B, config.z_dim)

    def adam(params: dict, grads: dict, lr: float) -> None:
        ps = list(params.values())
        st = states.setdefault(id(params), ([torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps],
                                            [torch.zeros(()) for _ in ps]))
        torch_ops.fused_adam(ps, list(grads.values()), st[0], st[1], st[2], lr=lr, beta1=config.beta1,
                             beta2=config.beta2, eps=1e-8, weight_decay=0.0)

    def step():
        with torch.no_grad():
            for i, g in enumerate(gens):
                data.sample(B, g, out=real[i])
                z[i].normal_(generator=g)
        adam(d_params, d_grad(d_params, g_params, real, z), config.d_lr)
        with torch.no_grad():
            for g, zi in zip(gens, z):
                zi.normal_(generator=g)
        adam(g_params, g_grad(g_params, d_params, z), config.g_lr)

    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - t0)


def hand_rate(config: TrainConfig, n_runs: int, seconds: float) -> float:
    return float(np.mean(cohort_rates(config, n_runs, 1, seconds).per_s))


def cohort_round(config: TrainConfig, n_runs: int, seconds: float) -> dict:
    """One round at `config`: a solo run, then `n_runs` runs in two cohorts in two processes, then
    half of them in one cohort on one core; steps/s per run, and each ÷ the round's solo rate."""
    load = os.getloadavg()[0]  # other work on a shared machine takes a core from the two processes first
    solo = solo_rate(config, seconds)
    two = cohort_rates_processes(config, n_runs, 2, seconds)
    one = cohort_rates(config, n_runs // 2, 1, seconds)
    row = dict(load_average_1min=round(load, 1))
    for per in ("per_s", "per_cpu_s"):
        base = getattr(solo, per)[0]
        row[f"solo_{per}"] = round(base, 1)
        row[f"two_processes_mean_{per}"] = round(float(np.mean(getattr(two, per))), 1)
        row[f"two_processes_min_{per}"] = round(min(getattr(two, per)), 1)
        row[f"one_cohort_mean_{per}"] = round(float(np.mean(getattr(one, per))), 1)
        row[f"two_processes_ratio_{per}"] = round(float(np.mean(getattr(two, per))) / base, 3)
        row[f"one_cohort_ratio_{per}"] = round(float(np.mean(getattr(one, per))) / base, 3)
    return row


def bench_cohort(seconds: float = 3.0, n_runs: int = 30, rounds: int = 3,
                 batch_sizes: tuple[int, ...] = (64, 128, 256), base: TrainConfig | None = None,
                 implementations: bool = True) -> dict:
    base = base or default_config("ring8", device="cpu")
    tables: dict[int, list] = {B: [] for B in batch_sizes}
    for _ in range(rounds):
        for B in batch_sizes:
            tables[B].append(cohort_round(replace(base, batch_size=B), n_runs, seconds))
    result: dict = {}
    for B, table in tables.items():
        median = lambda key: float(np.median([r[key] for r in table]))
        result[f"batch{B}"] = dict(
            config=f"{base.dataset} MLP {base.depth}x{base.width}, batch {B}, pack {base.pack}; solo: one run; "
                   f"two processes: {n_runs} runs as 2 cohorts of {n_runs // 2}, one process (one core) each; "
                   f"one cohort: {n_runs // 2} runs on one core",
            columns="steps per second (per_s) and per CPU-second of the training thread (per_cpu_s): solo run, "
                    "per run in two processes (mean, slowest), per run in one cohort; ratios: per run / the "
                    "round's solo",
            rounds=table,
            median_solo_per_s=median("solo_per_s"),
            median_ratio_two_processes_per_s=median("two_processes_ratio_per_s"),
            median_ratio_one_cohort_per_s=median("one_cohort_ratio_per_s"),
            median_ratio_two_processes_per_cpu_s=median("two_processes_ratio_per_cpu_s"),
            median_ratio_one_cohort_per_cpu_s=median("one_cohort_ratio_per_cpu_s"),
            target=f"per-run speed with {n_runs} runs >= 0.40 x solo (batch 64)")
    if implementations:
        small = replace(base, batch_size=64)
        result["implementations"] = dict(
            config=f"{small.dataset} MLP {small.depth}x{small.width}, batch 64, pack {small.pack}, one thread",
            columns="runs, hand (Cohort) steps/s per run, torch.func vmap steps/s per run, solo run steps/s",
            rows=[(r, round(hand_rate(small, r, seconds), 1), round(vmap_rate(small, r, seconds), 1),
                   round(solo_rate(small, seconds).per_s[0], 1)) for r in (1, 15, 30)])
        alone, beside = cohort_rate_beside_python(small, n_runs // 2, seconds)
        result["beside_python"] = dict(
            config=f"{small.dataset} MLP {small.depth}x{small.width}, batch 64, {n_runs // 2} runs in one cohort, "
                   "one thread",
            alone_steps_per_s=round(alone, 1), beside_a_busy_python_thread_steps_per_s=round(beside, 1),
            solo_steps_per_s=round(solo_rate(small, seconds).per_s[0], 1))
    return result


# (batch, lr, lr decay steps): the page's default, the whole-class lesson before (batch 128) and
# batch-64 candidates (a class's run trains 0.43x a solo run at batch 64, 0.31x at 128: `bench_cohort`).
SETTINGS = ((256, 1e-3, 50_000), (128, 2e-3, 20_000), (64, 1.5e-3, 30_000), (64, 2e-3, 20_000), (64, 2.5e-3, 25_000),
            (64, 3e-3, 20_000))


def bench_classroom_setting(max_steps: int = 30_000, seeds: int = 31, check_every: int = 200) -> dict:
    """Steps until G as the page shows it (its EMA: what the status line scores) first shows 8/8
    modes and >= 90 % HQ, for candidate ring-8 (batch, lr, lr decay steps) settings; each setting's
    seeds train as one cohort. A class of 30 (seeds 0-29) is done, for the class benchmark, when its
    28th student is, and T1 is the median of seeds 0-4 alone: `s28_over_t1_seeds` (and, less
    dependent on which five seeds those are, `s28_over_median`) is the multiple of a lone run's
    steps the 28th needs. Divide a run's speed in a class (as a share of a solo run's, at that
    batch) by it: the larger, the sooner the class is done in multiples of T1."""
    from gan_core.metrics import mode_coverage

    result = {}
    for batch, lr, decay in SETTINGS:
        configs = [default_config("ring8", batch_size=batch, g_lr=lr, d_lr=lr, lr_decay_steps=decay, seed=s,
                                  device="cpu") for s in range(seeds)]
        engines = [Engine(c) for c in configs]
        cohort = Cohort(cohort_key(configs[0], "cpu"))
        for e in engines:
            cohort.join(e)
        first: list = [None] * seeds
        last: list = [None] * seeds
        while engines[0].step_count < max_steps and None in first:
            for _ in range(check_every):
                cohort.step()
            for i, e in enumerate(engines):
                e.drain_stats()
                cohort.export(e)
                with torch.no_grad():
                    cov = mode_coverage(e.shown_generator(e.coverage_noise) * e.data.scale, e.data.modes,
                                        e.data.sigma)
                if first[i] is None and cov.modes_covered == 8 and cov.hq_percent >= 90:
                    first[i] = e.step_count
                last[i] = (cov.modes_covered, round(cov.hq_percent, 1))
        reached = sorted(f for f in first if f is not None)
        result[f"batch {batch}, lr {lr:g}, decay {decay}"] = dict(
            first_step_8_of_8_and_90_hq=first, last_check=last, seeds_reached=len(reached),
            steps_min_median_max=[reached[0], reached[len(reached) // 2], reached[-1]] if reached else None,
            **_class_spread(first))
    return dict(max_steps=max_steps, seeds=seeds, settings=result)


def _class_spread(first: list) -> dict:
    """The 28th of seeds 0-29 against the median of seeds 0-4 and of all 30 (None: never got there)."""
    steps = [float("inf") if f is None else f for f in first[:30]]
    if len(steps) < 30:
        return {}
    s28 = sorted(steps)[27]
    t1, median = float(np.median(steps[:5])), float(np.median(steps))
    return dict(s28_of_30=s28 if s28 < float("inf") else None,
                s28_over_t1_seeds=round(s28 / t1, 2) if max(s28, t1) < float("inf") else None,
                s28_over_median=round(s28 / median, 2) if s28 < float("inf") else None)


def bench_ring8_solo(seconds: float = 60.0, seeds: tuple[int, ...] = (0, 1, 2)) -> dict:
    """Solo time to 8/8 modes and >= 95 % HQ (EMA G) of the classroom setting (`CLASSROOM_SETTING`)
    and of the default, interleaved by seed: which should a lone run use?"""
    from .engine import time_to_quality

    runs = []
    for seed in seeds:
        settings = (("classroom_setting", default_config("ring8", seed=seed, **CLASSROOM_SETTING)),
                    ("default", default_config("ring8", seed=seed)))
        for name, config in settings:
            result = time_to_quality(config, seconds, 8, 95.0)
            runs.append(dict(setting=name, seed=seed, **{k: v for k, v in result.items() if k != "config"}))
    return dict(target="8/8 modes and >= 95% HQ (EMA G, 2,500 samples)", runs=runs)
