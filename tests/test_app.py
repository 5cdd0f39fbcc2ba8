"""The page's actions and its live channel, with tiny configs, and the app over HTTP.

Actions are called as Gradio calls them, with a `gr.Request` carrying a session hash; the
API tests launch the app in-process and drive it with `gradio_client` and plain HTTP.
"""

from __future__ import annotations

import math

import gradio as gr
import httpx
import pytest
import torch

from app_support import SETUP, as_upload, controls, frame, req, running_app, wait_until
from classroom.controls import Controls, LiveControls
from classroom.live import PLOT_NAMES
from classroom.share import share_link
from gan_core.config import default_config

LIVE = ["nonsaturating", -3.0, -3.0, 1, 0.0, False]


def steps_of(page, sid):
    return page.manager.get(sid).runner.snapshot().step


def test_start_trains_and_the_live_channel_draws_then_says_nothing_new(page):
    status = page.buttons.start(controls(), request=req("a"))
    assert "Running" in status
    wait_until(lambda: steps_of(page, "a") > 20)
    page.buttons.pause(request=req("a"))
    wait_until(lambda: page.manager.get("a").runner.state() == "paused")
    token = page.pages.get("a").token
    code, body, interval = page.live.poll(token, "")
    first = frame(page, "a") if code == 200 else None
    assert code == 200 and interval > 0
    assert set(PLOT_NAMES) <= set(first["parts"]) and "step" in first["parts"]["status"]
    assert first["parts"]["samples"]["data"], "the samples figure has traces"
    code, body, _ = page.live.poll(token, first["key"])
    assert code == 204 and body is None, "nothing new since: nothing built, nothing sent"
    page.buttons.resume(request=req("a"))
    wait_until(lambda: page.live.poll(token, first["key"])[0] == 200, what="new figures")


def test_live_change_applies_without_reset(page):
    page.buttons.start(controls(), request=req("a"))
    wait_until(lambda: steps_of(page, "a") > 50)
    before = steps_of(page, "a")
    page.buttons.live_change(LiveControls("nonsaturating", -3.0, -2.0, 2, 0.1, False), request=req("a"))
    engine = page.manager.get("a").runner.engine
    wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2 * engine.lr_scale(), rel_tol=2e-2))
    assert engine.config.n_critic == 2 and engine.real_target == pytest.approx(0.9)
    assert steps_of(page, "a") >= before  # no reset


def test_bad_live_value_is_a_clear_error_and_changes_nothing(page):
    page.buttons.start(controls(), request=req("a"))
    before = page.manager.get("a").runner.config
    with pytest.raises(gr.Error, match="label_smoothing"):
        page.buttons.live_change(LiveControls("nonsaturating", -3.0, -3.0, 1, 0.7, False), request=req("a"))
    with pytest.raises(gr.Error, match="unknown loss"):
        page.buttons.live_change(LiveControls("bogus", -3.0, -3.0, 1, 0.0, False), request=req("a"))
    with pytest.raises(gr.Error, match="finite"):
        page.buttons.live_change(LiveControls("nonsaturating", float("nan"), -3.0, 1, 0.0, False), request=req("a"))
    assert page.manager.get("a").runner.config == before


def test_wgan_gp_on_digits_needs_a_new_d_and_start_builds_one(page):
    """The engine's rule reaches the page: a live switch is refused with its message, and
    Start with WGAN-GP builds a new run whose D has no BatchNorm."""
    digits = ["digits", *SETUP[1:]]
    page.buttons.start(controls(digits), request=req("a"))
    page.buttons.pause(request=req("a"))
    first = page.manager.get("a").runner
    assert first.engine.config.d_batchnorm
    with pytest.raises(gr.Error, match="WGAN-GP needs a discriminator without BatchNorm"):
        page.buttons.live_change(LiveControls("wgan-gp", -3.0, -3.0, 1, 0.0, False), request=req("a"))
    assert first.config.loss == "nonsaturating"
    status = page.buttons.start(controls(digits, loss="wgan-gp"), request=req("a"))
    assert "New run" in status and "WGAN-GP needs a discriminator without BatchNorm" in status
    page.buttons.pause(request=req("a"))
    second = page.manager.get("a").runner
    assert second is not first
    assert second.config.loss == "wgan-gp" and not second.config.d_batchnorm
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in second.engine.D.modules())
    # That D takes any loss: switching live and pressing Start again continues the same run.
    page.buttons.live_change(LiveControls("hinge", -3.0, -3.0, 1, 0.0, False), request=req("a"))
    page.buttons.start(controls(digits, loss="hinge"), request=req("a"))
    page.buttons.pause(request=req("a"))
    assert page.manager.get("a").runner is second


def test_bad_setup_values_are_rejected(page):
    with pytest.raises(gr.Error, match="unknown dataset"):
        page.buttons.start(controls(dataset="nope"), request=req("a"))
    with pytest.raises(gr.Error, match="batch_size"):
        page.buttons.start(controls(batch_size=3), request=req("a"))
    with pytest.raises(gr.Error, match="Upload a CSV"):
        page.buttons.start(controls(dataset="csv"), request=req("a"))
    assert page.manager.get("a") is None


