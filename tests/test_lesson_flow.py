"""What a teacher does with lessons: Start after a changed setup begins a fresh run,
Start with the same setup resumes, choosing a lesson never leaks into the old run,
and each lesson's one-click fix is the one its text teaches (issue 14)."""

from __future__ import annotations


import gradio as gr
import pytest
import torch

from app_support import SETUP, as_upload, controls, req, wait_until
from classroom.controls import Controls, LiveControls
from classroom.presets import get_preset


def with_(index: int, value) -> Controls:
    args = list(SETUP)
    args[index] = value
    return Controls(*args)


def run_until(page, sid: str, steps: int):
    runner = page.manager.get(sid).runner
    wait_until(lambda: runner.snapshot().step >= steps, timeout=30)
    return runner


def lesson_setup(page, name: str) -> Controls:
    """The controls a lesson puts on the page."""
    return Controls.for_lesson(name)


# ------------------------------------------------------------------------------ 1. fresh starts

def test_start_with_an_unchanged_setup_resumes_the_paused_run(page):
    page.buttons.start(controls(), request=req("a"))
    runner = run_until(page, "a", 100)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    step = runner.snapshot().step
    status = page.buttons.start(with_(6, -2.5), request=req("a"))  # a live change only: same setup
    assert page.manager.get("a").runner is runner and "New run" not in status
    wait_until(lambda: runner.snapshot().step > step + 20)
    assert runner.config.d_lr == pytest.approx(10 ** -2.5, rel=0.02)


def test_start_after_choosing_another_lesson_begins_a_fresh_run(page):
    page.buttons.start(lesson_setup(page, "mode_collapse"), request=req("a"))
    old = run_until(page, "a", 300)
    status = page.buttons.start(lesson_setup(page, "strong_d"), request=req("a"))
    new = page.manager.get("a").runner
    assert new is not old and not old.is_alive
    assert "New run: the setup changed (lesson" in status
    assert new.config.loss == "minimax" and new.config.n_critic == 5
    snap = new.snapshot()
    assert snap.step < 300 and (len(snap.history) == 0 or snap.history[0, 0] <= 5), "curves start again"


@pytest.mark.parametrize("index, value, words", [
    (0, "ring8_wide", "dataset"), (1, "medium", "network size"), (2, 128, "batch size"), (3, 7, "seed"),
])
def test_start_after_any_setup_change_begins_a_fresh_run(page, index, value, words):
    page.buttons.start(controls(), request=req("a"))
    old = run_until(page, "a", 50)
    status = page.buttons.start(with_(index, value), request=req("a"))
    assert page.manager.get("a").runner is not old
    assert f"({words})" in status


def test_start_with_a_second_csv_trains_on_the_second_file(page, tmp_path):
    import math

    circle, line = tmp_path / "circle.csv", tmp_path / "line.csv"
    circle.write_text("\n".join(f"{math.cos(i / 10):.4f},{math.sin(i / 10):.4f}" for i in range(200)))
    line.write_text("\n".join(f"{i / 100:.4f},{2 * i / 100:.4f}" for i in range(200)))
    page.buttons.upload_csv(as_upload(circle, "circle.csv"), request=req("a"))
    page.buttons.start(controls(dataset="csv"), request=req("a"))
    old = run_until(page, "a", 20)
    page.buttons.upload_csv(as_upload(line, "line.csv"), request=req("a"))
    status = page.buttons.start(controls(dataset="csv"), request=req("a"))
    new = page.manager.get("a").runner
    assert new is not old and "CSV data" in status
    points = new.engine.data.points
    # The line y = 2x: every point's y is twice its x (up to the standardisation's shift).
    assert torch.corrcoef(points.T)[0, 1] > 0.999
    # The same file again (a fresh copy with the same content) resumes.
    page.buttons.pause(request=req("a"))
    copy = tmp_path / "line_again.csv"
    copy.write_bytes(line.read_bytes())
    page.buttons.upload_csv(as_upload(copy, "copy.csv"), request=req("a"))
    page.buttons.start(controls(dataset="csv"), request=req("a"))
    assert page.manager.get("a").runner is new


