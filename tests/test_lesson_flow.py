"""What a teacher does with lessons: Start after a changed setup begins a fresh run,
Start with the same setup resumes, choosing a lesson never leaks into the old run,
and each lesson's one-click fix is the one its text teaches (issue 14)."""

from __future__ import annotations


import gradio as gr
import pytest
import torch

from app_support import SETUP, as_upload, req, wait_until
from classroom.handlers import control_values
from classroom.presets import get_preset




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
    handlers.start("csv", *SETUP[1:-2], as_upload(circle, "circle.csv"), "", request=req("a"))
    old = run_until(handlers, "a", 20)
    status = handlers.start("csv", *SETUP[1:-2], as_upload(line, "line.csv"), "", request=req("a"))
    new = handlers.manager.get("a").runner
    assert new is not old and "CSV file" in status
    points = new.engine.data.points
    # The line y = 2x: every point's y is twice its x (up to the standardisation's shift).
    assert torch.corrcoef(points.T)[0, 1] > 0.999
    # The same file again (a fresh copy with the same content) resumes.
    handlers.pause(request=req("a"))
    copy = tmp_path / "line_again.csv"
    copy.write_bytes(line.read_bytes())
    handlers.start("csv", *SETUP[1:-2], as_upload(copy, "copy.csv"), "", request=req("a"))
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


# ------------------------------------------------------------------------------ 6, 7, 9. load, events, coverage

def test_a_loaded_run_shows_its_real_step_history_and_a_checkpoint(handlers):
    from classroom import plots

    handlers.start(*SETUP, request=req("a"))
    runner = run_until(handlers, "a", 200)
    handlers.live("nonsaturating", -3.0, -2.0, 1, 0.0, False, request=req("a"))
    wait_until(lambda: runner.snapshot().events, timeout=10)
    run_until(handlers, "a", runner.snapshot().step + 100)
    handlers.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    path = handlers.save(request=req("a"))
    saved = runner.snapshot()

    status, *controls, lesson, _ = handlers.load(as_upload(path, "run.safetensors"), request=req("b"))
    loaded = handlers.manager.get("b").runner
    snap = loaded.snapshot()
    assert snap.state == "paused" and snap.step == saved.step
    assert f"step **{saved.step:,}**" in status and "Paused" in status and "Loaded" in status
    assert len(snap.history) == len(saved.history) and snap.events == saved.events
    assert [i.step for i in loaded.checkpoints.list()] == [saved.step], "rewindable to the loaded step"
    assert snap.frame is not None and snap.frame.step == saved.step, "a fresh look at G and D"
    assert "Only for datasets" not in str(plots.coverage_figure(snap).to_dict())
    assert lesson == "" and controls[6] == -2.0
    # Start with the loaded setup continues the loaded run from its step.
    handlers.start(*controls, None, lesson, request=req("b"))
    assert handlers.manager.get("b").runner is loaded
    wait_until(lambda: loaded.snapshot().step > saved.step + 20)
    assert loaded.snapshot().history[0, 0] == saved.history[0, 0], "the loaded history stays"


def test_after_reset_the_ring_shows_its_coverage_plot(handlers):
    from classroom import plots

    handlers.reset(*SETUP, request=req("a"))
    fig = plots.coverage_figure(handlers.manager.get("a").runner.snapshot()).to_dict()
    assert "Only for datasets" not in str(fig) and fig["data"], "ring8 has known modes"


def test_a_live_change_is_recorded_at_its_step(handlers):
    handlers.start(*SETUP, request=req("a"))
    runner = run_until(handlers, "a", 50)
    handlers.live("wgan-gp", -3.0, -3.0, 5, 0.0, False, request=req("a"))
    (step, text), = wait_until(lambda: runner.snapshot().events, timeout=10)
    assert step >= 50 and text == "loss → wgan-gp, k 1→5"


# ------------------------------------------------------------------------------ 10. friendliness

