"""App benchmarks: the page's tick latency, many visitors, and the lesson presets, as JSON.

    python -m benchmarks ticks              # tick handler latency with 50k steps of history
    python -m benchmarks tickcost           # server CPU of one page tick through Gradio
    python -m benchmarks page               # runner steps/s with and without a page drawing 2.5×/s
    python -m benchmarks load --clients 30  # 30 simulated visitors against `python app.py`
    python -m benchmarks presets            # each lesson preset's symptom after ~30 s, and
                                                 # its alert's fix against no fix (30 s each)
    python -m benchmarks browser --seconds 120  # the page's memory and CPU in headless Chromium
    python -m benchmarks classroom --students 30   # a class pressing Start at once (students.py)

Engine benchmarks (speed, quality, digits) are `python -m benchmarks`.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from .common import connect, cpu_s, launched_app, rss_mb
from .engine import runner_steps_per_s
from gan_core.config import default_config

from classroom.handlers import PLOT_NAMES, TICK_OUTPUTS, Handlers, figures
from classroom.sessions import SessionManager

from .students import page_defaults


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
        admin = connect(url)
        baseline = admin.predict(api_name="/server_stats")
        peak_rss = [0]
        done = threading.Event()

        def watch_rss():
            while not done.wait(0.2):
                peak_rss[0] = max(peak_rss[0], rss_mb(server.pid))

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
        connect(url).close()
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


def bench_tickcost(n: int = 150) -> dict:
    """Server CPU per page tick through Gradio (`python app.py` + one gradio_client page), above the
    server's idle use: a page with no run, and a page whose run is paused (nothing new to draw).
    Backs `sessions.TICK_COST_S`."""

    with launched_app() as (server, url):
        client = connect(url)
        time.sleep(2.0)
        cpu0 = cpu_s(server.pid)
        time.sleep(5.0)
        idle = (cpu_s(server.pid) - cpu0) / 5.0  # CPU share of the server with no request at all
        result = dict(ticks_each=n, server_idle_cpu_percent=round(100 * idle, 1))
        for case in ("no_run", "paused_run"):
            if case == "paused_run":
                client.predict(*page_defaults(), api_name="/start")
                time.sleep(1.0)
                client.predict(api_name="/pause")
                time.sleep(1.0)
            client.predict(api_name="/tick")
            cpu0, t0 = cpu_s(server.pid), time.perf_counter()
            for _ in range(n):
                client.predict(api_name="/tick")
            wall = time.perf_counter() - t0
            result[case] = dict(server_cpu_ms_per_tick=round(1000 * (cpu_s(server.pid) - cpu0 - idle * wall) / n, 1),
                                round_trip_ms=round(1000 * wall / n, 1))
        client.close()
        return result


