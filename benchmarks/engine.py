"""Engine benchmarks: speed and quality targets, printed as JSON (never timed tests).

    python -m benchmarks speed              # 2-D steps/s: textbook loop, engine (autograd), engine
                                                # (hand-written backward), runner + telemetry
    python -m benchmarks quality            # ring-8 and grid-25 with their default presets
    python -m benchmarks digits --seeds 0,1,2   # classifier IS/FD every 30 s for 300 s, per seed
    python -m benchmarks cohort             # 30 runs as cohorts vs one solo run (benchmarks/cohort.py)
    python -m benchmarks                    # speed + quality

The app's benchmarks (tick latency, load, lesson presets) live in `benchmarks.page`:
this module never imports Gradio.

Every result records the device and torch thread count. Numbers on a shared
machine are noisy: run twice and compare.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from gan_core.config import TrainConfig, default_config
from gan_core.data import make_dataset
from gan_core.engine import Engine, resolve_device
from gan_core.metrics import mode_coverage
from gan_core.models import MLP, DCGANDiscriminator, DCGANGenerator, PackedDiscriminator
from gan_core.serve.runner import Runner


def _nets_like_the_engine(config: TrainConfig, device: torch.device):
    """G and D exactly as `Engine` builds them for `config` (same classes, same initial weights)."""
    init_rng = torch.Generator().manual_seed(config.seed)
    if config.is_image:
        G = DCGANGenerator(config.z_dim, config.width, init_rng)
        D = DCGANDiscriminator(config.width, config.d_batchnorm, init_rng)
    else:
        G = MLP(config.z_dim, 2, config.width, config.depth, init_rng, leak=0.0)
        D = PackedDiscriminator(config.width, config.depth, config.pack, generator=init_rng)
    return G.to(device), D.to(device)


def textbook_stepper(config: TrainConfig):
    """The pytorch/examples dcgan loop on the engine's networks, data and batch.

    Per step: D on a real batch and a fake batch (`fake.detach()`), BCE, `backward()`,
    `optimizer.step()`; then G on D(fake) of the *same* fakes (pytorch/examples reuses them;
    the engine draws fresh noise for G); `torch.optim.Adam` with its default implementation
    (a per-parameter loop on the CPU, foreach on CUDA; the engine calls the fused kernel);
    `.item()` on four logged values every step. The same EMA of G (an in-place
    lerp per parameter) and linear lr decay (`LambdaLR`) as the engine's config, so all
    three rates do the same work.
    """
    device = resolve_device(config.device)
    data = make_dataset(config.dataset, device)
    G, D = _nets_like_the_engine(config, device)
    G_ema = copy.deepcopy(G).requires_grad_(False) if config.ema_decay > 0 else None
    og = torch.optim.Adam(G.parameters(), config.g_lr, betas=(config.beta1, config.beta2))
    od = torch.optim.Adam(D.parameters(), config.d_lr, betas=(config.beta1, config.beta2))
    decay = lambda t: 1.0 - (1.0 - config.lr_decay_final) * min(1.0, t / config.lr_decay_steps) \
        if config.lr_decay_steps else 1.0
    schedulers = [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in (og, od)]
    rng = torch.Generator(device).manual_seed(config.seed)
    B, log, t = config.batch_size, [], [0]

    def step():
        real = data.sample(B, rng)
        fake = G(torch.randn(B, config.z_dim, device=device, generator=rng))
        od.zero_grad()
        d_real, d_fake = D(real), D(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        d_loss.backward()
        od.step()
        og.zero_grad()
        d_fake_g = D(fake)
        g_loss = F.binary_cross_entropy_with_logits(d_fake_g, torch.ones_like(d_fake_g))
        g_loss.backward()
        og.step()
        t[0] += 1
        if G_ema is not None:
            with torch.no_grad():
                for pe, p in zip(G_ema.parameters(), G.parameters()):
                    pe.lerp_(p, 1.0 - min(config.ema_decay, (1 + t[0]) / (10 + t[0])))
        for sched in schedulers:
            sched.step()
        log.append((d_loss.item(), g_loss.item(), torch.sigmoid(d_real).mean().item(),
                    torch.sigmoid(d_fake).mean().item()))
        if len(log) > 1000:
            log.clear()

    return step


def _rate(step, seconds: float, warmup: int = 20, block: int = 50) -> tuple[float, float]:
    """(steps per wall-clock second, steps per CPU second of this thread) over `seconds`."""
    for _ in range(warmup):
        step()
    n, t0, c0 = 0, time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < seconds:
        for _ in range(block):
            step()
        n += block
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), n / max(time.thread_time() - c0, 1e-9)


def _engine_stepper(engine: Engine):
    """One headless engine step, draining the statistics buffer as the runner would."""
    def step():
        engine.step()
        if engine.rows >= 256:
            engine.drain_stats()

    return step


def engine_stepper(config: TrainConfig, hand_backward: bool):
    """The engine's step on `config`, with its hand-written 2-D backward or its autograd path."""
    engine = Engine(config)
    engine._use_fast = hand_backward and engine._use_fast
    if hand_backward and not engine._use_fast:
        raise ValueError(f"{config.dataset} / {config.loss} has no hand-written step")
    return _engine_stepper(engine)


