"""Engine benchmarks: speed and quality targets, printed as JSON (never timed tests).

    python -m gan_core.bench speed              # 2-D steps/s: naive loop vs engine vs runner+telemetry
    python -m gan_core.bench quality            # ring-8 and grid-25 with their default presets
    python -m gan_core.bench digits --seeds 0,1,2   # classifier IS/FD every 30 s for 300 s, per seed
    python -m gan_core.bench cohort             # 30 runs as cohorts vs one solo run (bench_cohort.py)
    python -m gan_core.bench                    # speed + quality

The app's benchmarks (tick latency, load, lesson presets) live in `classroom.bench`:
this module never imports Gradio.

Every result records the device and torch thread count. Numbers on a shared
machine are noisy: run twice and compare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig, default_config
from .engine import Engine
from .metrics import mode_coverage
from .runner import Runner

BATCH = 256


def _env() -> dict:
    return dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                python=platform.python_version())


def naive_steps_per_s(config: TrainConfig, seconds: float) -> float:
    """The textbook loop (pytorch/examples dcgan style) on the same MLPs: nn.Sequential,
    BCE, two Adams, `.item()` logging every step."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def mlp(i, o):
        dims = [i] + [config.width] * config.depth
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        return nn.Sequential(*layers, nn.Linear(dims[-1], o)).to(device)

    G, D = mlp(config.z_dim, 2), mlp(2, 1)
    og = torch.optim.Adam(G.parameters(), config.g_lr, betas=(config.beta1, config.beta2))
    od = torch.optim.Adam(D.parameters(), config.d_lr, betas=(config.beta1, config.beta2))
    modes = torch.tensor([[np.cos(a), np.sin(a)] for a in np.arange(8) * np.pi / 4], dtype=torch.float32,
                         device=device)
    real = lambda: modes[torch.randint(8, (BATCH,), device=device)] + 0.01 * torch.randn(BATCH, 2, device=device)
    return _rate(_textbook_step(G, D, og, od, real, BATCH, config.z_dim), seconds)


