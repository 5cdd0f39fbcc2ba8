"""App benchmarks: the page's tick latency, many visitors, and the lesson presets, as JSON.

    python -m classroom.bench ticks              # tick handler latency with 50k steps of history
    python -m classroom.bench tickcost           # server CPU of one page tick through Gradio
    python -m classroom.bench page               # runner steps/s with and without a page drawing 2.5×/s
    python -m classroom.bench load --clients 30  # 30 simulated visitors against `python app.py`
    python -m classroom.bench presets            # each lesson preset's symptom after ~30 s, and
                                                 # its alert's fix against no fix (30 s each)
    python -m classroom.bench browser --seconds 120  # the page's memory and CPU in headless Chromium
    python -m classroom.bench classroom --students 30   # a class pressing Start at once (bench_classroom.py)

Engine benchmarks (speed, quality, digits) are `python -m gan_core.bench`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from gan_core.bench import _env, runner_steps_per_s
from gan_core.config import default_config
from gan_core.records import STAT_FIELDS
from gan_core.runner import Runner

from .alerts import detect
from .handlers import PLOT_NAMES, TICK_OUTPUTS, Handlers, figures
from .presets import PRESETS
from .sessions import SessionManager


def bench_page(seconds: float = 5.0, rounds: int = 5) -> dict:
    """Runner steps/s alone and with a page reader drawing every figure 2.5×/s (interleaved)."""
    config = default_config("ring8")
    draw = lambda snap: [fig.to_json() for fig in figures(snap)]
    pairs = [(runner_steps_per_s(config, seconds)[0], runner_steps_per_s(config, seconds, read=draw)[0])
             for _ in range(rounds)]
    return dict(rounds=[[round(a), round(b)] for a, b in pairs], rounds_columns="runner, runner + page",
                page_keeps_percent=round(100 * float(np.median([b / a for a, b in pairs])), 1))


def bench_ticks(history_steps: int = 50_000, n: int = 200) -> dict:
    """Latency of the app's tick handler (status + 5 figures) with a long history."""
    import gradio as gr

    manager = SessionManager(max_active=1, processes=0)  # the runner's own telemetry, in this process
    handlers = Handlers(manager)
    session = manager.create("bench", default_config("ring8"))
    runner = session.runner
    runner.step(1000)
    while runner.snapshot().step < 1000:
        time.sleep(0.05)
    tel = runner.telemetry
    # Fill the history with `history_steps` synthetic steps in chunks, like a long run.
    rng = np.random.default_rng(0)
    for start in range(1000, 1000 + history_steps, 500):
        steps = np.arange(start + 1, start + 501)
        tel.record_steps(steps, steps / 1000.0, rng.random((500, 7)), 1000.0)
    request = gr.Request(session_hash="bench")
    times, sizes = [], []
    for i in range(n):
        tel.set_status(rate=1000.0 + i)  # a new version each time: the tick must redraw
        t0 = time.perf_counter()
        out = handlers.tick(request=request)
        plots_out = [out[TICK_OUTPUTS.index(name)] for name in PLOT_NAMES]
        size = sum(len(o) for o in plots_out if isinstance(o, str))  # figure JSON sent (unchanged ones skip)
        times.append(time.perf_counter() - t0)
        sizes.append(size)
    manager.close()
    ms = np.array(times) * 1000
    return dict(history_steps=runner.snapshot().step, history_rows=len(runner.snapshot().history),
                tick_ms_p50=round(float(np.percentile(ms, 50)), 2), tick_ms_p95=round(float(np.percentile(ms, 95)), 2),
                payload_kb=round(float(np.mean(sizes)) / 1024, 1))