def test_csv_upload_trains_and_bad_csv_says_why(page, tmp_path):
    good = tmp_path / "points.csv"
    good.write_text("x,y\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(100)))
    page.buttons.upload_csv(as_upload(good, "points.csv"), request=req("a"))
    page.buttons.start(controls(dataset="csv"), request=req("a"))
    wait_until(lambda: steps_of(page, "a") > 5)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,four\n")
    with pytest.raises(gr.Error, match="line 2"):
        page.buttons.upload_csv(as_upload(bad, "bad.csv"), request=req("a"))
    page.buttons.reset(controls(dataset="csv"), request=req("a"))  # still the good points
    assert page.manager.get("a").runner.engine.data.points.shape[0] == 100, "a rejected upload keeps the old points"


def test_pause_step_resume_reset(page):
    page.buttons.step(controls(), request=req("a"))
    wait_until(lambda: steps_of(page, "a") == 1)
    page.buttons.step(controls(), request=req("a"))
    wait_until(lambda: steps_of(page, "a") == 2)
    page.buttons.resume(request=req("a"))
    wait_until(lambda: steps_of(page, "a") > 10)
    page.buttons.reset(controls(), request=req("a"))
    assert steps_of(page, "a") == 0
    assert page.manager.get("a").runner.state() == "idle"


def test_two_sessions_are_independent_and_the_second_waits(page):
    page.buttons.start(controls(), request=req("a"))
    status_b = page.buttons.start(controls(seed=7), request=req("b"))
    assert "position 1" in status_b
    assert page.manager.get("b").runner.state() != "running"
    page.buttons.pause(request=req("a"))  # frees the only slot
    wait_until(lambda: page.manager.get("a").runner.state() == "paused")
    page.manager.admit()  # the housekeeping thread's work
    wait_until(lambda: steps_of(page, "b") > 5)
    a, b = page.manager.get("a").runner, page.manager.get("b").runner
    assert a is not b and a.config.seed == 0 and b.config.seed == 7


def test_unload_stops_and_frees_the_run(page):
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    page.unload(request=req("a"))
    assert page.manager.get("a") is None
    assert not runner.is_alive


def test_api_live_d_lr_change_via_gradio_client():
    """Launch the app in-process, drive it over HTTP like any API user."""
    from gradio_client import Client

    with running_app(processes=0) as (url, server):
        manager = server.manager
        client = Client(url, verbose=False)
        status = client.predict(*SETUP, api_name="/start")
        assert "Running" in status
        session = wait_until(lambda: manager.get(client.session_hash))
        wait_until(lambda: session.runner.snapshot().step > 30)
        client.predict(*LIVE[:2], -2.0, *LIVE[3:], api_name="/set_live")
        engine = session.runner.engine
        wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2 * engine.lr_scale(), rel_tol=2e-2))
        step_after_change = session.runner.snapshot().step
        wait_until(lambda: session.runner.snapshot().step > step_after_change + 30)
        assert session.runner.engine is engine, "the run was not reset"
        with pytest.raises(Exception, match="maximum"):
            client.predict(*LIVE[:2], 5.0, *LIVE[3:], api_name="/set_live")
        assert math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2 * engine.lr_scale(), rel_tol=2e-2), "bad input changed nothing"
        token = client.predict(api_name="/open_page")[-1]
        live = httpx.get(f"{url}gan/live/{token}")
        assert live.status_code == 200 and "step" in live.json()["parts"]["status"]


# --- lessons, alerts, rewind, save/load, timelapse, share links ------------------------------------

def test_lesson_preset_loads_its_documented_configuration(page):
    from classroom.presets import PRESETS

    for name, preset in PRESETS.items():
        *values, lesson_text, upload, status = page.buttons.choose_lesson(name, request=req("a"))
        assert lesson_text["visible"] and preset.watch in lesson_text["value"] and "Press Start" in status
        assert values[-1] == name and upload["visible"] is False
        config = Controls(*values).config()
        # Fields without a control (packing, Adam betas, …) come from the preset.
        assert config == preset.config, name


def test_lesson_start_uses_preset_fields_without_controls(page):
    values = page.buttons.choose_lesson("oscillation", request=req("a"))[:11]
    page.buttons.start(Controls(*values), request=req("a"))
    config = page.manager.get("a").runner.config
    assert config.beta1 == 0.9 and config.dataset == "ring8_wide"


def test_share_link_round_trips_through_the_url(page):
    values = ["grid25", "large", 128, 42, "hinge", -2.5, -3.5, 3, 0.1, True, ""]
    link = share_link(Controls(*values), ["g_lr", "loss"], req("a"))
    assert link.startswith("http://") and "hide=g_lr%2Closs" in link
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(link).query))
    fake = gr.Request(session_hash="b")
    fake.query_params = query  # what Gradio fills in from the page URL
    out = page.open(fake)
    updates = out[:11]
    assert [u["value"] for u in updates] == values
    hidden = {name for name, u in zip(("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k",
                                       "smoothing", "two_sided", "lesson"), updates) if not u["visible"]}
    assert hidden == {"g_lr", "loss"}
    assert out[-1] == page.pages.get("b").token, "the page gets its live channel's token"


