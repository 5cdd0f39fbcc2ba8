"""Handler-level and API tests of app.py with tiny configs.

Handlers are called directly with a `gr.Request` carrying a session hash; the
API test launches the app in-process and drives it with `gradio_client`.
"""

from __future__ import annotations

import math
import threading

import gradio as gr
import pytest
import torch

from app_support import free_port, wait_until
from gan_core.sessions import SessionManager
from ui.handlers import Handlers

# dataset, size, batch, seed, loss, log10 G lr, log10 D lr, k, smoothing, two-sided, upload
SETUP = ["ring8", "small", 64, 0, "nonsaturating", -3.0, -3.0, 1, 0.0, False, None]
LIVE = ["nonsaturating", -3.0, -3.0, 1, 0.0, False]


def req(sid: str) -> gr.Request:
    return gr.Request(session_hash=sid)


@pytest.fixture
def handlers():
    torch.set_num_threads(1)
    manager = SessionManager(max_active=1, max_sessions=4)
    yield Handlers(manager)
    manager.release_all()
    assert not [t for t in threading.enumerate() if t.name.startswith("gan-")], "leaked training threads"


def steps_of(handlers, sid):
    return handlers.manager.get(sid).runner.snapshot().step


def test_start_trains_and_tick_draws_then_skips(handlers):
    status = handlers.start(*SETUP, request=req("a"))
    assert "Running" in status
    wait_until(lambda: steps_of(handlers, "a") > 20)
    handlers.pause(request=req("a"))
    wait_until(lambda: handlers.manager.get("a").runner.state() == "paused")
    first = handlers.tick(request=req("a"))
    assert "step" in first[0] and len(first) == 6
    samples = first[1].to_dict()
    assert samples["data"], "the samples figure has traces"
    second = handlers.tick(request=req("a"))  # nothing new since: every output skipped
    assert all(out == gr.skip() for out in second)


def test_live_change_applies_without_reset(handlers):
    handlers.start(*SETUP, request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") > 50)
    before = steps_of(handlers, "a")
    handlers.live("nonsaturating", -3.0, -2.0, 2, 0.1, False, request=req("a"))
    engine = handlers.manager.get("a").runner.engine
    wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2))
    assert engine.config.n_critic == 2 and engine.real_target == pytest.approx(0.9)
    assert steps_of(handlers, "a") >= before  # no reset


def test_bad_live_value_is_a_clear_error_and_changes_nothing(handlers):
    handlers.start(*SETUP, request=req("a"))
    before = handlers.manager.get("a").runner.config
    with pytest.raises(gr.Error, match="label_smoothing"):
        handlers.live("nonsaturating", -3.0, -3.0, 1, 0.7, False, request=req("a"))
    with pytest.raises(gr.Error, match="unknown loss"):
        handlers.live("bogus", -3.0, -3.0, 1, 0.0, False, request=req("a"))
    with pytest.raises(gr.Error, match="finite"):
        handlers.live("nonsaturating", float("nan"), -3.0, 1, 0.0, False, request=req("a"))
    assert handlers.manager.get("a").runner.config == before


def test_bad_setup_values_are_rejected(handlers):
    with pytest.raises(gr.Error, match="unknown dataset"):
        handlers.start("nope", *SETUP[1:], request=req("a"))
    with pytest.raises(gr.Error, match="batch_size"):
        handlers.start("ring8", "small", 3, *SETUP[3:], request=req("a"))
    with pytest.raises(gr.Error, match="Upload a CSV"):
        handlers.start("csv", *SETUP[1:], request=req("a"))
    assert handlers.manager.get("a") is None


def test_csv_upload_trains_and_bad_csv_says_why(handlers, tmp_path):
    good = tmp_path / "points.csv"
    good.write_text("x,y\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(100)))
    handlers.start("csv", *SETUP[1:-1], str(good), request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") > 5)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,four\n")
    with pytest.raises(gr.Error, match="line 2"):
        handlers.reset("csv", *SETUP[1:-1], str(bad), request=req("a"))
    assert steps_of(handlers, "a") > 5, "a rejected upload leaves the old run alone"


def test_pause_step_resume_reset(handlers):
    handlers.step(*SETUP, request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") == 1)
    handlers.step(*SETUP, request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") == 2)
    handlers.resume(request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") > 10)
    handlers.reset(*SETUP, request=req("a"))
    assert steps_of(handlers, "a") == 0
    assert handlers.manager.get("a").runner.state() == "idle"


def test_two_sessions_are_independent_and_the_second_waits(handlers):
    handlers.start(*SETUP, request=req("a"))
    status_b = handlers.start(*SETUP[:3], 7, *SETUP[4:], request=req("b"))
    assert "position 1" in status_b
    assert handlers.manager.get("b").runner.state() != "running"
    handlers.pause(request=req("a"))  # frees the only slot
    wait_until(lambda: handlers.manager.get("a").runner.state() == "paused")
    handlers.tick(request=req("b"))  # ticks admit waiting runs
    wait_until(lambda: steps_of(handlers, "b") > 5)
    a, b = handlers.manager.get("a").runner, handlers.manager.get("b").runner
    assert a is not b and a.config.seed == 0 and b.config.seed == 7


def test_unload_stops_and_frees_the_run(handlers):
    handlers.start(*SETUP, request=req("a"))
    runner = handlers.manager.get("a").runner
    handlers.unload(request=req("a"))
    assert handlers.manager.get("a") is None
    assert not runner.is_alive


def test_api_live_d_lr_change_via_gradio_client():
    """Launch the app in-process, drive it over HTTP like any API user."""
    from gradio_client import Client

    import app

    torch.set_num_threads(1)
    manager = SessionManager(max_active=2)
    demo = app.build_demo(manager)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        status = client.predict(*SETUP, api_name="/start")
        assert "Running" in status
        session = wait_until(lambda: manager.get(client.session_hash))
        wait_until(lambda: session.runner.snapshot().step > 30)
        client.predict(*LIVE[:2], -2.0, *LIVE[3:], api_name="/set_live")
        engine = session.runner.engine
        wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2))
        step_after_change = session.runner.snapshot().step
        wait_until(lambda: session.runner.snapshot().step > step_after_change + 30)
        assert session.runner.engine is engine, "the run was not reset"
        with pytest.raises(Exception, match="maximum"):
            client.predict(*LIVE[:2], 5.0, *LIVE[3:], api_name="/set_live")
        assert math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2), "bad input changed nothing"
        tick = client.predict(api_name="/tick")
        assert "step" in tick[0]
    finally:
        demo.close()
        manager.release_all()
