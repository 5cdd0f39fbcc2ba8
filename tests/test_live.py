"""classroom/live.py: a run's figures are built once per snapshot version however many pages
watch it, a page gets only the parts that changed, and nothing at all when nothing did."""

from __future__ import annotations

import json
import threading

import pytest

from app_support import controls, req, wait_until
from classroom import live


@pytest.fixture
def counted(monkeypatch):
    """How many times each figure was built."""
    calls = {name: 0 for name in live.FIGURES}
    lock = threading.Lock()
    for name, build in list(live.FIGURES.items()):
        def counting(snap, _build=build, _name=name):
            with lock:
                calls[_name] += 1
            return _build(snap)

        monkeypatch.setitem(live.FIGURES, name, counting)
    return calls


def test_ten_viewers_of_one_run_version_cost_one_build(page, counted):
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 20)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    version = runner.snapshot().version
    built = []
    barrier = threading.Barrier(10)

    def viewer():
        barrier.wait()
        built.append(page.live.frames.built(runner)[1])

    threads = [threading.Thread(target=viewer) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runner.snapshot().version == version
    assert len({id(b) for b in built}) == 1, "every viewer got the same frames"
    assert all(n <= 1 for n in counted.values()) and counted["samples"] == 1, counted
    samples = built[0].parts["samples"]
    page.live.frames.built(runner)
    assert built[0].parts["samples"] is samples and counted["samples"] == 1, "nothing built again"


def test_a_page_gets_what_changed_and_nothing_when_nothing_did(page):
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 20)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    token = page.pages.get("a").token
    code, body, _ = page.live.poll(token, "")
    first = json.loads(body)
    assert code == 200 and set(live.PLOT_NAMES) | {"status", "overview"} <= set(first["parts"])
    assert page.live.poll(token, first["key"])[:2] == (204, None)
    page.buttons.set_speed("10", request=req("a"))  # the status line changes, the figures do not
    code, body, _ = page.live.poll(token, first["key"])
    second = json.loads(body)
    assert code == 200 and "status" in second["parts"] and "samples" not in second["parts"]
    code, body, _ = page.live.poll(token, "stale-key")  # a page that missed an answer gets everything
    assert code == 200 and set(live.PLOT_NAMES) <= set(json.loads(body)["parts"])


def test_the_status_line_is_html_with_the_visitors_text_escaped(page):
    page.buttons.start(controls(), request=req("a"))
    page.pages.get("a").notice = "**New run** <script>alert(1)</script>"
    status = page.buttons.status("a")
    assert "<b>New run</b>" in status and "<script>" not in status and "&lt;script&gt;" in status
