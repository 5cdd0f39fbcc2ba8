"""Handler-level tests of the lecture controls: speed (slow motion), drawing a dataset, and
(through gradio_client) the speed API. Tiny configs; see test_browser_lecture.py for the page."""

from __future__ import annotations


import gradio as gr
import numpy as np
import pytest

from app_support import SETUP, as_upload, controls, req, running_app, wait_until


@pytest.fixture
def page(make_page):
    return make_page(max_active=2)


def test_speed_set_before_start_holds_from_the_first_step_and_across_reset(page):
    page.buttons.set_speed("1", request=req("a"))
    status = page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    assert runner.speed_limit == 1.0
    wait_until(lambda: runner.snapshot().step >= 1)
    assert runner.snapshot().step <= 2 and "slow motion: 1/s" in page.buttons.status("a")
    page.buttons.reset(controls(), request=req("a"))
    assert page.manager.get("a").runner.speed_limit == 1.0, "a new run keeps the chosen speed"
    page.buttons.set_speed("max", request=req("a"))
    assert page.manager.get("a").runner.speed_limit is None
    assert "Running" in status and "slow motion" not in page.buttons.status("a")


def test_speed_change_acts_on_the_running_run(page):
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: runner.snapshot().step > 20)
    page.buttons.set_speed("10", request=req("a"))
    assert page.manager.get("a").runner is runner and runner.speed_limit == 10.0


@pytest.mark.parametrize("bad", ["0", "-5", "fast", "nan", "1e9", True])
def test_bad_speed_is_a_clear_error(page, bad):
    page.buttons.start(controls(), request=req("a"))
    page.buttons.set_speed("10", request=req("a"))
    with pytest.raises(gr.Error, match="Speed must be"):
        page.buttons.set_speed(bad, request=req("a"))
    assert page.manager.get("a").runner.speed_limit == 10.0