# ------------------------------------------------------------------------------ 2. choosing a lesson

def test_choosing_a_lesson_stages_it_and_never_touches_the_old_run(page):
    page.buttons.start(controls(), request=req("a"))
    old = run_until(page, "a", 100)
    old_config = old.config
    values = page.buttons.choose_lesson("mode_collapse", request=req("a"))[:11]
    staged = page.manager.get("a").runner
    assert staged is not old and not old.is_alive
    assert staged.snapshot().step == 0 and staged.state() == "idle"
    assert staged.config == get_preset("mode_collapse").config
    assert staged.snapshot().frame is not None, "the page shows G at step 0"
    assert "Press Start" in page.buttons.status("a")
    # Touching a slider now (the page sends every live control) changes the staged lesson only.
    page.buttons.live_change(Controls(*values).live, request=req("a"))
    assert old.config == old_config
    # Start runs the staged lesson: same setup, same run.
    status = page.buttons.start(Controls(*values), request=req("a"))
    assert page.manager.get("a").runner is staged and "New run" not in status
    wait_until(lambda: staged.snapshot().step > 10)


# ------------------------------------------------------------------------------ 6, 7, 9. load, events, coverage

def test_a_loaded_run_shows_its_real_step_history_and_a_checkpoint(page):
    from classroom import plots

    page.buttons.start(controls(), request=req("a"))
    runner = run_until(page, "a", 200)
    page.buttons.live_change(LiveControls("nonsaturating", -3.0, -2.0, 1, 0.0, False), request=req("a"))
    wait_until(lambda: runner.snapshot().events, timeout=10)
    run_until(page, "a", runner.snapshot().step + 100)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    path = page.buttons.save(request=req("a"))
    saved = runner.snapshot()

    status, *values, _ = page.buttons.load(as_upload(path, "run.safetensors"), request=req("b"))
    loaded = page.manager.get("b").runner
    snap = loaded.snapshot()
    assert snap.state == "paused" and snap.step == saved.step
    assert f"step <b>{saved.step:,}</b>" in status and "Paused" in status and "Loaded" in status
    assert len(snap.history) == len(saved.history) and snap.events == saved.events
    assert [i.step for i in loaded.checkpoints.list()] == [saved.step], "rewindable to the loaded step"
    assert snap.frame is not None and snap.frame.step == saved.step, "a fresh look at G and D"
    assert "Only for datasets" not in str(plots.coverage_figure(snap).to_dict())
    assert values[-1] == "" and values[6] == -2.0
    # Start with the loaded setup continues the loaded run from its step.
    page.buttons.start(Controls(*values), request=req("b"))
    assert page.manager.get("b").runner is loaded
    wait_until(lambda: loaded.snapshot().step > saved.step + 20)
    assert loaded.snapshot().history[0, 0] == saved.history[0, 0], "the loaded history stays"


def test_after_reset_the_ring_shows_its_coverage_plot(page):
    from classroom import plots

    page.buttons.reset(controls(), request=req("a"))
    fig = plots.coverage_figure(page.manager.get("a").runner.snapshot()).to_dict()
    assert "Only for datasets" not in str(fig) and fig["data"], "ring8 has known modes"


def test_a_live_change_is_recorded_at_its_step(page):
    page.buttons.start(controls(), request=req("a"))
    runner = run_until(page, "a", 50)
    page.buttons.live_change(LiveControls("wgan-gp", -3.0, -3.0, 5, 0.0, False), request=req("a"))
    (step, text), = wait_until(lambda: runner.snapshot().events, timeout=10)
    assert step >= 50 and text == "loss → wgan-gp, k 1→5"


# ------------------------------------------------------------------------------ 10. friendliness

def test_status_explains_the_rate_in_effect_and_shows_small_quality_shares_honestly(page):
    from classroom.live import fmt_percent
    from gan_core.config import default_config

    config = default_config("ring8", g_lr=1e-3, d_lr=1e-3, lr_decay_steps=100, device="cpu")
    session = page.manager.create("a", config)
    session.runner.step(100)
    wait_until(lambda: session.runner.snapshot().step == 100 and session.runner.snapshot().frame.step == 100)
    status = page.buttons.status("a")
    assert "lr decay: now G 5.0e-5 · D 5.0e-5 (5% of the sliders' values, 5% by step 100)" in status
    assert "−log 4" not in status and "game value V(D,G)" in status
    assert fmt_percent(0.28) == "0.3%" and fmt_percent(0.04) == "0.04%" and fmt_percent(95.2) == "95%"


