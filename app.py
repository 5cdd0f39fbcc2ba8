"""GAN Classroom: a Gradio page to watch a GAN learn and change it while it runs.

Layout first, then event wiring, then launch (Gradio's demo style). Everything the page does
lives in `classroom` (`classroom.page.Page`: the actions, the live channel, the page's state);
this file only places components and connects them.
Run: `python app.py` → http://127.0.0.1:7860
"""

from __future__ import annotations

import gc
import os

import gradio as gr

from classroom import classview, liveplot, overview, plots, text
from classroom.classbuttons import experiment_form, lesson_settings
from classroom.classes import NAME_CHARS
from classroom.controls import (
    DATASET_CHOICES,
    LOSS_CHOICES,
    PRESET_CHOICES,
    SIZE_CHOICES,
    SPEED_CHOICES,
    Controls,
    defaults_for,
)
from classroom.buttons import blank_canvas
from classroom.experiment import PARAMETER_CHOICES, PARAMETERS
from classroom.framework import quieten_idle_queue
from classroom.live import LIVE_JS, READY
from classroom.page import HIDE_CHOICES, Page
from classroom.sessions import SessionManager, configure_threads
from classroom.uploads import MAX_UPLOAD_BYTES

CSS = """
.gradio-container {font-size: 16px;}
#intro h1 {font-size: 28px; margin: 0 0 0.3em;}
#intro p {font-size: 15px; line-height: 1.45;}
#status {font-size: 17px; min-height: 3.2em;}
#status .gan-note {margin-top: 0.4em; padding-left: 0.6em; border-left: 3px solid #999;}
/* At 1280x720 D's surface and histograms fit under the status line: they take the window's height
   left there, at most their figures' own height (a browser test measures it, in both text sizes). */
.live-plot.fit-height {height: clamp(340px, calc(100vh - 160px), 500px);}
/* Large text for the back row: Gradio's own size variables, scaled ~1.3x (the plots scale
   their fonts in liveplot.py; the overview graph is an SVG that scales with its width). */
.gan-large .gradio-container {font-size: 21px;
  --text-xxs: 12px; --text-xs: 14px; --text-sm: 17px; --text-md: 19px; --text-lg: 22px;
  --text-xl: 27px; --text-xxl: 32px; --block-label-text-size: 17px; --block-info-text-size: 16px;
  --block-title-text-size: 19px; --input-text-size: 19px; --button-large-text-size: 21px;
  --button-medium-text-size: 20px; --button-small-text-size: 18px; --section-header-text-size: 19px;
  --checkbox-label-text-size: 18px;}
/* Gradio prefixes each rule here with its container's classes, which outrank a rule keyed on
   <html>'s class: the large-text rules below need !important to win. The status line's details
   (settings, game value, notes) keep their size, so the line stays short. */
.gan-large #status {font-size: 24px !important;}
.gan-large #status .gan-detail, .gan-large #status .gan-note {font-size: 17px;}
.gan-large .live-plot.fit-height {height: clamp(340px, calc(100vh - 215px), 575px) !important;}
""" + overview.OVERVIEW_CSS + classview.CLASS_CSS
# Runs in the page when the toggle changes: CSS class for Gradio's text, an event for the plots.
LARGE_TEXT_JS = """(on) => { document.documentElement.classList.toggle('gan-large', on);
  window.ganTextScale = on ? 1.3 : 1; window.dispatchEvent(new Event('gan-text-scale')); return []; }"""
SKETCH_SIZE = (242, 242)  # the drawing canvas in pixels (any size: the points are standardised)
POLL_NOW_JS = "() => { if (window.ganLive) window.ganLive.now(); }"  # after a button: show its result
# Choosing a lesson builds its run (a second or two): say so in the status line at once.
LESSON_JS = """(lesson) => { if (lesson && window.ganLive) window.ganLive.say('<b>Setting up the lesson…</b>');
  return [lesson]; }"""