def runner_steps_per_s(config: TrainConfig, seconds: float, read=None, reader_hz: float = 2.5) -> tuple[float, float]:
    """Steps/s of the full runner (chunks, drains, NaN checks, eval frames), optionally
    with a reader thread calling `read(snapshot)` `reader_hz` times a second (an open page:
    `benchmarks.page` passes the page's figure drawing)."""
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


SPEED_COLUMNS = ("textbook", "engine_autograd", "engine_hand_backward", "runner_with_telemetry")
FAST_PATH_MIN_SPEEDUP = 1.3  # keep the hand-written backward only if it beats autograd by this much


def bench_speed(seconds: float, rounds: int = 5, with_runner: bool = True) -> dict:
    """Textbook loop vs the engine's autograd step vs its hand-written step (vs the full
    runner) on the default ring-8 config, in interleaved rounds. Ratios are taken within
    a round (the shared VM's speed drifts by ±10 % over a minute), then the median."""
    config = default_config("ring8")
    make = dict(textbook=lambda: textbook_stepper(config),
                engine_autograd=lambda: engine_stepper(config, hand_backward=False),
                engine_hand_backward=lambda: engine_stepper(config, hand_backward=True))
    wall, cpu = [], []
    for _ in range(rounds):
        results = [_rate(build(), seconds) for build in make.values()]
        if with_runner:
            results.append(runner_steps_per_s(config, seconds))
        wall.append([r[0] for r in results])
        cpu.append([r[1] for r in results])
    names = SPEED_COLUMNS[: len(wall[0])]
    median = lambda table, i: round(float(np.median([r[i] for r in table])), 1)
    ratio = lambda table, i, j: round(float(np.median([r[i] / r[j] for r in table])), 2)
    fast_vs_autograd = ratio(cpu, 2, 1)
    result = dict(
        model=(f"ring8 default: G = MLP ReLU {config.depth}x{config.width} (z={config.z_dim}), D = PacGAN{config.pack} "
               f"MLP LeakyReLU {config.depth}x{config.width}, batch {config.batch_size}, EMA {config.ema_decay}, "
               f"lr decay over {config.lr_decay_steps} steps, all three"),
        textbook="pytorch/examples dcgan loop: zero_grad/backward/step, torch.optim.Adam default "
                 "(per-parameter loop on CPU), G step reuses the D step's fakes, .item() x4 per step",
        columns=list(names),
        rounds_steps_per_s=[[round(x) for x in r] for r in wall],
        rounds_steps_per_cpu_s=[[round(x) for x in r] for r in cpu],
        steps_per_s={n: median(wall, i) for i, n in enumerate(names)},
        steps_per_cpu_s={n: median(cpu, i) for i, n in enumerate(names)},
        # Per CPU-second of the timed thread: the same work, less the time it waited for a CPU.
        ratios_per_cpu_s=dict(autograd_vs_textbook=ratio(cpu, 1, 0), hand_vs_autograd=fast_vs_autograd,
                              hand_vs_textbook=ratio(cpu, 2, 0)),
        ratios_per_wall_s=dict(autograd_vs_textbook=ratio(wall, 1, 0), hand_vs_autograd=ratio(wall, 2, 1),
                               hand_vs_textbook=ratio(wall, 2, 0)),
        hand_backward_decision=("keep" if fast_vs_autograd >= FAST_PATH_MIN_SPEEDUP else "delete")
        + f": hand-written / autograd = {fast_vs_autograd}x (threshold {FAST_PATH_MIN_SPEEDUP}x)",
    )
    if with_runner:
        result["telemetry_keeps_percent_cpu"] = round(100 * ratio(cpu, 3, 2), 1)
        result["digits"] = bench_digits_speed(seconds)
    return result


def bench_digits_speed(seconds: float) -> dict:
    """The textbook loop vs the engine on the default digits config (both autograd), and the
    engine without its lazy R1 penalty, which the textbook loop does not pay for."""
    config = default_config("digits")
    rate = lambda step: _rate(step, seconds, warmup=3, block=5)[1]
    textbook = rate(textbook_stepper(config))
    engine = rate(_engine_stepper(Engine(config)))
    no_r1 = rate(_engine_stepper(Engine(replace(config, r1_gamma=0.0))))
    return dict(model=f"DCGAN-28 width {config.width}, z={config.z_dim}, batch {config.batch_size}, "
                      f"EMA and lr decay in both; R1 γ={config.r1_gamma} every 4 steps in the engine only",
                steps_per_cpu_s=dict(textbook=round(textbook, 1), engine=round(engine, 1),
                                     engine_without_r1=round(no_r1, 1)),
                engine_vs_textbook=round(engine / textbook, 2),
                engine_without_r1_vs_textbook=round(no_r1 / textbook, 2))


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
    from gan_core.classifier import DigitScorer

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


