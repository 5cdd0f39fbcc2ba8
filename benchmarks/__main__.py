"""python -m benchmarks NAME [NAME ...] [options]: run benchmarks, print one JSON document.

    speed            2-D steps/s: textbook loop, engine (autograd), engine (hand backward), runner
    quality          ring-8 and grid-25 with their default presets (--seeds 0,1,2)
    digits           classifier IS/FD every 30 s for 300 s, per seed
    cohort           30 runs as cohorts vs one solo run
    cohort_setting   which ring-8 batch / lr a full class should use
    ring8_solo       that classroom setting vs the default, solo
    ticks            building a page's live payload with 50k steps of history
    tickcost         server CPU per live-channel poll, and of 30 open pages
    page             runner steps/s with and without a page reading it
    presets          each lesson's symptom by step budget on 5 seeds, each alert's fix against no fix
    browser          the page's memory and CPU in headless Chromium (--seconds)
    classroom        a whole class against `python app.py` (--students, --lesson)
    classview        the teacher's class view of a class (--students, --seconds per round)

With no NAME: speed quality. Each result also goes to stderr as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from . import common

NAMES = ("speed", "quality", "digits", "cohort", "cohort_setting", "ring8_solo", "ticks", "tickcost", "page",
         "presets", "browser", "classroom", "classview")
DEFAULT = ["speed", "quality"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Checked by hand: on Python 3.11 argparse tests an empty nargs="*" positional (its
    # default) against `choices` as one value and exits with "invalid choice: []".
    p.add_argument("what", nargs="*", metavar="NAME", help=f"benchmarks to run (default: {' '.join(DEFAULT)})")
    p.add_argument("--seconds", type=float, default=None, help="time budget per measurement")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the speed benchmark")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds (quality, digits, ring8_solo: default 0; presets: 0,1,2,3,4)")
    p.add_argument("--students", type=int, default=30, help="simulated students (classroom, classview)")
    p.add_argument("--lesson", default="",
                   help="the lesson the students' pages open on (classroom); comma-separated lessons to run (presets)")
    args = p.parse_args(argv)
    unknown = [w for w in args.what if w not in NAMES]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(NAMES)}")
    args.what = args.what or list(DEFAULT)
    args.seeds = tuple(int(x) for x in args.seeds.split(",")) if args.seeds else None
    return args


def run(name: str, args: argparse.Namespace):
    """One benchmark's result (imported here: each module is loaded only when asked for)."""
    if name in ("speed", "quality", "digits"):
        from . import engine

        if name == "speed":
            return engine.bench_speed(args.seconds or 5.0, args.rounds)
        if name == "quality":
            return engine.bench_quality(args.seconds or 60.0, args.seeds or (0,))
        runs = [engine.bench_digits(args.seconds or 300.0, seed) for seed in args.seeds or (0,)]
        return runs[0] if len(runs) == 1 else runs
    if name in ("cohort", "cohort_setting", "ring8_solo"):
        from . import cohort

        if name == "cohort":
            return cohort.bench_cohort(args.seconds or 3.0)
        if name == "cohort_setting":
            return cohort.bench_classroom_setting()
        return cohort.bench_ring8_solo(args.seconds or 60.0, args.seeds or (0,))
    if name in ("ticks", "tickcost", "page", "browser"):
        from . import page

        if name == "ticks":
            return page.bench_ticks()
        if name == "tickcost":
            return page.bench_tickcost()
        if name == "page":
            return page.bench_page(args.seconds or 5.0)
        return page.bench_browser(args.seconds or 120.0)
    if name == "presets":
        from . import lessons

        return lessons.bench_presets(args.seeds or lessons.SEEDS,
                                     tuple(args.lesson.split(",")) if args.lesson else tuple(lessons.PLANS))
    if name == "classview":
        from . import classview

        return classview.bench_classview(args.students, args.seconds or 20.0)
    from . import students

    return students.bench_classroom(args.students, args.seconds, args.lesson)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    result: dict = dict(env=common.env())
    for name in args.what:
        result[name] = run(name, args)
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
