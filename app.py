"""GAN Classroom: a Gradio page to watch a GAN learn and change it while it runs.

Layout first, then event wiring, then launch (Gradio's demo style). All logic
lives in `gan_core` (the engine) and `ui.handlers` (the callbacks).
Run: `python app.py` → http://127.0.0.1:7860
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from classroom.sessions import TICK_S, SessionManager, configure_threads  # noqa: E402
from classroom import liveplot, overview, plots, text  # noqa: E402
from classroom.uploads import MAX_UPLOAD_BYTES  # noqa: E402
from classroom.handlers import (  # noqa: E402
    DATASET_CHOICES, HIDEABLE, LOSS_CHOICES, PRESET_CHOICES, SIZE_CHOICES, SPEED_CHOICES, Handlers, defaults_for,
)

CSS = """
.gradio-container {font-size: 16px;}
#status {font-size: 17px; min-height: 3.2em;}
/* Large text for the back row: Gradio's own size variables, scaled ~1.3x (the plots scale
   their fonts in liveplot.py; the overview graph is an SVG that scales with its width). */
.gan-large .gradio-container {font-size: 21px;
  --text-xxs: 12px; --text-xs: 14px; --text-sm: 17px; --text-md: 19px; --text-lg: 22px;
  --text-xl: 27px; --text-xxl: 32px; --block-label-text-size: 17px; --block-info-text-size: 16px;
  --block-title-text-size: 19px; --input-text-size: 19px; --button-large-text-size: 21px;
  --button-small-text-size: 18px; --section-header-text-size: 19px; --checkbox-label-text-size: 18px;}
