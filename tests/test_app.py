"""Handler-level and API tests of app.py with tiny configs.

Handlers are called directly with a `gr.Request` carrying a session hash; the
API test launches the app in-process and drives it with `gradio_client`.
"""

from __future__ import annotations

import json
import math

import gradio as gr

from gan_core.config import default_config
import pytest
import torch

from app_support import SETUP, as_upload, req, running_app, wait_until
from classroom import liveplot
from classroom.handlers import COMPARE_PLOTS, PLOT_NAMES, TICK_OUTPUTS, Controls
PLOTS = {*PLOT_NAMES, *COMPARE_PLOTS}
LIVE = ["nonsaturating", -3.0, -3.0, 1, 0.0, False]




def steps_of(handlers, sid):
    return handlers.manager.get(sid).runner.snapshot().step


def test_start_trains_and_tick_draws_then_skips(handlers):
    status = handlers.start(*SETUP, request=req("a"))
    assert "Running" in status
    wait_until(lambda: steps_of(handlers, "a") > 20)
    handlers.pause(request=req("a"))
    wait_until(lambda: handlers.manager.get("a").runner.state() == "paused")
    first = handlers.tick(request=req("a"))
    assert "step" in first[0] and len(first) == len(TICK_OUTPUTS)
    samples = json.loads(first[TICK_OUTPUTS.index("samples")])
    assert samples["data"], "the samples figure has traces"
    second = handlers.tick(request=req("a"))  # nothing new since: every output skipped
    # Live plots are skipped with an empty value (gr.skip() would build a component per plot).
    assert all(out == (liveplot.UNCHANGED if name in PLOTS else gr.skip()) for name, out in zip(TICK_OUTPUTS, second))


def test_live_change_applies_without_reset(handlers):
    handlers.start(*SETUP, request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") > 50)
    before = steps_of(handlers, "a")
    handlers.live("nonsaturating", -3.0, -2.0, 2, 0.1, False, request=req("a"))
    engine = handlers.manager.get("a").runner.engine
    wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2 * engine.lr_scale(), rel_tol=2e-2))
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


def test_wgan_gp_on_digits_needs_a_new_d_and_start_builds_one(handlers):
    """The engine's rule reaches the page: a live switch is refused with its message, and
    Start with WGAN-GP builds a new run whose D has no BatchNorm."""
    digits = ["digits", *SETUP[1:]]
    handlers.start(*digits, request=req("a"))
    handlers.pause(request=req("a"))
    first = handlers.manager.get("a").runner
    assert first.engine.config.d_batchnorm
    with pytest.raises(gr.Error, match="WGAN-GP needs a discriminator without BatchNorm"):
        handlers.live("wgan-gp", -3.0, -3.0, 1, 0.0, False, request=req("a"))
    assert first.config.loss == "nonsaturating"
    status = handlers.start("digits", *SETUP[1:4], "wgan-gp", *SETUP[5:], request=req("a"))
    assert "New run" in status and "WGAN-GP needs a discriminator without BatchNorm" in status
    handlers.pause(request=req("a"))
    second = handlers.manager.get("a").runner
    assert second is not first
    assert second.config.loss == "wgan-gp" and not second.config.d_batchnorm
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in second.engine.D.modules())
    # That D takes any loss: switching live and pressing Start again continues the same run.
    handlers.live("hinge", -3.0, -3.0, 1, 0.0, False, request=req("a"))
    handlers.start("digits", *SETUP[1:4], "hinge", *SETUP[5:], request=req("a"))
    handlers.pause(request=req("a"))
    assert handlers.manager.get("a").runner is second


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
    handlers.start("csv", *SETUP[1:-2], as_upload(good, "points.csv"), "", request=req("a"))
    wait_until(lambda: steps_of(handlers, "a") > 5)
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,four\n")
    with pytest.raises(gr.Error, match="line 2"):
        handlers.reset("csv", *SETUP[1:-2], as_upload(bad, "bad.csv"), "", request=req("a"))
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

    with running_app(processes=0) as (url, manager):
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
        tick = client.predict(api_name="/tick")
        assert "step" in tick[0]


# --- lessons, alerts, rewind, save/load, timelapse, share links ------------------------------------

def test_lesson_preset_loads_its_documented_configuration(handlers):
    from classroom.presets import PRESETS

    for name, preset in PRESETS.items():
        *values, lesson_text = handlers.choose_lesson(name, request=req("a"))
        assert lesson_text["visible"] and preset.watch in lesson_text["value"]
        config = Controls(*values, lesson=name).config()
        # Fields without a control (packing, Adam betas, …) come from the preset.
        assert config == preset.config, name


def test_lesson_start_uses_preset_fields_without_controls(handlers):
    values = handlers.choose_lesson("oscillation", request=req("a"))[:-1]
    handlers.start(*values, None, "oscillation", request=req("a"))
    config = handlers.manager.get("a").runner.config
    assert config.beta1 == 0.9 and config.dataset == "ring8_wide"