def _textbook_step(G, D, og, od, sample_real, batch: int, z_dim: int):
    """One iteration of the pytorch/examples dcgan loop, logging with `.item()` every step."""
    device = next(G.parameters()).device
    log = []

    def step():
        real = sample_real()
        fake = G(torch.randn(batch, z_dim, device=device))
        od.zero_grad()
        out_r, out_f = D(real), D(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(out_r, torch.ones_like(out_r)) + \
            F.binary_cross_entropy_with_logits(out_f, torch.zeros_like(out_f))
        d_loss.backward()
        od.step()
        og.zero_grad()
        out = D(fake)
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        g_loss.backward()
        og.step()
        log.append((d_loss.item(), g_loss.item(), torch.sigmoid(out_r).mean().item(),
                    torch.sigmoid(out_f).mean().item()))

    return step


def _rate(step, seconds: float, warmup: int = 20, block: int = 50) -> float:
    for _ in range(warmup):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(block):
            step()
        n += block
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def _engine_stepper(engine: Engine):
    """One headless engine step, draining the statistics buffer as the runner would."""
    def step():
        engine.step()
        if engine.rows >= 256:
            engine.drain_stats()

    return step


def engine_steps_per_s(config: TrainConfig, seconds: float) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this thread)."""
    engine = Engine(config)
    c0, s0 = time.thread_time(), engine.step_count
    rate = _rate(_engine_stepper(engine), seconds)
    return rate, (engine.step_count - s0) / (time.thread_time() - c0)


def runner_steps_per_s(config: TrainConfig, seconds: float, read=None, reader_hz: float = 2.5) -> tuple[float, float]:
    """Steps/s of the full runner (chunks, drains, NaN checks, eval frames), optionally
    with a reader thread calling `read(snapshot)` `reader_hz` times a second (an open page:
    `classroom.bench` passes the page's figure drawing)."""
    runner = Runner(config)
    stop = threading.Event()

    def reader():
        while not stop.wait(1.0 / reader_hz):
            read(runner.snapshot())

    thread = threading.Thread(target=reader, daemon=True) if read is not None else None
    runner.start()
    time.sleep(1.0)  # warm-up
    if thread:
        thread.start()
    s0, t0, c0 = runner.engine.step_count, time.perf_counter(), runner.cpu_seconds
    time.sleep(seconds)
    steps = runner.engine.step_count - s0
    rate, cpu_rate = steps / (time.perf_counter() - t0), steps / (runner.cpu_seconds - c0)
    stop.set()
    runner.stop()
    return rate, cpu_rate


def naive_digits_steps_per_s(config: TrainConfig, seconds: float) -> float:
    """pytorch/examples dcgan's loop on our DCGAN modules: zero_grad, backward, step, `.item()`."""
    from .data import load_digits
    from .models import DCGANDiscriminator, DCGANGenerator

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_digits(device).images
    G, D = DCGANGenerator(config.z_dim, config.width).to(device), DCGANDiscriminator(config.width).to(device)
    og = torch.optim.Adam(G.parameters(), config.g_lr, betas=(config.beta1, config.beta2))
    od = torch.optim.Adam(D.parameters(), config.d_lr, betas=(config.beta1, config.beta2))
    B = config.batch_size
    real = lambda: data[torch.randint(len(data), (B,), device=device)]
    return _rate(_textbook_step(G, D, og, od, real, B, config.z_dim), seconds, warmup=3, block=5)


def bench_speed(seconds: float) -> dict:
    config = default_config("ring8")
    # Interleaved rounds, medians: on a shared machine the rate drifts by ±10 % over a minute,
    # more than the differences being measured.
    rounds = [(naive_steps_per_s(config, seconds), *engine_steps_per_s(config, seconds),
               *runner_steps_per_s(config, seconds)) for _ in range(5)]
    naive, engine, engine_cpu, runner, runner_cpu = (float(np.median(c)) for c in zip(*rounds))
    # The VM's CPU speed drifts between rounds: compare within a round, then take the median.
    ratio = lambda i, j: round(100 * float(np.median([r[i] / r[j] for r in rounds])), 1)
    return dict(
        rounds=[[round(x) for x in r] for r in rounds],
        rounds_columns="naive, engine, engine per CPU-s, runner, runner per CPU-s",
        model=f"MLP {config.depth}x{config.width}, z={config.z_dim}, batch {config.batch_size}",
        naive_loop_steps_per_s=round(naive, 1),
        engine_headless_steps_per_s=round(engine, 1),
        runner_with_telemetry_steps_per_s=round(runner, 1),
        speedup_vs_naive=round(engine / naive, 2),
        telemetry_keeps_percent=ratio(3, 1),  # median over rounds of runner / headless
        # Steps per CPU-second of the training thread: the same work measured without the
        # time the thread waited for a CPU.
        telemetry_keeps_percent_cpu=ratio(4, 2),
        digits=bench_digits_speed(seconds),
    )


def bench_digits_speed(seconds: float) -> dict:
    config = default_config("digits")
    naive = naive_digits_steps_per_s(config, seconds)
    fast = _rate(_engine_stepper(Engine(config)), seconds, warmup=3, block=5)
    return dict(model=f"DCGAN-28 width {config.width}, z={config.z_dim}, batch {config.batch_size}",
                naive_loop_steps_per_s=round(naive, 1), engine_steps_per_s=round(fast, 1),
                speedup_vs_naive=round(fast / naive, 2))


def time_to_quality(config: TrainConfig, budget_s: float, target_modes: int, target_hq: float,
                    check_every: int = 1000) -> dict:
    """Train headless; every `check_every` steps score 2,500 samples (from G's EMA when
    the config has one, else G; raw G is reported too). Reports the first time the
    target is met, whether it held at every later check, and the final score.
    Training time excludes the scoring."""
    engine = Engine(config)
    step = _engine_stepper(engine)
    train_s = 0.0
    first, held, trajectory = None, True, []
    use_ema = engine.G_ema is not None
    while train_s < budget_s:
        t0 = time.perf_counter()
        for _ in range(check_every):
            step()
        train_s += time.perf_counter() - t0
        seed = engine.step_count
        cov = mode_coverage(engine.sample(2500, seed=seed, ema=use_ema), engine.data.modes, engine.data.sigma)
        raw = mode_coverage(engine.sample(2500, seed=seed), engine.data.modes, engine.data.sigma) if use_ema else cov
        trajectory.append((engine.step_count, round(train_s, 1), cov.modes_covered, round(cov.hq_percent, 1),
                           raw.modes_covered, round(raw.hq_percent, 1)))
        met = cov.modes_covered >= target_modes and cov.hq_percent >= target_hq
        if first is None and met:
            first = dict(seconds=round(train_s, 1), steps=engine.step_count)
        elif first is not None and not met:
            held = False
    final = trajectory[-1]
    return dict(config=config.to_dict(), target=f"{target_modes} modes, {target_hq}% HQ",
                scored="G EMA" if use_ema else "G",
                first_reached=first, held_after_reaching=held if first else None,
                final=dict(steps=final[0], train_seconds=final[1], modes=final[2], hq_percent=final[3],
                           raw_g_modes=final[4], raw_g_hq_percent=final[5]),
                trajectory=trajectory[:: max(1, len(trajectory) // 12)],
                columns="steps, train_s, modes, hq%, raw G modes, raw G hq%")


def bench_quality(seconds: float, seeds: tuple[int, ...] = (0,)) -> dict:
    return dict(
        ring8=[time_to_quality(default_config("ring8", seed=s), seconds, 8, 95.0) for s in seeds],
        grid25=[time_to_quality(default_config("grid25", seed=s), seconds * 2, 24, 90.0) for s in seeds],
    )


def bench_digits(seconds: float, seed: int = 0) -> dict:
    """Train the default digits preset for `seconds` of training time; every 30 s score
    1,000 samples (G's EMA when configured) with the bundled classifier. Scoring time
    is excluded from the training time."""
    from .classifier import DigitScorer

    config = default_config("digits", seed=seed)
    engine = Engine(config)
    step = _engine_stepper(engine)
    scorer = DigitScorer.bundled(engine.device)
    train_s, next_check, checks = 0.0, 30.0, []
    first = {7: None, 8: None}
    while train_s < seconds:
        t0 = time.perf_counter()
        for _ in range(5):
            step()
        train_s += time.perf_counter() - t0
        if train_s >= next_check or train_s >= seconds:
            score = scorer.score(engine.sample(1000, seed=1, ema=True))
            checks.append(dict(train_seconds=round(train_s, 1), steps=engine.step_count,
                               inception_score=round(score.inception_score, 2),
                               frechet_distance=round(score.frechet_distance, 1)))
            for target in first:
                if first[target] is None and score.inception_score >= target:
                    first[target] = checks[-1]
            next_check += 30.0
    return dict(config=config.to_dict(), steps_per_s=round(engine.step_count / train_s, 1),
                checks=checks, first_is_7=first[7], first_is_8=first[8])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan_core.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="*", default=["speed", "quality"],
                   choices=["speed", "quality", "digits", "cohort", "all"])
    p.add_argument("--seconds", type=float, default=None, help="time budget per measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", default="0", help="comma-separated seeds for `quality` and `digits` (e.g. 0,1,2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    what = ["speed", "quality", "digits"] if "all" in args.what else args.what
    result: dict = dict(env=_env())
    for name in what:
        if name == "speed":
            result["speed"] = bench_speed(args.seconds or 5.0)
        elif name == "quality":
            seeds = tuple(int(x) for x in args.seeds.split(","))
            result["quality"] = bench_quality(args.seconds or 60.0, seeds)
        elif name == "cohort":
            from .bench_cohort import bench_cohort

            result["cohort"] = bench_cohort(args.seconds or 3.0)
        elif name == "digits":
            runs = [bench_digits(args.seconds or 300.0, int(x)) for x in args.seeds.split(",")]
            result["digits"] = runs[0] if len(runs) == 1 else runs
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