.gan-large #status {font-size: 24px;}
""" + overview.OVERVIEW_CSS
# Runs in the page when the toggle changes: CSS class for Gradio's text, an event for the plots.
LARGE_TEXT_JS = """(on) => { document.documentElement.classList.toggle('gan-large', on);
  window.ganTextScale = on ? 1.3 : 1; window.dispatchEvent(new Event('gan-text-scale')); return []; }"""


def build_demo(manager: SessionManager | None = None) -> gr.Blocks:
    handlers = Handlers(manager or SessionManager())
    liveplot.serve_plotly_js()
    blank = plots.placeholders()
    loss0, g0, d0, k0, s0, two0, batch0 = defaults_for("ring8")
    seed0 = 0

    with gr.Blocks(title="GAN Classroom") as demo:
        with gr.Row():
            with gr.Column(scale=5):
                gr.Markdown(text.INTRO)
            with gr.Column(scale=1, min_width=220):
                large_text = gr.Checkbox(False, label="Large text (for the back row)", elem_id="large-text")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=330):
                lesson = gr.Dropdown(PRESET_CHOICES, value="", label="Lesson",
                                     info="One click sets up a classic GAN lesson; then press Start.")
                lesson_text = gr.Markdown(visible=False, elem_id="lesson-text")
                with gr.Group():
                    gr.Markdown("### 1 · Setup")
                    dataset = gr.Dropdown(DATASET_CHOICES, value="ring8", label="Dataset",
                                          info="What G must learn to imitate.")
                    upload = gr.File(label="Your 2-D points (.csv: x,y per line, at most 2 MB)", file_types=[".csv", ".txt"],
                                     type="filepath", visible=False)
                    size = gr.Radio(SIZE_CHOICES, value="small", label="Network size",
                                    info="Hidden units of G and D (small is fastest).")
                    batch = gr.Slider(16, 1024, value=batch0, step=16, label="Batch size")
                    seed = gr.Number(value=seed0, precision=0, minimum=0, maximum=2**31 - 1, label="Seed")
                with gr.Accordion("Draw your own data", open=False):
                    sketch = gr.Sketchpad(label="Paint a shape: G will learn to draw it", canvas_size=(400, 400), type="filepath",
                                          height=380, layers=False, elem_id="sketch",
                                          brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=5))
                    drawing_btn = gr.Button("Use my drawing as the data")
                with gr.Row():
                    start_btn = gr.Button("Start", variant="primary")
                    pause_btn = gr.Button("Pause")
                    resume_btn = gr.Button("Resume")
                with gr.Row():
                    step_btn = gr.Button("Step")
                    reset_btn = gr.Button("Reset", variant="stop")
                with gr.Row():  # GAN Lab's per-network steps, one update of one player
                    step_d_btn = gr.Button("Step D only", min_width=100)
                    step_g_btn = gr.Button("Step G only", min_width=100)
                speed = gr.Radio(SPEED_CHOICES, value="max", label="Speed",
                                 info="Slow motion for a lecture: at 10 or 1 step/s every step is drawn.")
                with gr.Group():
                    gr.Markdown("### 2 · Live controls (act on the running GAN)")
                    loss = gr.Dropdown(LOSS_CHOICES, value=loss0, label="Loss")
                    g_lr = gr.Slider(-5, -1, value=g0, step=0.01, label="G learning rate (log10)",
                                     info="−3 means 0.001. Most setups decay both rates late in a run: "
                                          "the status line shows the rate in effect now.")
                    d_lr = gr.Slider(-5, -1, value=d0, step=0.01, label="D learning rate (log10)")
                    k = gr.Slider(1, 10, value=k0, step=1, label="D steps per G step (k)")
                    smoothing = gr.Slider(0.0, 0.45, value=s0, step=0.05, label="Label smoothing",
                                          info="0.1 trains D towards 0.9 on real data.")
                    two_sided = gr.Checkbox(value=two0, label="Two-sided smoothing (fake target = smoothing too)")
                with gr.Accordion("What do these controls do?", open=False):
                    gr.Markdown(text.CONTROLS_HELP)
            with gr.Column(scale=3):
                status = gr.Markdown("**Ready.** Choose a dataset and press **Start**.", elem_id="status")
                alerts = gr.Markdown(visible=False, elem_id="alerts")
                fix_btn = gr.Button("Apply fix", visible=False, variant="secondary", size="sm")
                with gr.Accordion("Model overview (live numbers; the network that moved is highlighted)",
                                  open=True):
                    overview_graph = gr.HTML(overview.overview_svg(None), elem_id="overview",
                                             apply_default_css=False, js_on_load=None)
                with gr.Row():
                    samples_plot = liveplot.live_plot("samples-plot", blank["samples"])
                    hist_plot = liveplot.live_plot("hist-plot", blank["d_hist"])
                with gr.Row():
                    loss_plot = liveplot.live_plot("loss-plot", blank["losses"])
                    means_plot = liveplot.live_plot("means-plot", blank["d_means"])
                coverage_plot = liveplot.live_plot("coverage-plot", blank["coverage"])
                with gr.Column(visible=False) as compare_box:  # A/B: samples and coverage of both runs
                    with gr.Row():
                        compare_samples_a = liveplot.live_plot("compare-samples-a")
                        compare_samples_b = liveplot.live_plot("compare-samples-b")
                    with gr.Row():
                        compare_losses = liveplot.live_plot("compare-plot")
                        compare_coverage = liveplot.live_plot("compare-coverage")
                with gr.Accordion("A/B compare: run a second GAN beside this one", open=False):
                    gr.Markdown("Run **B** starts from the same seed, weights and noise as **A** (the controls "
                                "on the left) with the changes below; both loss curves share one plot.")
                    with gr.Row():
                        b_loss = gr.Dropdown(LOSS_CHOICES, value=loss0, label="B: loss")
                        b_k = gr.Slider(1, 10, value=k0, step=1, label="B: D steps per G step (k)")
                        b_smoothing = gr.Slider(0.0, 0.45, value=s0, step=0.05, label="B: label smoothing")
                    with gr.Row():
                        b_g_lr = gr.Slider(-5, -1, value=g0, step=0.01, label="B: G learning rate (log10)")
                        b_d_lr = gr.Slider(-5, -1, value=d0, step=0.01, label="B: D learning rate (log10)")
                    with gr.Row():
                        compare_btn = gr.Button("Start A/B", variant="primary")
                        stop_compare_btn = gr.Button("Close B")
                with gr.Accordion("How to read these plots", open=False):
                    gr.Markdown(text.PLOTS_HELP)
                with gr.Accordion("Rewind, save, timelapse and share", open=False):
                    with gr.Row():
                        checkpoint = gr.Dropdown([], label="Checkpoints (one every 10 s)", scale=3)
                        rewind_btn = gr.Button("Rewind to checkpoint", scale=1)
                    with gr.Row():
                        save_btn = gr.Button("Save run (.safetensors)")
                        saved_file = gr.File(label="Saved run", interactive=False)
                        load_file = gr.File(label="Load a saved run", file_types=[".safetensors"], type="filepath")
                    with gr.Row():
                        gif_btn = gr.Button("Make timelapse GIF")
                        gif_file = gr.File(label="Timelapse", interactive=False)
                    with gr.Row():
                        hide = gr.CheckboxGroup(list(HIDEABLE), label="Teacher mode: hide these controls in the link")
                        share_btn = gr.Button("Make share link")
                    share_url = gr.Textbox(label="Link to this setup", buttons=["copy"], interactive=False)
        timer = gr.Timer(TICK_S)  # slower when many pages are open (sessions.PageTicks)

        # --- wiring --------------------------------------------------------------------------
        setup = [dataset, size, batch, seed, loss, g_lr, d_lr, k, smoothing, two_sided, upload, lesson]
        controls = [dataset, size, batch, seed, loss, g_lr, d_lr, k, smoothing, two_sided]
        live = [loss, g_lr, d_lr, k, smoothing, two_sided]
        plots_out = [samples_plot, hist_plot, loss_plot, means_plot, coverage_plot]
        fast = dict(show_progress="hidden", concurrency_limit=None)

        # .input fires on user actions only: a lesson or a shared link sets several controls at
        # once, and must not have them overwritten by dataset defaults or sent as live changes.
        dataset.input(
            lambda name: (gr.update(visible=name == "csv"), *defaults_for(name)),
            dataset, [upload, loss, g_lr, d_lr, k, smoothing, two_sided, batch], **fast,
        )
        start_btn.click(handlers.start, setup, status, api_name="start", **fast)
        pause_btn.click(handlers.pause, None, status, api_name="pause", **fast)
        resume_btn.click(handlers.resume, None, status, api_name="resume", **fast)
        step_btn.click(handlers.step, setup, status, api_name="step", **fast)
        drawing_btn.click(handlers.use_drawing, sketch, [dataset, upload, status], api_name="use_drawing", **fast)
        step_d_btn.click(handlers.step_d, setup, status, api_name="step_d", **fast)
        step_g_btn.click(handlers.step_g, setup, status, api_name="step_g", **fast)
        speed.input(handlers.set_speed, speed, status, api_name="set_speed", **fast)
        reset_btn.click(handlers.reset, setup, status, api_name="reset", **fast)
        for control in live:
            control.input(handlers.live, live, status, api_name=False, trigger_mode="always_last", **fast)
        gr.Button(visible=False).click(handlers.live, live, status, api_name="set_live", **fast)
        server_json = gr.JSON(visible=False)
        gr.Button(visible=False).click(handlers.server_stats, None, server_json, api_name="server_stats", **fast)
        compare_out = [compare_box, compare_samples_a, compare_samples_b, compare_losses, compare_coverage]
        timer.tick(handlers.tick, None, [status, overview_graph, *plots_out, alerts, fix_btn, checkpoint, *compare_out, timer],
                   api_name="tick", **fast)
        compare_btn.click(handlers.start_compare, [*setup, b_loss, b_g_lr, b_d_lr, b_k, b_smoothing], status,
                          api_name="start_compare", **fast)
        stop_compare_btn.click(handlers.stop_compare, None, compare_box, api_name="stop_compare", **fast)
        large_text.change(None, large_text, None, js=LARGE_TEXT_JS)
        lesson.input(handlers.choose_lesson, lesson, [*controls, lesson_text], api_name="lesson", **fast)
        fix_btn.click(handlers.apply_fix, None, live, api_name="apply_fix", **fast)
        rewind_btn.click(handlers.rewind, checkpoint, status, api_name="rewind", **fast)
        save_btn.click(handlers.save, None, saved_file, api_name="save", **fast)
        load_file.upload(handlers.load, load_file, [status, *controls, lesson, lesson_text], api_name="load", **fast)
        gif_btn.click(handlers.timelapse, None, gif_file, api_name="timelapse", concurrency_limit=2,
                      show_progress="minimal")
        share_btn.click(handlers.share_link, [lesson, *controls, hide], share_url, api_name="share_link", **fast)
        checkpoint.input(handlers.pick_checkpoint, checkpoint, None, api_name=False, **fast)
        b_controls = [b_loss, b_g_lr, b_d_lr, b_k, b_smoothing]  # hidden with their A control (teacher mode)
        upload.upload(handlers.check_csv, upload, None, api_name="check_csv", **fast)
        demo.load(handlers.on_load, None, [*controls, lesson, lesson_text, upload, *b_controls], api_name=False,
                  **fast)
        demo.unload(handlers.unload)
    demo.handlers = handlers  # for tests and the load benchmark
    return demo


demo = build_demo()

if __name__ == "__main__":
    configure_threads()
    demo.handlers.manager.start()  # the trainer processes, up before the first visitor presses Start
    try:
        demo.launch(css=CSS, max_file_size=MAX_UPLOAD_BYTES)
    finally:
        demo.handlers.manager.close()