def build_demo(page: Page | None = None) -> gr.Blocks:
    page = page or Page(SessionManager())
    buttons = page.buttons
    liveplot.serve_plotly_js()
    blank = plots.placeholders()
    start = Controls.start()

    with gr.Blocks(title="GAN Classroom") as demo:
        # Two columns. Left: the lesson and the buttons a lecture presses, then the setup. Right: the
        # status line over D's surface and D's histograms, then the other plots and the tools. At
        # 1280x720 the buttons, the status line and those two plots show without scrolling (CSS
        # above; a browser test measures it).
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=330):
                gr.Markdown(text.INTRO, elem_id="intro")
                large_text = gr.Checkbox(False, label="Large text (for the back row)", elem_id="large-text")
                lesson = gr.Dropdown(PRESET_CHOICES, value="", label="Lesson",
                                     info="One click sets up a classic GAN lesson; then press Start.")
                with gr.Group(elem_id="control-bar"):
                    with gr.Row():
                        start_btn = gr.Button("Start", variant="primary", size="md", min_width=80)
                        pause_btn = gr.Button("Pause", size="md", min_width=80)
                        resume_btn = gr.Button("Resume", size="md", min_width=80)
                    with gr.Row():  # GAN Lab's per-network steps, one update of one player
                        step_btn = gr.Button("Step", size="md", scale=1, min_width=60)
                        step_d_btn = gr.Button("Step D only", size="md", scale=2, min_width=60, elem_id="step-d")
                        step_g_btn = gr.Button("Step G only", size="md", scale=2, min_width=60, elem_id="step-g")
                    speed = gr.Radio(SPEED_CHOICES, value="max", label="Speed",
                                     info="Slow motion for a lecture: at 10 or 1 step/s every step is drawn.",
                                     elem_id="speed")
                lesson_text = gr.Markdown(visible=False, elem_id="lesson-text")
                with gr.Group():
                    gr.Markdown("### 1 · Setup")
                    dataset = gr.Dropdown(DATASET_CHOICES, value=start.dataset, label="Dataset",
                                          info="What G must learn to imitate.")
                    upload = gr.File(label="Your 2-D points (.csv: x,y per line, at most 2 MB)", file_types=[".csv", ".txt"],
                                     type="filepath", visible=False)
                    size = gr.Radio(SIZE_CHOICES, value=start.size, label="Network size",
                                    info="Hidden units of G and D (small is fastest).")
                    batch = gr.Slider(16, 1024, value=start.batch_size, step=16, label="Batch size")
                    seed = gr.Number(value=start.seed, precision=0, minimum=0, maximum=2**31 - 1, label="Seed")
                    reset_btn = gr.Button("Reset: new run from this setup", variant="stop", size="md")
                with gr.Accordion("Draw your own data", open=False):
                    gr.Markdown("Paint a shape with the mouse: G will learn to draw it.")
                    # A white canvas as the value: Gradio's editor then opens with the brush chosen (an
                    # empty one opens on no tool), at the zoom that fits its box: 100% in a box this size.
                    sketch = gr.Sketchpad(blank_canvas(SKETCH_SIZE), label="Your drawing", show_label=False,
                                          canvas_size=SKETCH_SIZE, width=SKETCH_SIZE[0] + 62,
                                          height=SKETCH_SIZE[1] + 100, type="filepath", layers=False,
                                          transforms=(), elem_id="sketch",
                                          brush=gr.Brush(colors=["#000000"], color_mode="fixed", default_size=4))
                    drawing_btn = gr.Button("Use my drawing as the data")
                with gr.Group():
                    gr.Markdown("### 2 · Live controls (act on the running GAN)")
                    loss = gr.Dropdown(LOSS_CHOICES, value=start.loss, label="Loss")
                    g_lr = gr.Slider(-5, -1, value=start.g_lr_log10, step=0.01, label="G learning rate (log10)",
                                     info="−3 means 0.001. Most setups decay both rates late in a run: "
                                          "the status line shows the rate in effect now.")
                    d_lr = gr.Slider(-5, -1, value=start.d_lr_log10, step=0.01, label="D learning rate (log10)")
                    k = gr.Slider(1, 10, value=start.n_critic, step=1, label="D steps per G step (k)")
                    smoothing = gr.Slider(0.0, 0.45, value=start.label_smoothing, step=0.05, label="Label smoothing",
                                          info="0.1 trains D towards 0.9 on real data.")
                    two_sided = gr.Checkbox(value=start.two_sided,
                                            label="Two-sided smoothing (fake target = smoothing too)")
                with gr.Accordion("What do these controls do?", open=False):
                    gr.Markdown(text.CONTROLS_HELP)
            with gr.Column(scale=3):
                status = gr.HTML(READY, html_template='<div class="gan-status">${value}</div>', elem_id="status",
                                 apply_default_css=False)
                alerts = gr.Markdown(visible=False, elem_id="alerts")
                fix_btn = gr.Button("Apply fix", visible=False, variant="secondary", size="sm", elem_id="fix")
                with gr.Row():
                    liveplot.live_plot("samples", "samples-plot", blank["samples"], fit_height=True)
                    liveplot.live_plot("d_hist", "hist-plot", blank["d_hist"], fit_height=True)
                with gr.Accordion("Model overview (live numbers; the network that moved is highlighted)",
                                  open=True):
                    gr.HTML(overview.overview_svg(None), html_template='<div class="gan-overview">${value}</div>',
                            elem_id="overview", apply_default_css=False)
                with gr.Row():
                    liveplot.live_plot("losses", "loss-plot", blank["losses"])
                    liveplot.live_plot("d_means", "means-plot", blank["d_means"])
                liveplot.live_plot("coverage", "coverage-plot", blank["coverage"])
                with gr.Column(visible=False) as compare_box:  # A/B: samples and coverage of both runs
                    with gr.Row():
                        liveplot.live_plot("compare_samples_a", "compare-samples-a")
                        liveplot.live_plot("compare_samples_b", "compare-samples-b")
                    with gr.Row():
                        liveplot.live_plot("compare_losses", "compare-plot")
                        liveplot.live_plot("compare_coverage", "compare-coverage")
                with gr.Accordion("A/B compare: run a second GAN beside this one", open=False):
                    gr.Markdown("Run **B** starts from the same seed, weights and noise as **A** (the controls "
                                "on the left) with the changes below; both loss curves share one plot.")
                    with gr.Row():
                        b_loss = gr.Dropdown(LOSS_CHOICES, value=start.loss, label="B: loss")
                        b_k = gr.Slider(1, 10, value=start.n_critic, step=1, label="B: D steps per G step (k)")
                        b_smoothing = gr.Slider(0.0, 0.45, value=start.label_smoothing, step=0.05,
                                                label="B: label smoothing")
                    with gr.Row():
                        b_g_lr = gr.Slider(-5, -1, value=start.g_lr_log10, step=0.01, label="B: G learning rate (log10)")
                        b_d_lr = gr.Slider(-5, -1, value=start.d_lr_log10, step=0.01, label="B: D learning rate (log10)")
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
                        gif_file = gr.File(label="Timelapse", interactive=False, elem_id="timelapse-file")
                        gif_preview = gr.Image(label="Timelapse preview", type="filepath", interactive=False,
                                               height=300, buttons=["fullscreen"], elem_id="timelapse-preview")
                    with gr.Row():
                        hide = gr.CheckboxGroup(HIDE_CHOICES, label="Teacher mode: hide these controls in the link")
                        share_btn = gr.Button("Make share link")
                    share_url = gr.Textbox(label="Link to this setup", buttons=["copy"], interactive=False,
                                           elem_id="share-url")
                class_box(demo, page)
        # The live channel (classroom/live.py): its token arrives with the page's load event.
        live = gr.HTML("", html_template='<div class="gan-live"></div>', js_on_load=LIVE_JS, elem_id="gan-live",
                       apply_default_css=False, container=False, visible="hidden")
        sync_btn = gr.Button("sync", visible="hidden", elem_id="gan-sync")  # clicked by the live channel

        # --- wiring --------------------------------------------------------------------------
        controls = [dataset, size, batch, seed, loss, g_lr, d_lr, k, smoothing, two_sided, lesson]
        live_controls = [loss, g_lr, d_lr, k, smoothing, two_sided]
        fast = dict(show_progress="hidden", concurrency_limit=None)
        with_controls = page.with_controls

        def act(trigger, fn, inputs, outputs, api_name, **kwargs):
            """An action whose result the live channel shows at once (not at its next poll)."""
            trigger(fn, inputs, outputs, api_name=api_name, **fast, **kwargs).then(None, js=POLL_NOW_JS)

        # .input fires on user actions only: a lesson or a shared link sets several controls at
        # once, and must not have them overwritten by dataset defaults or sent as live changes.
        dataset.input(lambda name: (gr.update(visible=name == "csv"), *defaults_for(name)),
                      dataset, [upload, loss, g_lr, d_lr, k, smoothing, two_sided, batch], **fast)
        act(start_btn.click, with_controls(buttons.start), controls, status, "start")
        act(pause_btn.click, buttons.pause, None, status, "pause")
        act(resume_btn.click, buttons.resume, None, status, "resume")
        act(step_btn.click, with_controls(buttons.step), controls, status, "step")
        act(step_d_btn.click, with_controls(buttons.step_d), controls, status, "step_d")
        act(step_g_btn.click, with_controls(buttons.step_g), controls, status, "step_g")
        act(reset_btn.click, with_controls(buttons.reset), controls, status, "reset")
        act(speed.input, buttons.set_speed, speed, status, "set_speed")
        for control in live_controls:
            control.input(page.with_live(buttons.live_change), live_controls, status, api_name=False,
                          trigger_mode="always_last", **fast)
        gr.Button(visible=False).click(page.with_live(buttons.live_change), live_controls, status,
                                       api_name="set_live", **fast)
        act(drawing_btn.click, buttons.use_drawing, sketch, [dataset, upload, status], "use_drawing")
        act(upload.upload, buttons.upload_csv, upload, status, "upload_csv")
        upload.clear(buttons.clear_csv, None, status, api_name=False, **fast)
        act(lesson.input, buttons.choose_lesson, lesson, [*controls, lesson_text, upload, status], "lesson",
            js=LESSON_JS)
        act(fix_btn.click, buttons.apply_fix, None, live_controls, "apply_fix")
        act(rewind_btn.click, buttons.rewind, checkpoint, status, "rewind")
        checkpoint.input(buttons.pick_checkpoint, checkpoint, None, api_name=False, **fast)
        save_btn.click(buttons.save, None, saved_file, api_name="save", **fast)
        act(load_file.upload, buttons.load, load_file, [status, *controls, lesson_text], "load")
        gif_btn.click(buttons.timelapse, None, gif_file, api_name="timelapse", concurrency_limit=2,
                      show_progress="minimal").success(lambda path: path, gif_file, gif_preview, api_name=False)
        share_btn.click(page.share_handler(), [*controls, hide], share_url, api_name="share_link", **fast)
        b_controls = [b_loss, b_g_lr, b_d_lr, b_k, b_smoothing]  # hidden with their A control (teacher mode)
        act(compare_btn.click, page.compare_handler(), [*controls, *b_controls], status, "start_compare")
        act(stop_compare_btn.click, buttons.stop_compare, None, compare_box, "stop_compare")
        sync_btn.click(page.sync, None, [alerts, fix_btn, checkpoint, compare_box, *controls, lesson_text, *b_controls],
                       api_name="sync", **fast)
        large_text.change(None, large_text, None, js=LARGE_TEXT_JS)
        server_json = gr.JSON(visible=False)
        gr.Button(visible=False).click(page.server_stats, None, server_json, api_name="server_stats", **fast)
        demo.load(page.open, None, [*controls, lesson_text, upload, *b_controls, live], api_name="open_page",
                  **fast)
        demo.unload(page.unload)
    class_page(demo, page)
    demo.page = page  # for tests and benchmarks
    return demo


