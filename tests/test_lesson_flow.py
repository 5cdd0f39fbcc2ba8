"""What a teacher does with lessons: Start after a changed setup begins a fresh run,
Start with the same setup resumes, choosing a lesson never leaks into the old run,
and each lesson's one-click fix is the one its text teaches (issue 14)."""

from __future__ import annotations

import threading

import gradio as gr
import pytest
import torch

from app_support import wait_until
from classroom.handlers import Handlers, control_values
from classroom.presets import get_preset
from classroom.sessions import SessionManager

# dataset, size, batch, seed, loss, log10 G lr, log10 D lr, k, smoothing, two-sided, upload, lesson
SETUP = ["ring8", "small", 64, 0, "nonsaturating", -3.0, -3.0, 1, 0.0, False, None, ""]


def req(sid: str) -> gr.Request:
    return gr.Request(session_hash=sid)


@pytest.fixture
def handlers():
    torch.set_num_threads(1)
    manager = SessionManager(max_active=1, max_sessions=4)
    yield Handlers(manager)
    manager.release_all()
    assert not [t for t in threading.enumerate() if t.name.startswith("gan-")], "leaked training threads"


def with_(index: int, value) -> list:
    args = list(SETUP)
    args[index] = value
    return args


def run_until(handlers, sid: str, steps: int):
    runner = handlers.manager.get(sid).runner
    wait_until(lambda: runner.snapshot().step >= steps, timeout=30)
    return runner


def lesson_setup(handlers, name: str) -> list:
    """The control values a lesson puts on the page, plus (upload, lesson)."""
    return [*control_values(get_preset(name).config), None, name]


# ------------------------------------------------------------------------------ 1. fresh starts

def test_start_with_an_unchanged_setup_resumes_the_paused_run(handlers):
    handlers.start(*SETUP, request=req("a"))
    runner = run_until(handlers, "a", 100)
    handlers.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    step = runner.snapshot().step
    status = handlers.start(*with_(6, -2.5), request=req("a"))  # a live change only: same setup
    assert handlers.manager.get("a").runner is runner and "New run" not in status
    wait_until(lambda: runner.snapshot().step > step + 20)
    assert runner.config.d_lr == pytest.approx(10 ** -2.5, rel=0.02)


def test_start_after_choosing_another_lesson_begins_a_fresh_run(handlers):
    handlers.start(*lesson_setup(handlers, "mode_collapse"), request=req("a"))
    old = run_until(handlers, "a", 300)
    status = handlers.start(*lesson_setup(handlers, "strong_d"), request=req("a"))
    new = handlers.manager.get("a").runner
    assert new is not old and not old.is_alive
    assert "New run: the setup changed (lesson" in status
    assert new.config.loss == "minimax" and new.config.n_critic == 5
    snap = new.snapshot()
    assert snap.step < 300 and (len(snap.history) == 0 or snap.history[0, 0] <= 5), "curves start again"


@pytest.mark.parametrize("index, value, words", [
    (0, "ring8_wide", "dataset"), (1, "medium", "network size"), (2, 128, "batch size"), (3, 7, "seed"),
])
def test_start_after_any_setup_change_begins_a_fresh_run(handlers, index, value, words):
    handlers.start(*SETUP, request=req("a"))
    old = run_until(handlers, "a", 50)
    status = handlers.start(*with_(index, value), request=req("a"))
    assert handlers.manager.get("a").runner is not old
    assert f"({words})" in status


def test_start_with_a_second_csv_trains_on_the_second_file(handlers, tmp_path):
    import math

    circle, line = tmp_path / "circle.csv", tmp_path / "line.csv"
    circle.write_text("\n".join(f"{math.cos(i / 10):.4f},{math.sin(i / 10):.4f}" for i in range(200)))
    line.write_text("\n".join(f"{i / 100:.4f},{2 * i / 100:.4f}" for i in range(200)))
    handlers.start("csv", *SETUP[1:-2], str(circle), "", request=req("a"))
    old = run_until(handlers, "a", 20)
    status = handlers.start("csv", *SETUP[1:-2], str(line), "", request=req("a"))
    new = handlers.manager.get("a").runner
    assert new is not old and "CSV file" in status
    points = new.engine.data.points
    # The line y = 2x: every point's y is twice its x (up to the standardisation's shift).
    assert torch.corrcoef(points.T)[0, 1] > 0.999
    # The same file again (a fresh copy with the same content) resumes.
    handlers.pause(request=req("a"))
    copy = tmp_path / "line_again.csv"
    copy.write_bytes(line.read_bytes())
    handlers.start("csv", *SETUP[1:-2], str(copy), "", request=req("a"))
    assert handlers.manager.get("a").runner is new


# ------------------------------------------------------------------------------ 2. choosing a lesson

def test_choosing_a_lesson_stages_it_and_never_touches_the_old_run(handlers):
    handlers.start(*SETUP, request=req("a"))
    old = run_until(handlers, "a", 100)
    old_config = old.config
    values = handlers.choose_lesson("mode_collapse", request=req("a"))[:10]
    staged = handlers.manager.get("a").runner
    assert staged is not old and not old.is_alive
    assert staged.snapshot().step == 0 and staged.state() == "idle"
    assert staged.config == get_preset("mode_collapse").config
    assert staged.snapshot().frame is not None, "the page shows G at step 0"
    assert "Press Start" in handlers.status(req("a"))
    # Touching a slider now (the page sends every live control) changes the staged lesson only.
    handlers.live(*values[4:], request=req("a"))
    assert old.config == old_config
    # Start runs the staged lesson: same setup, same run.
    status = handlers.start(*values, None, "mode_collapse", request=req("a"))
    assert handlers.manager.get("a").runner is staged and "New run" not in status
    wait_until(lambda: staged.snapshot().step > 10)