def test_status_explains_the_rate_in_effect_and_shows_small_quality_shares_honestly(handlers):
    from classroom.handlers import _fmt_percent
    from gan_core.config import default_config

    config = default_config("ring8", g_lr=1e-3, d_lr=1e-3, lr_decay_steps=100, device="cpu")
    session = handlers.manager.create("a", config)
    session.runner.step(100)
    wait_until(lambda: session.runner.snapshot().step == 100 and session.runner.snapshot().frame.step == 100)
    status = handlers.status(req("a"))
    assert "lr decay: now G 5.0e-5 · D 5.0e-5 (5% of the sliders' values, 5% by step 100)" in status
    assert "−log 4" not in status and "game value V(D,G)" in status
    assert _fmt_percent(0.28) == "0.3%" and _fmt_percent(0.04) == "0.04%" and _fmt_percent(95.2) == "95%"


def test_alert_text_and_fix_button_speak_plainly(handlers):
    from classroom import alerts

    handlers.start(*SETUP, request=req("a"))
    session = handlers.manager.get("a")
    alert = alerts.Alert(kind="oscillation", title="T", explanation="E.", suggestion="Lower both.",
                         fix={"d_lr": 1e-4}, fix_label="D's learning rate 0.001 → 0.0001")
    import classroom.handlers as h

    real_detect = h.detect
    h.detect = lambda snap: [alert]
    try:
        text, button = handlers._alerts(session, session.runner.snapshot())
    finally:
        h.detect = real_detect
    assert "*What to do:* Lower both." in text["value"] and "Try:" not in text["value"]
    assert button["value"] == "Apply fix: D's learning rate 0.001 → 0.0001"
    assert button["variant"] == "primary" and button["size"] == "lg" and button["visible"]


def test_csv_is_checked_on_upload_with_the_size_limit_stated(handlers, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("\n".join(f"{i},{i % 3}" for i in range(50)))
    handlers.check_csv(as_upload(good, "good.csv"))  # no error
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,four\n")
    with pytest.raises(gr.Error, match="cannot be used: line 2"):
        handlers.check_csv(as_upload(bad, "bad.csv"))
    huge = tmp_path / "huge.csv"
    huge.write_bytes(b"1,2\n" * 600_000)
    with pytest.raises(gr.Error, match="limit is 2 MB"):
        handlers.check_csv(as_upload(huge, "huge.csv"))


# ------------------------------------------------------------------------------ over HTTP, as the page does

def test_api_fresh_start_csv_check_and_loaded_run(tmp_path):
    from gradio_client import Client, handle_file

    from app_support import running_app

    with running_app() as (url, manager):
        client = Client(url, verbose=False)
        client.predict(*SETUP, api_name="/start")
        session = wait_until(lambda: manager.get(client.session_hash))
        wait_until(lambda: session.runner.snapshot().step > 100, timeout=30)
        status = client.predict(*with_(3, 9), api_name="/start")
        assert "New run: the setup changed (seed)" in status
        assert manager.get(client.session_hash).runner is not session.runner

        bad = tmp_path / "bad.csv"
        bad.write_text("x,y\n1,2\n3,four\n")
        with pytest.raises(Exception, match="line 3"):
            client.predict(handle_file(str(bad)), api_name="/check_csv")

        runner = manager.get(client.session_hash).runner
        wait_until(lambda: runner.snapshot().step > 100, timeout=30)
        client.predict(api_name="/pause")
        wait_until(lambda: runner.state() == "paused")
        saved = client.predict(api_name="/save")
        step = runner.snapshot().step
        other = Client(url, verbose=False)
        status, *_ = other.predict(handle_file(saved), api_name="/load")
        assert f"step **{step:,}**" in status and "Paused" in status
        loaded = manager.get(other.session_hash).runner
        assert len(loaded.snapshot().history) > 0 and loaded.checkpoints.list()[0].step == step
