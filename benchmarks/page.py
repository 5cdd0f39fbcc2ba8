"""The page's benchmarks: what an open page costs the server and the browser, as JSON.

    python -m benchmarks ticks              # building a page's live payload with 50k steps of history
    python -m benchmarks tickcost           # server CPU per live-channel poll, and of 30 open pages
    python -m benchmarks page               # runner steps/s with and without a page reading it
    python -m benchmarks browser --seconds 120  # the page's memory and CPU in headless Chromium

A whole class is `python -m benchmarks classroom` (students.py); lessons are lessons.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import orjson

from gan_core.config import default_config

from classroom.live import FIGURES, PLOT_NAMES
from classroom.page import Page
from classroom.sessions import SessionManager

from .common import connect, cpu_s, launched_app, server_and_trainer_cpu_s
from .engine import runner_steps_per_s
from .students import LivePoller, page_defaults, reuse_tls_contexts


def bench_page(seconds: float = 5.0, rounds: int = 5) -> dict:
    """Runner steps/s alone and with a page reader drawing every figure 2.5×/s (interleaved)."""
    config = default_config("ring8")
    draw = lambda snap: [FIGURES[name](snap).to_bytes() for name in PLOT_NAMES]
    pairs = [(runner_steps_per_s(config, seconds)[0], runner_steps_per_s(config, seconds, read=draw)[0])
             for _ in range(rounds)]
    return dict(rounds=[[round(a), round(b)] for a, b in pairs], rounds_columns="runner, runner + page",
                page_keeps_percent=round(100 * float(np.median([b / a for a, b in pairs])), 1))


def bench_ticks(history_steps: int = 50_000, n: int = 200) -> dict:
    """Latency of building one page's live payload (status, graph, five figures) when every poll
    finds a new version of a run with a long history (the worst case: nothing is reused)."""
    manager = SessionManager(max_active=1, processes=0, housekeeping=False)  # the run here, on threads
    page = Page(manager)
    session = manager.create("bench", default_config("ring8"))
    runner = session.runner
    runner.step(1000)
    while runner.snapshot().step < 1000:
        time.sleep(0.05)
    tel = runner.telemetry
    rng = np.random.default_rng(0)  # fill the history with synthetic steps in chunks, like a long run
    for start in range(1000, 1000 + history_steps, 500):
        steps = np.arange(start + 1, start + 501)
        tel.record_steps(steps, steps / 1000.0, rng.random((500, 7)), 1000.0)
    token = page.pages.get("bench").token
    times, sizes = [], []
    for i in range(n):
        tel.set_status(rate=1000.0 + i)  # a new version each time
        t0 = time.perf_counter()
        status, body, _ = page.live.poll(token, "")
        times.append(time.perf_counter() - t0)
        sizes.append(len(body))
    manager.close()
    ms = np.array(times) * 1000
    return dict(history_steps=runner.snapshot().step, history_rows=len(runner.snapshot().history),
                payload_ms_p50=round(float(np.percentile(ms, 50)), 2),
                payload_ms_p95=round(float(np.percentile(ms, 95)), 2),
                payload_kb=round(float(np.mean(sizes)) / 1024, 1))


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


# tickcost's windows without and with a polling page: many short pairs, so that the server's
# drifting baseline (its event loop's idle wakeups vary by ~1 ms of CPU per second from window to
# window) averages out instead of deciding a round.
ROUNDS, ROUND_S = 12, 5.0


def bench_tickcost(polls: int = 300, pages: int = 30, seconds: float = 20.0) -> dict:
    """Server CPU of an open page, against `python app.py` (its trainer processes train elsewhere):

    - `nothing_new`: a page whose run is paused polls `polls` times (each answer: 204);
    - `new_plots`: a page whose run trains polls at the pace it is told (new figures each time),
      in ROUNDS rounds of ROUND_S without it and ROUND_S with it;
    - `pages`: `pages` open pages whose runs train (the whole-class lesson), each polling at its
      pace for `seconds`: the server's CPU as a share of one core.
    A poll's cost is the server process's CPU with the page polling minus the same without it
    (runs training alike: the server also reads their trainer processes' messages); the box's
    solo rate is reported beside. The figures of a run in a trainer process are built there: what
    its answering threads spent (`trainer_answer_cpu_s`, measured the same way) is reported beside,
    and both together.
    """
    reuse_tls_contexts()
    with launched_app() as (server, url):
        client = connect(url)
        time.sleep(2.0)
        cpu0 = cpu_s(server.pid)
        time.sleep(5.0)
        idle = (cpu_s(server.pid) - cpu0) / 5.0  # the server with no request at all
        result: dict = dict(server_idle_cpu_percent=round(100 * idle, 2))
        token = client.predict(api_name="/open_page")[-1]
        client.predict(*page_defaults(), api_name="/start")
        with LivePoller(url, token) as live:
            time.sleep(3.0)
            frame = orjson.loads(live.poll("")[1])
            rate = _rate(frame["parts"].get("status", ""))
            result["solo_steps_per_s"] = rate
            # A page with new figures at every poll, at the pace the server tells it; in rounds of
            # ROUND_S without the page then ROUND_S with it, so the server's drifting baseline (the
            # run's messages, Gradio's idle loop) is measured next to each window of polls, not
            # once before them all.
            since, polls_done, extra_cpu, training_cpu, watched = frame["key"], 0, 0.0, 0.0, 0.0
            rounds, new, trainer_rounds, trainer_extra = [], 0, [], 0.0
            for _ in range(ROUNDS):
                (cpu0, answer0), t0 = server_and_trainer_cpu_s(server.pid), time.perf_counter()
                time.sleep(ROUND_S)
                (cpu1, answer1), t1 = server_and_trainer_cpu_s(server.pid), time.perf_counter()
                base, answer_base = (cpu1 - cpu0) / (t1 - t0), (answer1 - answer0) / (t1 - t0)
                (cpu0, answer0), t0, n = server_and_trainer_cpu_s(server.pid), time.perf_counter(), 0
                while time.perf_counter() - t0 < ROUND_S:
                    status, body, wait = live.poll(since)
                    if status == 200:
                        since, new = orjson.loads(body)["key"], new + 1
                    n += 1
                    time.sleep(wait)
                (cpu1, answer1), wall = server_and_trainer_cpu_s(server.pid), time.perf_counter() - t0
                extra = cpu1 - cpu0 - base * wall
                answer_extra = answer1 - answer0 - answer_base * wall
                rounds.append(round(1000 * extra / n, 2))
                trainer_rounds.append(round(1000 * answer_extra / n, 2))
                polls_done, extra_cpu, training_cpu, watched = polls_done + n, extra_cpu + extra, \
                    training_cpu + base * ROUND_S, watched + ROUND_S
                trainer_extra += answer_extra
            result["server_cpu_percent_run_training_no_page"] = round(100 * training_cpu / watched, 2)
            trainer_ms = 1000 * trainer_extra / polls_done  # NaN where not measurable (`trainer_answer_cpu_s`)
            result["new_plots"] = dict(polls=polls_done, answered_200=new, rounds_ms_per_poll=rounds,
                                       server_cpu_ms_per_poll=round(1000 * extra_cpu / polls_done, 2),
                                       trainer_rounds_ms_per_poll=trainer_rounds,
                                       trainer_cpu_ms_per_poll=round(trainer_ms, 2),
                                       server_and_trainer_cpu_ms_per_poll=round(1000 * extra_cpu / polls_done
                                                                                + trainer_ms, 2))
            client.predict(api_name="/pause")
            time.sleep(1.0)
            since = orjson.loads(live.poll("")[1])["key"]
            cpu0, t0 = cpu_s(server.pid), time.perf_counter()
            codes = [live.poll(since)[0] for _ in range(polls)]
            wall = time.perf_counter() - t0
            result["nothing_new"] = dict(polls=polls, all_204=all(c == 204 for c in codes),
                                         server_cpu_ms_per_poll=round(
                                             1000 * (cpu_s(server.pid) - cpu0 - idle * wall) / polls, 3),
                                         round_trip_ms=round(1000 * wall / polls, 2))
        client.close()
        result["pages"] = _pages_open(url, server, pages, seconds, idle)
        return result


def _pages_open(url: str, server, pages: int, seconds: float, idle: float) -> dict:
    """`pages` pages on the whole-class lesson, training, polling at their pace for `seconds`."""
    setup = page_defaults("whole_class")
    tokens, clients = [], []
    for i in range(pages):  # each client stays open: closing it is closing the tab (its run stops)
        client = connect(url)
        tokens.append(client.predict(api_name="/open_page")[-1])
        client.predict(*setup[:3], i, *setup[4:], api_name="/start")
        clients.append(client)
    counts, answers, stop = [0] * pages, [Counter() for _ in range(pages)], threading.Event()  # per page: no lock

    def poll(i: int) -> None:
        since = ""
        with LivePoller(url, tokens[i]) as live:
            while not stop.is_set():
                status, body, wait = live.poll(since)
                if status == 200:
                    since = orjson.loads(body)["key"]
                counts[i] += 1
                answers[i][status] += 1
                stop.wait(wait)

    time.sleep(3.0)
    (before, answer_before), t0 = server_and_trainer_cpu_s(server.pid), time.perf_counter()
    time.sleep(seconds / 2)
    (after, answer_after), wall = server_and_trainer_cpu_s(server.pid), time.perf_counter() - t0
    training, answer_training = (after - before) / wall, (answer_after - answer_before) / wall  # no page polls
    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(pages)]
    for t in threads:
        t.start()
    time.sleep(5.0)  # the pace settles
    (before, answer_before), t0, polled = server_and_trainer_cpu_s(server.pid), time.perf_counter(), sum(counts)
    time.sleep(seconds)
    (after, answer_after), wall = server_and_trainer_cpu_s(server.pid), time.perf_counter() - t0
    share, answer_share = (after - before) / wall, (answer_after - answer_before) / wall
    polled = sum(counts) - polled
    stop.set()
    for t in threads:
        t.join(5)
    for client in clients:
        client.close()
    return dict(pages=pages, seconds=seconds, answers=dict(sum(answers, Counter())), polls_per_s=round(polled / wall, 1),
                poll_interval_s=round(pages * wall / max(1, polled), 2),
                server_cpu_share_of_a_core=round(share, 3), server_cpu_share_runs_no_pages=round(training, 3),
                server_cpu_share_of_the_pages=round(share - training, 3),
                server_cpu_ms_per_poll=round(1000 * (share - training) * wall / max(1, polled), 2),
                trainer_cpu_share_of_the_pages=round(answer_share - answer_training, 3),
                pages_cpu_share_server_and_trainers=round(share - training + answer_share - answer_training, 3))


def _rate(status: str) -> float | None:
    import re

    m = re.search(r"([\d,]+) steps/s", status)
    return float(m[1].replace(",", "")) if m else None