def class_box(demo: gr.Blocks, page: Page) -> None:
    """The main page's class group: *Start a class* for a teacher; for a student who opened a
    student link, the class they joined and the name they show in it."""
    teacher = page.class_buttons
    fast = dict(show_progress="hidden", concurrency_limit=None)
    with gr.Accordion("Teach a class", open=False, elem_id="class-box") as box:
        note = gr.Markdown(text.CLASS_HELP)
        name = gr.Textbox(label="Your name in the class (optional; your teacher sees it)", max_length=NAME_CHARS,
                          visible=False, elem_id="class-name")
        start_btn = gr.Button("Start a class")
        links = gr.Markdown(elem_id="class-links")
        code = gr.Textbox(visible=False)  # the class this page joined (its student link's)
    start_btn.click(teacher.start_class, None, links, api_name="start_class", **fast)
    name.submit(teacher.join, [code, name], note, api_name="join_class", **fast)
    name.blur(teacher.join, [code, name], note, api_name=False, **fast)
    demo.load(teacher.student_box, None, [box, note, name, start_btn, code], api_name=False, **fast)


def class_page(demo: gr.Blocks, page: Page) -> None:
    """The teacher's class view at /class, its own Gradio page (classroom/classview.py): every
    student's GAN, actions on the whole class, the class experiment, one run projected."""
    teacher = page.class_buttons
    start = Controls.start()
    fast = dict(show_progress="hidden", concurrency_limit=None)
    d_lr_range = PARAMETERS["d_lr"].default
    with demo.route("Class view", "/class", show_in_navbar=False):
        status = gr.Markdown(text.CLASS_VIEW_START, elem_id="class-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                grid = gr.HTML("", html_template=classview.CLASS_TEMPLATE, js_on_load=classview.CLASS_JS,
                               elem_id="class-grid", apply_default_css=False)
            with gr.Column(scale=2, min_width=380):
                student_link = gr.Textbox(label="Student link (share it with the class)", buttons=["copy"],
                                          interactive=False, elem_id="student-link")
                liveplot.live_plot("outcome", "outcome-plot", classview.outcome_figure(None, []).to_json(),
                                   min_height=430)
                with gr.Accordion("Teach the whole class", open=True):
                    lesson = gr.Dropdown(PRESET_CHOICES, value="", label="Lesson to push")
                    with gr.Row():
                        loss = gr.Dropdown(LOSS_CHOICES, value=start.loss, label="Loss")
                        k = gr.Slider(1, 10, value=start.n_critic, step=1, label="k (D steps per G step)")
                    with gr.Row():
                        g_lr = gr.Slider(-5, -1, value=start.g_lr_log10, step=0.01, label="G learning rate (log10)")
                        d_lr = gr.Slider(-5, -1, value=start.d_lr_log10, step=0.01, label="D learning rate (log10)")
                    smoothing = gr.Slider(0.0, 0.45, value=start.label_smoothing, step=0.05, label="Label smoothing")
                    push_btn = gr.Button("Push to every student (fresh runs)", variant="primary")
                    with gr.Row():
                        pause_btn = gr.Button("Pause all")
                        resume_btn = gr.Button("Resume all")
                with gr.Accordion("Class experiment: one value per student", open=True):
                    with gr.Row():
                        parameter = gr.Dropdown(PARAMETER_CHOICES, value="d_lr", label="Vary", scale=2, min_width=160)
                        low = gr.Number(d_lr_range[0], label="from", scale=1, min_width=90)
                        high = gr.Number(d_lr_range[1], label="to", scale=1, min_width=90)
                    losses = gr.CheckboxGroup(LOSS_CHOICES, value=[name for _, name in LOSS_CHOICES][:2],
                                              label="Losses to compare", visible=False)
                    with gr.Row():
                        assign_btn = gr.Button("Assign (fresh runs)", variant="primary")
                        export_btn = gr.Button("Export table (CSV)")
                    table_file = gr.File(label="Class table", interactive=False, visible=False)
                with gr.Accordion("Hide controls from the students", open=False):
                    hide = gr.CheckboxGroup(HIDE_CHOICES, label="Hidden on every student's page (and locked)")
                    hide_btn = gr.Button("Apply to the class")
        with gr.Column(elem_id="projection"):  # a student's run, full size (shown over the page)
            gr.HTML("", html_template=classview.WATCH_TEMPLATE, apply_default_css=False, container=False)
            with gr.Row():
                liveplot.live_plot("samples", "watch-samples")
                liveplot.live_plot("d_hist", "watch-hist")
            with gr.Row():
                liveplot.live_plot("losses", "watch-losses")
                liveplot.live_plot("coverage", "watch-coverage")
        code = gr.Textbox(visible=False)
        key = gr.Textbox(visible=False)

        form = [lesson, loss, g_lr, d_lr, k, smoothing]
        lesson.input(lesson_settings, lesson, [loss, g_lr, d_lr, k, smoothing], api_name=False, **fast)
        parameter.input(experiment_form, parameter, [low, high, losses], api_name=False, **fast)
        push_btn.click(teacher.push, form, status, api_name="push_class", **fast)
        pause_btn.click(teacher.pause_all, None, status, api_name="pause_class", **fast)
        resume_btn.click(teacher.resume_all, None, status, api_name="resume_class", **fast)
        assign_btn.click(teacher.assign, [*form, parameter, low, high, losses], status, api_name="assign", **fast)
        export_btn.click(teacher.export_csv, None, table_file, api_name="export_class", **fast)
        hide_btn.click(teacher.hide, hide, status, api_name="hide_class", **fast)
        demo.load(teacher.open_view, [code, key], [grid, student_link], js=classview.READ_TEACHER_LINK_JS,
                  api_name="open_class_view", **fast)


def launch(demo: gr.Blocks, **kwargs):
    """`demo.launch` with the live channel's route mounted on Gradio's own FastAPI app, the upload
    limit set and Gradio's idle queue polling less often (classroom/framework.py)."""
    quieten_idle_queue(demo)
    return demo.launch(css=CSS, max_file_size=MAX_UPLOAD_BYTES, app_kwargs={"routes": demo.page.routes()}, **kwargs)


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    configure_threads()
    demo = build_demo()
    demo.page.manager.start()  # the trainer processes calibrate before the first visitor presses Start
    # Everything made so far (torch, Gradio, the page: ~320k objects) lives as long as the server.
    # Out of the collector's sight, a full collection scans only what came later: 19-31 ms during
    # the class benchmark, where one over the whole heap took up to 224 ms (every thread waits).
    gc.freeze()
    try:
        launch(demo)
    finally:
        demo.page.manager.close()
