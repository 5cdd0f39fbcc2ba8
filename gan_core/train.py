"""Headless training from the command line (no UI).

    python -m gan_core.train --data ring8 --steps 5000
    python -m gan_core.train --data grid25 --seconds 60 --loss hinge --g-lr 5e-4

Prints progress (step, steps/s, losses, D outputs) as it goes, and mode coverage with a
JSON summary at the end. A plain loop over the app's `Engine` (no threads): a run trained
here takes the same steps as the same run in the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import ConfigError, TrainConfig, default_config
from .data import DATASET_NAMES, DOWNLOADABLE, DataError
from .engine import Engine
from .losses import LOSSES
from .records import STAT_FIELDS

CHUNK_STEPS = 50  # steps between two reads of the statistics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gan_core.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="ring8", choices=[*DATASET_NAMES, "csv", *DOWNLOADABLE])
    p.add_argument("--csv", help="CSV file of 2-D points (with --data csv)")
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--seconds", type=float, default=None, help="stop after this much training time")
    p.add_argument("--loss", choices=list(LOSSES))
    for name in ("g-lr", "d-lr", "beta1", "beta2", "label-smoothing", "gp-weight", "r1-gamma"):
        p.add_argument(f"--{name}", type=float)
    for name in ("n-critic", "batch-size", "z-dim", "width", "depth", "pack", "seed"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--two-sided", action="store_true", help="two-sided label smoothing")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--every", type=float, default=2.0, help="seconds between progress lines")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k in TrainConfig.__dataclass_fields__ and k not in ("dataset",)}
    if args.two_sided:
        overrides["two_sided_smoothing"] = True
    return default_config(args.data, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    if args.steps is None and args.seconds is None:
        args.steps = 5000
    try:
        config = config_from_args(args)
        csv_bytes = Path(args.csv).read_bytes() if args.csv else None
        engine = Engine(config, csv_bytes)
    except (ConfigError, DataError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"training {config.dataset} on {engine.device}: {config}", flush=True)
    t0 = last_print = time.perf_counter()
    recent = np.zeros((0, len(STAT_FIELDS)))
    state, message = "finished", ""
    try:
        while args.steps is None or engine.step_count < args.steps:
            for _ in range(CHUNK_STEPS if args.steps is None else min(CHUNK_STEPS, args.steps - engine.step_count)):
                engine.step()
            stats = engine.drain_stats()  # one host sync per chunk
            recent = np.concatenate([recent, stats])[-50:]
            elapsed = time.perf_counter() - t0
            if not np.isfinite(stats).all() or not engine.parameters_finite():
                state, message = "diverged", f"a loss or weight became NaN/Inf at step {engine.step_count}"
                break
            if args.seconds is not None and elapsed >= args.seconds:
                break
            if time.perf_counter() - last_print >= args.every:
                print(_progress(engine, recent, elapsed), flush=True)
                last_print = time.perf_counter()
    except KeyboardInterrupt:
        state, message = "interrupted", "stopped by Ctrl-C"
    elapsed = time.perf_counter() - t0
    frame = engine.evaluate()
    print(_progress(engine, recent, elapsed, frame), flush=True)
    summary = dict(dataset=config.dataset, steps=engine.step_count, seconds=round(elapsed, 2), state=state,
                   message=message, device=str(engine.device), modes_covered=frame.modes_covered,
                   n_modes=frame.n_modes, hq_percent=frame.hq_percent)
    print(json.dumps(summary))
    return 1 if state == "diverged" else 0


def _progress(engine: Engine, recent: np.ndarray, elapsed: float, frame=None) -> str:
    """One line: step, steps/s, mean losses and D outputs of the last steps, and coverage when evaluated."""
    text = f"[{elapsed:6.1f}s] step {engine.step_count:7d}  {engine.step_count / max(elapsed, 1e-9):6.0f} steps/s"
    if len(recent):
        col = lambda name: recent[:, STAT_FIELDS.index(name)].mean()
        text += (f"  D loss {col('d_loss'):.3f}  G loss {col('g_loss'):.3f}  "
                 f"D(x) {col('d_real'):.2f}  D(G(z)) {col('d_fake'):.2f}")
    if frame is not None and frame.modes_covered is not None:
        text += f"  modes {frame.modes_covered}/{frame.n_modes}  HQ {frame.hq_percent:.1f}%"
    return text


if __name__ == "__main__":
    sys.exit(main())