def _png(pixels: np.ndarray, name: str) -> str:
    """A picture as the Sketchpad (type="filepath") hands it over: a PNG in the upload cache."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return as_upload(buffer.getvalue(), name)


def sketch_with(alpha: np.ndarray) -> dict:
    layer = np.zeros((*alpha.shape, 4), np.uint8)
    layer[..., 3] = alpha
    composite = np.full((*alpha.shape, 3), 255, np.uint8)
    composite[alpha > 0] = 0
    return {"background": _png(np.full_like(composite, 255), "background.png"), "layers": [_png(layer, "layer.png")],
            "composite": _png(composite, "composite.png")}


def test_drawing_becomes_the_csv_dataset_and_start_trains_on_it(page):
    alpha = np.zeros((100, 100), np.uint8)
    alpha[20:30, 10:90] = 255  # a horizontal bar: wide in x, thin in y
    dataset, upload, status = page.buttons.use_drawing(sketch_with(alpha), request=req("a"))
    assert dataset == "csv" and "2,000 points" in status and upload["value"].endswith("my_drawing.csv")
    page.buttons.start(controls(dataset="csv"), request=req("a"))
    runner = page.manager.get("a").runner
    points = runner.engine.data.points.numpy()
    assert len(points) == 2000
    assert np.ptp(points[:, 0]) > 5 * np.ptp(points[:, 1]), "trains on the drawn bar"
    wait_until(lambda: runner.snapshot().step > 10)


def test_empty_or_missing_drawing_is_a_clear_message(page):
    with pytest.raises(gr.Error, match="canvas is empty"):
        page.buttons.use_drawing(sketch_with(np.zeros((50, 50), np.uint8)), request=req("a"))
    with pytest.raises(gr.Error, match="canvas is empty"):
        page.buttons.use_drawing(None, request=req("a"))
    with pytest.raises(gr.Error, match="canvas is empty"):
        page.buttons.use_drawing({"background": None, "layers": [], "composite": None}, request=req("a"))
    dot = np.zeros((50, 50), np.uint8)
    dot[10, 10] = 255
    with pytest.raises(gr.Error, match="larger shape"):
        page.buttons.use_drawing(sketch_with(dot), request=req("a"))
    assert page.manager.get("a") is None, "nothing was started"


def test_speed_through_the_api():
    from gradio_client import Client

    with running_app(processes=0) as (url, server):
        manager = server.manager
        client = Client(url, verbose=False)
        client.predict("1", api_name="/set_speed")
        client.predict(*SETUP, api_name="/start")
        (session,) = list(manager.sessions().values())
        assert session.runner.speed_limit == 1.0
        with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks the Radio
            client.predict("-3", api_name="/set_speed")
        client.predict("max", api_name="/set_speed")
        assert session.runner.speed_limit is None


def test_step_d_and_step_g_through_the_api():
    """Step D only while paused: D's update count +1 and G's weights unchanged; Step G only: the converse."""
    from gradio_client import Client

    weights = lambda net: [p.detach().clone() for p in net.parameters()]
    same = lambda a, b: all(x.equal(y) for x, y in zip(a, b, strict=True))
    with running_app(processes=0) as (url, server):
        manager = server.manager
        client = Client(url, verbose=False)
        client.predict(*SETUP, api_name="/step")  # builds the run, one step, paused
        (session,) = list(manager.sessions().values())
        runner = session.runner
        wait_until(lambda: runner.state() == "paused" and runner.snapshot().step == 1)
        engine = runner.engine
        g0, d0, d_count, g_count = weights(engine.G), weights(engine.D), engine.d_updates, engine.g_updates
        status = client.predict(*SETUP, api_name="/step_d")
        assert "D updated once" in status and "G unchanged" in status
        assert (engine.d_updates, engine.g_updates) == (d_count + 1, g_count)
        assert same(weights(engine.G), g0) and not same(weights(engine.D), d0)

        g1, d1 = weights(engine.G), weights(engine.D)
        status = client.predict(*SETUP, api_name="/step_g")
        assert "G updated once" in status and "D unchanged" in status
        assert (engine.d_updates, engine.g_updates) == (d_count + 1, g_count + 1)
        assert same(weights(engine.D), d1) and not same(weights(engine.G), g1)
        assert runner.state() == "paused" and runner.engine is engine


def test_timelapse_after_save_and_load_still_starts_at_step_0(any_page):
    page = any_page
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: len(runner.timelapse) >= 4, what="a few time-lapse frames")
    page.buttons.pause(request=req("a"))
    wait_until(lambda: runner.state() == "paused")
    saved_steps = [f.step for f in runner.timelapse.frames()]
    path = page.buttons.save(request=req("a"))
    page.buttons.load(as_upload(path, "run.safetensors"), request=req("b"))  # another visitor opens the file
    loaded = page.manager.get("b").runner
    assert loaded.snapshot().step >= saved_steps[-1]
    steps = [f.step for f in loaded.timelapse.frames()]
    assert steps[: len(saved_steps)] == saved_steps, "the whole run, from step 0"
    assert steps[-1] == loaded.snapshot().step  # then the fresh look at the loaded step
    gif_path = page.buttons.timelapse(request=req("b"))
    from PIL import Image

    assert Image.open(gif_path).n_frames == len(steps)


def test_timelapse_after_a_rewind_spans_the_whole_run(any_page):
    page = any_page
    page.buttons.start(controls(), request=req("a"))
    runner = page.manager.get("a").runner
    wait_until(lambda: len(runner.timelapse) >= 4, what="a few time-lapse frames")
    index = runner.checkpoint_now()
    rewind_step = next(i.step for i in runner.checkpoints.list() if i.index == index)
    wait_until(lambda: runner.timelapse.frames()[-1].step > rewind_step + 50, what="frames after the checkpoint")
    page.buttons.rewind(index, request=req("a"))
    page.buttons.resume(request=req("a"))
    wait_until(lambda: runner.timelapse.frames()[-1].step > rewind_step + 50, what="frames after the rewind")
    steps = [f.step for f in runner.timelapse.frames()]
    assert steps[0] == 0 and any(0 < s < rewind_step for s in steps), "the part before the rewind is kept"
    assert steps == sorted(set(steps)), "one timeline: the abandoned future is gone"