def bench_load(clients: int, seconds: float, max_runs: int | None = None) -> dict:
    """Launch `python app.py` and drive it with `clients` simulated visitors (gradio_client):
    each starts a run, ticks at 2.5 Hz, moves the D learning rate, then leaves."""
    from gradio_client import Client

    env = dict(GRADIO_HEARTBEAT_INTERVAL="2", **({"GAN_CLASSROOM_MAX_RUNS": str(max_runs)} if max_runs else {}))
    with launched_app(**env) as (server, url):
        admin = _connect(url)
        baseline = admin.predict(api_name="/server_stats")
        peak_rss = [0]
        done = threading.Event()

        def watch_rss():
            while not done.wait(0.2):
                peak_rss[0] = max(peak_rss[0], _rss_mb(server.pid))

        threading.Thread(target=watch_rss, daemon=True).start()
        results, lock = [], threading.Lock()
        rates: list[float] = []

        def visitor(i: int):
            out = dict(admitted=False, queued=False, ticks=[], errors=[])
            try:
                client = Client(url, verbose=False)
                status = client.predict("ring8", "small", 256, i, "nonsaturating", -3.0, -3.0, 1, 0.0, False, None,
                                        api_name="/start")
                out["admitted"] = "Running" in status
                out["queued"] = "Waiting" in status
                t_end = time.monotonic() + seconds
                moved = False
                while time.monotonic() < t_end:
                    t0 = time.perf_counter()
                    client.predict(api_name="/tick")
                    out["ticks"].append(time.perf_counter() - t0)
                    if not moved and time.monotonic() > t_end - seconds / 2:
                        client.predict("nonsaturating", -3.0, -2.0, 1, 0.1, False, api_name="/set_live")
                        moved = True
                    time.sleep(max(0.0, 0.4 - (time.perf_counter() - t0)))
                client.close()
            except Exception as exc:  # counted, reported
                out["errors"].append(f"{type(exc).__name__}: {exc}")
            with lock:
                results.append(out)

        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        time.sleep(seconds * 0.75)
        during = admin.predict(api_name="/server_stats")
        rates = during["steps_per_s"]
        for t in threads:
            t.join()
        # Everyone left: their heartbeats end, unload stops the runs.
        t_left = time.monotonic()
        after = admin.predict(api_name="/server_stats")
        while time.monotonic() - t_left < 60 and (after["training_threads"] or after["sessions"]):
            time.sleep(1.0)
            after = admin.predict(api_name="/server_stats")
        done.set()
        ticks = np.array([t for r in results for t in r["ticks"]]) * 1000
        return dict(
            clients=clients, seconds_each=seconds, max_active=baseline["max_active"],
            admitted_at_start=sum(r["admitted"] for r in results), queued_at_start=sum(r["queued"] for r in results),
            tick_ms_p50=round(float(np.percentile(ticks, 50)), 1) if len(ticks) else None,
            tick_ms_p95=round(float(np.percentile(ticks, 95)), 1) if len(ticks) else None,
            ticks=int(len(ticks)), steps_per_s_per_running_run=rates, peak_rss_mb=round(peak_rss[0], 1),
            training_threads_before=baseline["training_threads"], training_threads_after=after["training_threads"],
            sessions_after=after["sessions"], seconds_to_clean_up=round(time.monotonic() - t_left, 1),
            errors=[e for r in results for e in r["errors"]],
        )


def bench_browser(seconds: float, sample_s: float = 10.0, viewport=(1400, 1000)) -> dict:
    """Launch `python app.py`, open it in headless Chromium, press Start and sample the
    renderer every `sample_s`: JS heap (before and after a forced GC), DOM counters,
    renderer RSS and CPU. Reports the raw samples and one summary row per minute."""
    from playwright.sync_api import sync_playwright

    from .browser_probe import PageProbe, launch

    with launched_app() as (server, url):
        _connect(url).close()
        with sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page(viewport=dict(width=viewport[0], height=viewport[1]))
                page.goto(url)
                page.get_by_role("button", name="Start").wait_for()
                probe = PageProbe(page)
                samples = [probe.sample()]
                page.get_by_role("button", name="Start").click()
                page.wait_for_function("() => document.querySelector('#status').innerText.includes('Running')",
                                       timeout=60_000)
                t_start = time.monotonic()
                while time.monotonic() - t_start < seconds:
                    time.sleep(max(0.0, sample_s - (time.monotonic() - probe.t0 - samples[-1].t_s)))
                    samples.append(probe.sample())
                step = page.locator("#status").inner_text()
            finally:
                browser.close()
    return dict(seconds=seconds, sample_s=sample_s, viewport=list(viewport), status_at_end=step,
                per_minute=_per_minute(samples), samples=[s.as_dict() for s in samples])


