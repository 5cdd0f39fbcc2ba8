"""Headless training from the command line (no UI).

    python -m gan_core.train --data ring8 --steps 5000
    python -m gan_core.train --data grid25 --seconds 60 --loss hinge --g-lr 5e-4

Prints progress (step, steps/s, losses, D outputs, mode coverage) as it goes
and a JSON summary at the end. Uses the same `Runner` as the app.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .config import ConfigError, TrainConfig, default_config
from .data import DATASET_NAMES, DOWNLOADABLE, DataError
from .records import column
from .losses import LOSSES
from .runner import Runner


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
        runner = Runner(config, csv_bytes=csv_bytes, max_steps=args.steps, eval_interval_s=1.0)
    except (ConfigError, DataError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"training {config.dataset} on {runner.engine.device}: {config}", flush=True)
    t0 = time.perf_counter()
    runner.start()
    try:
        while True:
            time.sleep(min(args.every, 0.2))
            snap = runner.snapshot()
            elapsed = time.perf_counter() - t0
            done = snap.state in ("finished", "error", "paused") or (
                args.seconds is not None and elapsed >= args.seconds)
            if done or int(elapsed / args.every) != int((elapsed - 0.2) / args.every):
                print(_progress(snap, elapsed), flush=True)
            if done:
                break
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        runner.stop()
    snap = runner.snapshot()
    frame = runner.engine.evaluate()
    summary = dict(dataset=config.dataset, steps=runner.engine.step_count, seconds=round(time.perf_counter() - t0, 2),
                   state=snap.state, message=snap.message, device=snap.device,
                   modes_covered=frame.modes_covered, n_modes=frame.n_modes, hq_percent=frame.hq_percent)
    print(json.dumps(summary))
    return 1 if snap.state == "error" else 0


def _progress(snap, elapsed: float) -> str:
    if len(snap.recent) == 0:
        return f"[{elapsed:6.1f}s] {snap.state}"
    col = lambda name: column(snap.recent[-50:], name).mean()
    text = (f"[{elapsed:6.1f}s] step {snap.step:7d}  {snap.steps_per_s:6.0f} steps/s  "
            f"D loss {col('d_loss'):.3f}  G loss {col('g_loss'):.3f}  "
            f"D(x) {col('d_real'):.2f}  D(G(z)) {col('d_fake'):.2f}")
    frame = snap.frame
    if frame is not None and frame.modes_covered is not None:
        text += f"  modes {frame.modes_covered}/{frame.n_modes}  HQ {frame.hq_percent:.1f}%"
    if snap.message:
        text += f"  ({snap.message})"
    return text


if __name__ == "__main__":
    sys.exit(main())