def test_share_link_round_trips_through_the_url(handlers):
    values = ["grid25", "large", 128, 42, "hinge", -2.5, -3.5, 3, 0.1, True]
    link = handlers.share_link("", *values, ["g_lr", "loss"], request=req("a"))
    assert link.startswith("http://") and "hide=g_lr%2Closs" in link
    from urllib.parse import parse_qsl, urlsplit

    query = dict(parse_qsl(urlsplit(link).query))
    fake = gr.Request(session_hash="b")
    fake.query_params = query  # what Gradio fills in from the page URL
    out = handlers.on_load(fake)
    updates, lesson = out[:10], out[10]
    assert [u["value"] for u in updates] == values
    hidden = {name for name, u in zip(("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k",
                                       "smoothing", "two_sided"), updates) if not u["visible"]}
    assert hidden == {"g_lr", "loss"} and lesson["visible"]


def test_malformed_share_link_falls_back_to_defaults(handlers):
    fake = gr.Request(session_hash="b")
    fake.query_params = {"dataset": "ring8", "batch": "-5", "g_lr": "oops"}
    out = handlers.on_load(fake)
    assert out[2]["value"] == default_config("ring8").batch_size  # the default batch, not the link's


def test_alert_fix_button_applies_the_suggested_change(handlers):
    values = handlers.choose_lesson("strong_d", request=req("a"))[:-1]
    handlers.start(*values, None, "strong_d", request=req("a"))
    runner = handlers.manager.get("a").runner
    # The alerts' warm-up is 500 steps. A generous timeout: a hang guard, not a speed target.
    wait_until(lambda: runner.snapshot().step > 600, timeout=600)
    handlers.pause(request=req("a"))

    def alerted():
        handlers.tick(request=req("a"))
        return handlers.manager.get("a").extras.get("fix")

    fix = wait_until(alerted, timeout=10)
    new_controls = handlers.apply_fix(request=req("a"))
    assert len(new_controls) == 6
    wait_until(lambda: all(getattr(runner.config, k) == v for k, v in fix.items()))


def test_rewind_save_load_and_timelapse(any_handlers, tmp_path):
    handlers = any_handlers
    handlers.start(*SETUP, request=req("a"))
    runner = handlers.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 200)
    runner.checkpoint_now()
    out = handlers.tick(request=req("a"))
    menu = out[TICK_OUTPUTS.index("checkpoint_menu")]
    assert menu["choices"], "the rewind menu lists checkpoints"
    oldest = menu["choices"][-1][1]
    handlers.rewind(oldest, request=req("a"))
    assert runner.snapshot().step == 0 and runner.state() == "paused"
    with pytest.raises(gr.Error, match="Cannot rewind"):
        handlers.rewind(9999, request=req("a"))

    handlers.resume(request=req("a"))
    wait_until(lambda: runner.snapshot().step > 50 and len(runner.timelapse) >= 2)
    gif = handlers.timelapse(request=req("a"))
    assert open(gif, "rb").read(6) in (b"GIF89a", b"GIF87a")
    path = handlers.save(request=req("a"))
    status, *controls, lesson, _ = handlers.load(as_upload(path, "run.safetensors"), request=req("b"))
    loaded = handlers.manager.get("b").runner
    assert loaded.snapshot().step > 50 and loaded.state() == "paused" and controls[0] == "ring8"

    junk = tmp_path / "evil.safetensors"
    junk.write_bytes(b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle, not a run file
    with pytest.raises(gr.Error, match="Cannot load"):
        handlers.load(as_upload(junk, "evil.safetensors"), request=req("b"))
    assert handlers.manager.get("b").runner is loaded, "a rejected file leaves the current run alone"


def test_ab_compare_runs_two_configs_from_the_same_seed(handlers):
    handlers.manager.max_active = 2
    handlers.start_compare(*SETUP, "nonsaturating", -3.0, -2.0, 1, 0.0, request=req("a"))
    a, b = handlers.manager.get("a").runner, handlers.manager.get("a/B").runner
    assert b.config == a.config.with_live(d_lr=1e-2)
    # Same seed: identical initial weights (the step-0 checkpoints; the engines are training already).
    wait_until(lambda: len(a.checkpoints) and len(b.checkpoints))
    g0 = lambda r: r.checkpoints.get(r.checkpoints.list()[0].index).g_state
    assert g0(a).keys() == g0(b).keys() and all(torch.equal(g0(a)[k], g0(b)[k]) for k in g0(a))
    wait_until(lambda: a.snapshot().step > 20 and b.snapshot().step > 20)
    out = handlers.tick(request=req("a"))
    assert out[TICK_OUTPUTS.index("compare_box")]["visible"] is True
    fig = json.loads(out[TICK_OUTPUTS.index("compare_losses")])
    names = {t["name"] for t in fig["data"]}
    assert "D loss, A" in names and any(n.startswith("D loss, B (d_lr=0.01") for n in names)
    titles = [json.loads(out[TICK_OUTPUTS.index(n)])["layout"]["title"]["text"]
              for n in ("compare_samples_a", "compare_samples_b")]
    assert titles[0].startswith("A: ") and titles[1].startswith("B (d_lr=0.01): "), "both runs' samples"
    handlers.pause(request=req("a"))
    wait_until(lambda: a.state() == "paused" and b.state() == "paused")
    handlers.unload(request=req("a"))
    assert handlers.manager.get("a/B") is None and not b.is_alive
