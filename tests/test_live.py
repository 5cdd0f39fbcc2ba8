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


def paused_at_a_new_version(page, counted):
    """Visitor "a"'s run, trained a little, paused, then at a version no page was built for yet
    (the buttons' status lines were), with the figure counts set back to 0."""
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 20)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    paused = runner.snapshot().version
    runner.publish_frame()
    wait_until(lambda: runner.snapshot().version > paused)
    counted.update(dict.fromkeys(counted, 0))
    return runner


def test_ten_viewers_of_one_run_version_cost_one_build(page, counted):
    runner = paused_at_a_new_version(page, counted)
    version = runner.snapshot().version
    built = []
    barrier = threading.Barrier(10)

    def viewer():
        barrier.wait()
        built.append(page.live.frames.built(runner))

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


def test_a_class_view_card_does_not_leave_the_page_figures_behind(page, counted):
    """The class view's card and the page share a run's frames: a card read at a version does not
    count as the page's figures brought up to it (a paused run would keep old figures)."""
    runner = paused_at_a_new_version(page, counted)
    frames = page.live.frames.built(runner, card=True)
    assert frames.card["state"] == "paused" and counted["samples"] == 0, "a card builds no figure"
    page.live.frames.built(runner)
    assert counted["samples"] == 1, "the page's figures are built for the new version all the same"


def test_a_run_in_a_trainer_process_has_its_figures_built_there(make_page, monkeypatch):
    """The server builds no figure of a run in a trainer process: its frames are made there, only
    the parts cross, and the CPU they took there counts in the pages' pace."""
    page = make_page(max_active=1, processes=1)

    def not_here(snap):
        raise AssertionError("a figure was built in the web server")

    for name in live.FIGURES:
        monkeypatch.setitem(live.FIGURES, name, not_here)
    page.buttons.start(controls(), request=req("a"))
    token = page.pages.get("a").token
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.telemetry.version > 3 and runner.snapshot().frame is not None)
    code, body, _ = page.live.poll(token, "")
    parts = json.loads(body)["parts"]
    assert code == 200 and set(live.PLOT_NAMES) <= set(parts) and parts["samples"]["data"]
    assert "step <b>" in parts["status"]
    assert page.live.pace.charged_s > 0, "the trainer's build time is the pages' cost too"


def test_frames_made_afresh_never_reuse_a_key_a_page_holds():
    """A run's frames made anew (another run, a move to another trainer process) count keys from 1
    again: the server's copy keys them by their epoch too, so a page holding key 1 of the old ones
    is sent the new part; and a card from the new frames does not pass for the page's parts."""
    brief = live.Brief(1, "running", "", 10, 100.0, "cpu")
    old = live.FrameUpdate("e1", 1, {"samples": live.Built(1, b"1")}, brief, [], None, 0, 0.0)
    new = live.FrameUpdate("e2", 1, {"samples": live.Built(1, b"2")}, brief, [], None, 0, 0.0)
    frames = live.Frames().merged(old)
    held = frames.parts["samples"].key
    again = frames.merged(new)
    assert again.parts["samples"].key != held and again.parts["samples"].data == b"2"
    assert frames.parts["samples"].data == b"1", "a reader's frames never change under it"
    body, _ = live.delta(again.parts, {"key": "k", "samples": held}, "k", None, object(), {})
    assert json.loads(body)["parts"] == {"samples": 2}
    card = live.FrameUpdate("e3", 1, {"thumb": live.Built(1, b"3")}, brief, [], {"state": "running"}, 0, 0.0)
    assert frames.merged(card).version == -1 and frames.version == 1, "the page's parts are built again"


def test_a_run_whose_trainer_process_died_keeps_its_figures_and_says_so(make_page):
    page = make_page(max_active=1, processes=1)
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    token = page.pages.get("a").token
    wait_until(lambda: runner.snapshot().frame is not None)
    first = json.loads(page.live.poll(token, "")[1])
    runner.child.process.kill()
    wait_until(lambda: runner.state() == "error")
    code, body, _ = page.live.poll(token, "")
    parts = json.loads(body)["parts"]
    assert code == 200 and "<b>Error</b>" in parts["status"] and "Press Start" in parts["status"]
    assert parts["samples"] == first["parts"]["samples"], "the last figures stay on the page"


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