def _per_minute(samples) -> list[dict]:
    """One row per minute after Start (samples[1]): memory at the minute's last sample,
    renderer CPU over the minute in % of one core."""
    start, rows = samples[1] if len(samples) > 1 else samples[0], []
    begin, minute = start, 1
    while True:
        inside = [s for s in samples if begin.t_s < s.t_s <= start.t_s + 60 * minute + 1.0]
        if not inside:
            return rows
        end = inside[-1]
        rows.append(dict(minute=minute, t_s=round(end.t_s - start.t_s, 1),
                         heap_after_gc_mb=round(end.heap_after_gc_mb, 1), heap_mb=round(end.heap_mb, 1),
                         renderer_rss_mb=round(end.renderer_rss_mb, 1), chromium_rss_mb=round(end.chromium_rss_mb, 1),
                         dom_nodes=end.dom_nodes, js_event_listeners=end.js_event_listeners,
                         **{f"{name}_cpu_percent": round(100 * (getattr(end, f"{name}_cpu_s") - getattr(begin, f"{name}_cpu_s"))
                                                         / (end.t_s - begin.t_s), 1)
                            for name in ("renderer", "gpu", "chromium")}))
        begin, minute = end, minute + 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launched_app(**env):
    """`python app.py` in a subprocess on a free port (extra environment `env`): yields
    (process, url); the server is stopped on exit."""
    port = _free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", **env)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=Path(__file__).resolve().parent.parent, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield server, f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(10)


def _connect(url: str, timeout: float = 60.0):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(url, verbose=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _tree_rss_mb(pid: int) -> float:
    """RSS of process `pid` and its descendants (the server with its trainer processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {pid}, [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(_rss_mb(p) for p in tree)


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_tickcost(n: int = 150) -> dict:
    """Server CPU per page tick through Gradio (`python app.py` + one gradio_client page), above the
    server's idle use: a page with no run, and a page whose run is paused (nothing new to draw).
    Backs `sessions.TICK_COST_S`."""
    from .bench_classroom import _page_defaults

    with launched_app() as (server, url):
        client = _connect(url)
        time.sleep(2.0)
        cpu0 = _cpu_s(server.pid)
        time.sleep(5.0)
        idle = (_cpu_s(server.pid) - cpu0) / 5.0  # CPU share of the server with no request at all
        result = dict(ticks_each=n, server_idle_cpu_percent=round(100 * idle, 1))
        for case in ("no_run", "paused_run"):
            if case == "paused_run":
                client.predict(*_page_defaults(), api_name="/start")
                time.sleep(1.0)
                client.predict(api_name="/pause")
                time.sleep(1.0)
            client.predict(api_name="/tick")
            cpu0, t0 = _cpu_s(server.pid), time.perf_counter()
            for _ in range(n):
                client.predict(api_name="/tick")
            wall = time.perf_counter() - t0
            result[case] = dict(server_cpu_ms_per_tick=round(1000 * (_cpu_s(server.pid) - cpu0 - idle * wall) / n, 1),
                                round_trip_ms=round(1000 * wall / n, 1))
        client.close()
        return result


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
    from .alerts import WINDOW, swing_count

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


APP_BENCHMARKS = ("ticks", "tickcost", "page", "load", "presets", "browser", "classroom")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m classroom.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Checked by hand, as in gan_core.bench: Python 3.11's argparse rejects an empty nargs="*"
    # positional that has `choices`.
    p.add_argument("what", nargs="*", metavar="{" + ",".join(APP_BENCHMARKS) + "}",
                   help="benchmarks to run (default: ticks page)")
    p.add_argument("--clients", type=int, default=30, help="simulated visitors (load)")
    p.add_argument("--students", type=int, default=30, help="simulated students (classroom)")
    p.add_argument("--lesson", default="", help="the lesson the students' pages open on (classroom)")
    p.add_argument("--max-runs", type=int, default=None, help="admission cap for the load test's server")
    p.add_argument("--seconds", type=float, default=None, help="time budget per measurement")
    args = p.parse_args(argv)
    unknown = [w for w in args.what if w not in APP_BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(APP_BENCHMARKS)}")
    args.what = args.what or ["ticks", "page"]
    torch.set_num_threads(1)
    result: dict = dict(env=_env())
    for name in args.what:
        if name == "ticks":
            result["ticks"] = bench_ticks()
        elif name == "tickcost":
            result["tickcost"] = bench_tickcost()
        elif name == "page":
            result["page"] = bench_page(args.seconds or 5.0)
        elif name == "presets":
            result["presets"] = bench_presets(args.seconds or 30.0)
            result["fixes"] = bench_fixes(args.seconds or 30.0)
        elif name == "browser":
            result["browser"] = bench_browser(args.seconds or 120.0)
        elif name == "classroom":
            from .bench_classroom import bench_classroom

            result["classroom"] = bench_classroom(args.students, args.seconds or 90.0, args.lesson)
        elif name == "load":
            result["load"] = bench_load(args.clients, args.seconds or 20.0, args.max_runs)
        print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
