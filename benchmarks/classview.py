"""The teacher's class view: `python -m benchmarks classview [--students 30] [--seconds 20]`.

Launches `python app.py`, measures the box's solo rate (one run alone: the steps/s its status line
shows), then starts a class: a teacher (gradio_client: /start_class, /open_class_view) and
`students` simulated students (`students.Student`) who join it, press Start on the whole-class
lesson with their own seed and poll the live channel at the pace the server tells them, staying.
Then, in interleaved rounds of `seconds` each (the method of `page._pages_open`):

- **without**: the class trains and polls, no class view is open;
- **with**: one teacher page also polls GET /gan/class/{token} at the pace it is told (X-Next-Ms),
  as the class view's page does.

The class view's cost is the server process's CPU share of a core with it minus without (its
trainer processes train elsewhere: their training is not counted), and beside it the same for the
trainer processes' threads outside training, which build the cards; also reported: how often the view
refreshed with new data (the interval between answers with content; target ≤ 2 s), its answers,
their size, and the server's CPU per poll. Target (the issue): ≤ 0.10 of a core for 30 students.
"""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np

from .common import connect, launched_app, server_and_trainer_cpu_s
from .students import Student, page_defaults, reuse_tls_contexts


class TeacherPage:
    """One class view polling the class route at its told pace (a thread), counting what it got."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.refreshed: list[float] = []  # times of answers with content (200)
        self.codes: list[int] = []
        self.sizes: list[int] = []
        self.round_trips: list[float] = []  # seconds
        self.students_seen = 0
        self.stop = threading.Event()

    def run(self) -> None:
        import httpx

        since = ""
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                response = http.get(f"gan/class/{self.token}", params={"since": since})
                self.round_trips.append(time.perf_counter() - t0)
                self.codes.append(response.status_code)
                if response.status_code == 200:
                    self.refreshed.append(time.monotonic())
                    self.sizes.append(len(response.content))
                    payload = response.json()
                    since = payload["key"]
                    self.students_seen = len(payload["students"])
                wait = int(response.headers.get("X-Next-Ms", "1500")) / 1000
                self.stop.wait(max(0.0, wait - (time.perf_counter() - t0)))


def _solo_rate(url: str) -> float | None:
    """Steps/s of one whole-class run alone (its status line after a few seconds), then paused."""
    import httpx

    client = connect(url)
    token = client.predict(api_name="/open_page")[-1]
    client.predict(*page_defaults("whole_class"), api_name="/start")
    time.sleep(5.0)
    status = httpx.get(f"{url}gan/live/{token}", timeout=30).json()["parts"].get("status", "")
    client.predict(api_name="/pause")  # it trains no more while the class does
    client.close()
    m = re.search(r"([\d,]+) steps/s", status)
    return float(m[1].replace(",", "")) if m else None


def _share(server, seconds: float) -> tuple[float, float]:
    """The CPU share of one core over the next `seconds` of the server process, and of its
    trainer processes outside training (the cards are built there: `trainer_answer_cpu_s`; NaN
    where that is not measurable)."""
    (before, answered), t0 = server_and_trainer_cpu_s(server.pid), time.perf_counter()
    time.sleep(seconds)
    (after, answered_after), wall = server_and_trainer_cpu_s(server.pid), time.perf_counter() - t0
    return (after - before) / wall, (answered_after - answered) / wall


def bench_classview(students: int = 30, seconds: float = 20.0, rounds: int = 3) -> dict:
    """See the module docstring."""
    reuse_tls_contexts()
    with launched_app(GRADIO_HEARTBEAT_INTERVAL="2") as (server, url):
        solo = _solo_rate(url)
        teacher = connect(url)
        links = teacher.predict(api_name="/start_class")
        code, key = re.search(r"\?class=([\w-]+)`", links)[1], re.search(r"#key=([\w-]+)`", links)[1]
        token = teacher.predict(code, key, api_name="/open_class_view")[0]
        class_ = [Student(url, i + 1, page_defaults("whole_class"), (8, 90), class_code=code)
                  for i in range(students)]
        until = time.monotonic() + 60 + 2 * rounds * (seconds + 3)
        threads = [threading.Thread(target=s.run, args=(until,), daemon=True) for s in class_]
        for thread in threads:  # the class presses Start within a few seconds
            thread.start()
            time.sleep(min(0.1, 3.0 / max(1, students)))
        deadline = time.monotonic() + 60
        while sum(s.started_at is not None for s in class_) < students and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(5.0)  # the pace settles
        without, with_view, views = [], [], []
        try:
            for _ in range(rounds):
                without.append(_share(server, seconds))
                view = TeacherPage(url, token)
                poller = threading.Thread(target=view.run, daemon=True)
                poller.start()
                time.sleep(3.0)  # its first full answer (every thumbnail) is not the steady state
                for counts in (view.refreshed, view.codes, view.sizes, view.round_trips):
                    counts.clear()
                with_view.append(_share(server, seconds))
                view.stop.set()
                poller.join(10)
                views.append(view)
        finally:
            for s in class_:
                s.stop.set()
            for thread in threads:
                thread.join(30)
            teacher.close()
    gaps = np.concatenate([np.diff(v.refreshed) for v in views if len(v.refreshed) > 1] or [np.zeros(0)])
    polls = sum(len(v.codes) for v in views)
    trips = np.array([t for v in views for t in v.round_trips])
    cost = float(np.median([s for s, _ in with_view]) - np.median([s for s, _ in without]))
    trainers = float(np.median([t for _, t in with_view]) - np.median([t for _, t in without]))
    return dict(
        students=students, seconds_per_round=seconds, rounds=rounds,
        solo_steps_per_s=solo,
        class_view_cpu_share_of_a_core=round(cost, 3),
        class_view_cpu_ms_per_poll=round(1000 * cost * seconds * rounds / max(1, polls), 2),
        class_view_trainer_cpu_share_of_a_core=round(trainers, 3),
        class_view_server_and_trainer_cpu_share_of_a_core=round(cost + trainers, 3),
        server_cpu_share_without_view=[round(s, 3) for s, _ in without],
        server_cpu_share_with_view=[round(s, 3) for s, _ in with_view],
        trainer_cpu_share_without_view=[round(t, 3) for _, t in without],
        trainer_cpu_share_with_view=[round(t, 3) for _, t in with_view],
        refresh_interval_s_mean=round(float(gaps.mean()), 2) if len(gaps) else None,
        refresh_interval_s_p95=round(float(np.percentile(gaps, 95)), 2) if len(gaps) else None,
        refresh_interval_s_max=round(float(gaps.max()), 2) if len(gaps) else None,
        poll_ms_p50=round(1000 * float(np.percentile(trips, 50)), 1) if len(trips) else None,
        poll_ms_p95=round(1000 * float(np.percentile(trips, 95)), 1) if len(trips) else None,
        answers={str(code): sum(c == code for v in views for c in v.codes) for code in (200, 204, 404)},
        payload_kb_mean=round(float(np.mean([b for v in views for b in v.sizes])) / 1024, 1)
        if any(v.sizes for v in views) else None,
        students_in_view=max(v.students_seen for v in views),
        students_started=sum(s.started_at is not None for s in class_),
        student_errors=[e for s in class_ for e in s.errors][:5],
        load_average=os.getloadavg(), cpu_count=os.cpu_count(),
    )