def test_alert_text_and_fix_button_speak_plainly(page, monkeypatch):
    from classroom import alerts

    import classroom.live as live

    alert = alerts.Alert(kind="oscillation", title="T", explanation="E.", suggestion="Lower both.",
                         fix={"d_lr": 1e-4}, fix_label="D's learning rate 0.001 → 0.0001")
    monkeypatch.setattr(live, "detect", lambda snap: [alert])  # the run's frames read it (on threads: here)
    page.buttons.start(controls(), request=req("a"))
    text, button, *_ = page.sync(req("a"))
    assert "*What to do:* Lower both." in text["value"] and "Try:" not in text["value"]
    assert button["value"] == "Apply fix: D's learning rate 0.001 → 0.0001"
    assert button["variant"] == "primary" and button["size"] == "lg" and button["visible"]


def test_csv_is_checked_on_upload_with_the_size_limit_stated(page, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("\n".join(f"{i},{i % 3}" for i in range(50)))
    page.buttons.upload_csv(as_upload(good, "good.csv"), request=req("a"))  # no error
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,four\n")
    with pytest.raises(gr.Error, match="cannot be used: line 2"):
        page.buttons.upload_csv(as_upload(bad, "bad.csv"), request=req("a"))
    huge = tmp_path / "huge.csv"
    huge.write_bytes(b"1,2\n" * 600_000)
    with pytest.raises(gr.Error, match="limit is 2 MB"):
        page.buttons.upload_csv(as_upload(huge, "huge.csv"), request=req("a"))


# ------------------------------------------------------------------------------ over HTTP, as the page does

def test_api_fresh_start_csv_check_and_loaded_run(tmp_path):
    from gradio_client import Client, handle_file

    from app_support import running_app

    with running_app() as (url, server):
        manager = server.manager
        client = Client(url, verbose=False)
        client.predict(*SETUP, api_name="/start")
        session = wait_until(lambda: manager.get(client.session_hash))
        wait_until(lambda: session.runner.snapshot().step > 100, timeout=30)
        status = client.predict(*with_(3, 9).values(), api_name="/start")
        assert "New run: the setup changed (seed)" in status
        assert manager.get(client.session_hash).runner is not session.runner

        bad = tmp_path / "bad.csv"
        bad.write_text("x,y\n1,2\n3,four\n")
        with pytest.raises(Exception, match="line 3"):
            client.predict(handle_file(str(bad)), api_name="/upload_csv")

        runner = manager.get(client.session_hash).runner
        wait_until(lambda: runner.snapshot().step > 100, timeout=30)
        client.predict(api_name="/pause")
        wait_until(lambda: runner.state() == "paused")
        saved = client.predict(api_name="/save")
        step = runner.snapshot().step
        other = Client(url, verbose=False)
        status, *_ = other.predict(handle_file(saved), api_name="/load")
        assert f"step <b>{step:,}</b>" in status and "Paused" in status
        loaded = manager.get(other.session_hash).runner
        assert len(loaded.snapshot().history) > 0 and loaded.checkpoints.list()[0].step == step


def test_a_lesson_link_then_step_d_then_start_keeps_the_run(page):
    """A page opened on ?lesson=…: Step D only builds the lesson's run, and Start then continues it
    (Step D only used to build it without the lesson, so Start said "setup changed (lesson)")."""
    fake = gr.Request(session_hash="a")
    fake.query_params = {"lesson": "mode_collapse"}
    values = [u["value"] for u in page.open(fake)[:11]]
    assert values[-1] == "mode_collapse"
    page.buttons.step_d(Controls(*values), request=req("a"))
    runner = page.manager.get("a").runner
    status = page.buttons.start(Controls(*values), request=req("a"))
    assert page.manager.get("a").runner is runner and "New run" not in status