def test_malformed_share_link_falls_back_to_defaults(page):
    fake = gr.Request(session_hash="b")
    fake.query_params = {"dataset": "ring8", "batch": "-5", "g_lr": "oops"}
    out = page.open(fake)
    assert out[2]["value"] == default_config("ring8").batch_size  # the default batch, not the link's


def test_alert_fix_button_applies_the_suggested_change(page):
    values = page.buttons.choose_lesson("strong_d", request=req("a"))[:11]
    page.buttons.start(Controls(*values), request=req("a"))
    runner = page.manager.get("a").runner
    # The alerts' warm-up is 500 steps. A generous timeout: a hang guard, not a speed target.
    wait_until(lambda: runner.snapshot().step > 600, timeout=600)
    page.buttons.pause(request=req("a"))

    from classroom.live import fix_of

    fix = wait_until(lambda: fix_of(page.live.alerts_of(runner))[0], timeout=10)
    new_controls = page.buttons.apply_fix(request=req("a"))
    assert len(new_controls) == 6
    wait_until(lambda: all(getattr(runner.config, k) == v for k, v in fix.items()))


def test_rewind_save_load_and_timelapse(any_page, tmp_path):
    page = any_page
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 200)
    runner.checkpoint_now()
    menu = page.sync(req("a"))[2]
    assert menu["choices"], "the rewind menu lists checkpoints"
    oldest = menu["choices"][-1][1]
    page.buttons.rewind(oldest, request=req("a"))
    assert runner.snapshot().step == 0 and runner.state() == "paused"
    with pytest.raises(gr.Error, match="Cannot rewind"):
        page.buttons.rewind(9999, request=req("a"))

    page.buttons.resume(request=req("a"))
    wait_until(lambda: runner.snapshot().step > 50 and len(runner.timelapse) >= 2)
    gif = page.buttons.timelapse(request=req("a"))
    assert open(gif, "rb").read(6) in (b"GIF89a", b"GIF87a")
    path = page.buttons.save(request=req("a"))
    assert path.endswith(".safetensors") and "step" in path.rsplit("/", 1)[-1], "a file name that says what it is"
    status, *values, lesson_text = page.buttons.load(as_upload(path, "run.safetensors"), request=req("b"))
    loaded = page.manager.get("b").runner
    assert loaded.snapshot().step > 50 and loaded.state() == "paused" and values[0] == "ring8" and values[-1] == ""

    junk = tmp_path / "evil.safetensors"
    junk.write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle, not a run file
    with pytest.raises(gr.Error, match="Cannot load"):
        page.buttons.load(as_upload(junk, "evil.safetensors"), request=req("b"))
    assert page.manager.get("b").runner is loaded, "a rejected file leaves the current run alone"


def test_ab_compare_says_when_b_waits_in_the_queue(page):
    """One place to train (max_active 1): B queues behind A, and A's status line says so."""
    page.buttons.start_compare(controls(), LiveControls("nonsaturating", -3.0, -2.0, 1, 0.0, False), request=req("a"))
    assert page.manager.queue_position("a/B") == 1
    assert "Run B waits for a place to train</b> (position 1" in page.buttons.status("a")
    page.manager.max_active = 2
    page.manager.admit()
    wait_until(lambda: page.manager.get("a/B").runner.snapshot().step > 0)
    assert "Run B waits" not in page.buttons.status("a")
    page.buttons.pause(request=req("a"))


def test_ab_compare_runs_two_configs_from_the_same_seed(page):
    page.manager.max_active = 2
    page.buttons.start_compare(controls(), LiveControls("nonsaturating", -3.0, -2.0, 1, 0.0, False), request=req("a"))
    a, b = page.manager.get("a").runner, page.manager.get("a/B").runner
    assert b.config == a.config.with_live(d_lr=1e-2)
    # Same seed: identical initial weights (the step-0 checkpoints; the engines are training already).
    wait_until(lambda: len(a.checkpoints) and len(b.checkpoints))
    g0 = lambda r: r.checkpoints.get(r.checkpoints.list()[0].index).g_state
    assert g0(a).keys() == g0(b).keys() and all(torch.equal(g0(a)[k], g0(b)[k]) for k in g0(a))
    wait_until(lambda: a.snapshot().step > 20 and b.snapshot().step > 20)
    assert page.sync(req("a"))[3]["visible"] is True, "the A/B box shows"
    parts = frame(page, "a")["parts"]
    names = {t["name"] for t in parts["compare_losses"]["data"]}
    assert "D loss, A" in names and any(n.startswith("D loss, B (d_lr=0.01") for n in names)
    titles = [parts[n]["layout"]["title"]["text"] for n in ("compare_samples_a", "compare_samples_b")]
    assert titles[0].startswith("A: ") and titles[1].startswith("B (d_lr=0.01): "), "both runs' samples"
    page.buttons.pause(request=req("a"))
    wait_until(lambda: a.state() == "paused" and b.state() == "paused")
    page.unload(request=req("a"))
    assert page.manager.get("a/B") is None and not b.is_alive
