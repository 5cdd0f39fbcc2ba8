"""What the page's buttons and controls do: short functions of a visitor's request and values.

Each event acts on the visitor's own run (keyed by `gr.Request.session_hash`), turns engine errors
into a `uploads.refusal` (the run left as it was) and returns the status line, so the visitor (or
an API caller) sees the result at once; the live channel (`live.py`) keeps the page current after.
The controls arrive as one typed value (`controls.Controls`, `LiveControls`: see `Page.with_controls`).
Files arrive only through the upload gate (`uploads.py`), once, when uploaded: a CSV or a drawing
becomes the visitor's `Points`, kept in their page state for the next Start.

Not here: drawing (`live.py`), share links and the page's first load (`share.py`).
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import astuple
from pathlib import Path

import gradio as gr
import numpy as np

from gan_core.checkpoints import MAX_RUN_FILE_BYTES, CheckpointError, read_run_bytes, read_run_extras
from gan_core.config import LIVE_FIELDS, ConfigError, TrainConfig, can_continue
from gan_core.data import CSV_MAX_BYTES, DataError, parse_points_csv
from gan_core.serve.handle import MAX_SPEED_LIMIT
from gan_core.strokes import points_csv, points_from_strokes
from gan_core.timelapse import TimelapseRecorder

from . import gif
from .controls import Controls, LiveControls, setup_changes, setup_of
from .live import LiveChannel, fix_of
from .pages import COMPARE_SUFFIX, PageState, Pages, Points
from .presets import get_preset
from .sessions import Session, ServerBusy, SessionManager
from .share import HIDEABLE
from .uploads import read_visitor_file, refusal

DRAWN_POINTS = 2000  # points sampled from a drawing
MAX_DRAWING_BYTES = 8_000_000  # a 400×400 RGBA PNG is far smaller
EMPTY_CANVAS = "The canvas is empty: paint a shape with the brush (press and drag), then try again."
# A live fix's TrainConfig fields → the controls a teacher may hide (`share.HIDEABLE`).
FIX_CONTROLS = {"loss": "loss", "g_lr": "g_lr", "d_lr": "d_lr", "n_critic": "k", "label_smoothing": "smoothing",
                "two_sided_smoothing": "two_sided"}


def session_id(request: gr.Request | None) -> str:
    sid = getattr(request, "session_hash", None)
    if not sid:
        raise refusal("No browser session: reload the page.")
    return sid


class Buttons:
    """The page's actions, bound to one `SessionManager`, the pages' states and the live channel."""

    def __init__(self, manager: SessionManager, pages: Pages, live: LiveChannel,
                 hidden_of=lambda sid: frozenset()) -> None:
        self.manager = manager
        self.pages = pages
        self.live = live
        self.hidden_of = hidden_of  # sid -> the controls a teacher hid from it (`classes.py`)

    def status(self, sid: str) -> str:
        """The status line of `sid`'s page now (HTML, as the live channel draws it)."""
        page = self.pages.get(sid)
        session = self.manager.get(sid)
        if session is None:
            return self.live.status_without_run(page)
        return self.live.status(sid, page, session, self.live.brief(session.runner))

    # --- runs ----------------------------------------------------------------------------------

    def _points_for(self, config: TrainConfig, page: PageState) -> bytes | None:
        """The visitor's points for a CSV run (None for other datasets, or a loaded CSV run that
        carries its own); a refusal when a CSV run has none."""
        if config.dataset != "csv":
            return None
        if page.points is not None:
            return page.points.csv_bytes
        if page.setup is not None and page.setup.get("csv") == "loaded":
            return None
        raise refusal("Upload a CSV file of 2-D points first (two columns: x, y), or draw a shape.")

    def _setup(self, config: TrainConfig, lesson: str, page: PageState) -> dict:
        setup = setup_of(config, lesson, self._points_for(config, page))
        if config.dataset == "csv" and page.points is None:
            setup["csv"] = "loaded"  # the points inside a loaded run file
        return setup

    def _new_run(self, sid: str, config: TrainConfig, lesson: str = "", page: PageState | None = None) -> Session:
        """Replace `sid`'s run with a fresh one (step 0, not started); the old one is kept if it fails."""
        page = page or self.pages.get(sid.removesuffix(COMPARE_SUFFIX))
        csv_bytes = self._points_for(config, page)
        try:
            session = self.manager.create(sid, config, csv_bytes)
            session.runner.set_speed(page.speed)
        except (ConfigError, DataError, ServerBusy, RuntimeError, TimeoutError, ValueError) as exc:
            raise refusal(str(exc)) from None
        if not sid.endswith(COMPARE_SUFFIX):
            page.setup = setup_of(config, lesson, csv_bytes)
        session.runner.publish_frame()  # the plots (and the time-lapse) show G and D at step 0
        return session

    def start(self, controls: Controls, request: gr.Request) -> str:
        """Resume the current run if its setup is unchanged; otherwise start a fresh run (step 0)."""
        config = controls.config()
        sid = session_id(request)
        page = self.pages.get(sid)
        session = self.manager.get(sid)
        setup = self._setup(config, controls.lesson, page)
        if session is not None and session.runner.state() not in ("finished", "error"):
            changed = setup_changes(page.setup or {}, setup)
            if not changed and not can_continue(session.runner.config, config):
                changed = ["loss: WGAN-GP needs a discriminator without BatchNorm"]
            if not changed:
                self._apply_live(session, config)
                page.notice = ""
                self.manager.request_start(sid)
                return self.status(sid)
            notice = f"New run: the setup changed ({', '.join(changed)}); it starts from step 0."
        else:
            notice = ""
        self._new_run(sid, config, controls.lesson, page)
        page.notice = notice
        self.manager.request_start(sid)
        return self.status(sid)

    def restart(self, sid: str, config: TrainConfig, lesson: str, notice: str) -> None:
        """A teacher's push or assignment: `sid`'s run replaced by a fresh one from `config`
        (step 0) and started (or queued); its A/B run B closes, its status line says `notice` and
        its page refreshes its controls. A refusal when the run cannot be made (the old one stays)."""
        page = self.pages.peek(sid)
        if page is None:
            raise refusal("This student's page is closed.")
        self._new_run(sid, config, lesson, page)
        self.manager.release(sid + COMPARE_SUFFIX)
        page.notice = notice
        page.pushed += 1
        self.manager.request_start(sid)

    def _refuse_if_hidden(self, sid: str, keys, what: str) -> None:
        """A refusal when a teacher hid any of the controls `keys` from `sid`."""
        hidden = [HIDEABLE[key] for key in keys if key in self.hidden_of(sid)]
        if hidden:
            raise refusal(f"Your teacher set the {', '.join(hidden).lower()} for the class: {what} is off for now.")

    def pause(self, request: gr.Request) -> str:
        sid = session_id(request)
        for key in (sid, sid + COMPARE_SUFFIX):
            session = self.manager.get(key)
            if session is not None:
                self.manager.cancel_start(key)
                session.runner.pause()
        self.pages.get(sid).notice = ""
        return self.status(sid)

    def resume(self, request: gr.Request) -> str:
        sid = session_id(request)
        session = self.manager.get(sid)
        if session is None:
            raise refusal("Nothing to resume yet: press Start.")
        if session.runner.state() == "error":
            raise refusal("This run failed; press Reset, then Start.")
        self.manager.request_start(sid)
        if self.manager.get(sid + COMPARE_SUFFIX) is not None:
            self.manager.request_start(sid + COMPARE_SUFFIX)
        return self.status(sid)

    def _run_for_stepping(self, controls: Controls, sid: str) -> Session:
        """The visitor's run, or a fresh one from the controls (with their lesson) on a first press."""
        session = self.manager.get(sid)
        if session is None:
            session = self._new_run(sid, controls.config(), controls.lesson)
        if session.runner.state() == "error":
            raise refusal("This run failed; press Reset, then Start.")
        self.manager.cancel_start(sid)
        return session

    def step(self, controls: Controls, request: gr.Request) -> str:
        """One training step (k D updates + 1 G update), then stay paused."""
        sid = session_id(request)
        self._run_for_stepping(controls, sid).runner.step(1)
        return self.status(sid)

    def step_d(self, controls: Controls, request: gr.Request) -> str:
        """One discriminator update only (G unchanged), then stay paused."""
        return self._single_update("d", controls, request)

    def step_g(self, controls: Controls, request: gr.Request) -> str:
        """One generator update only (D unchanged), then stay paused."""
        return self._single_update("g", controls, request)

    def _single_update(self, network: str, controls: Controls, request: gr.Request) -> str:
        sid = session_id(request)
        runner = self._run_for_stepping(controls, sid).runner
        try:
            runner.step_d() if network == "d" else runner.step_g()
        except TimeoutError as exc:
            raise refusal(f"The run did not answer: {exc}") from None
        return self.status(sid)

    def reset(self, controls: Controls, request: gr.Request) -> str:
        """Throw the run away and build a fresh one (step 0) from the controls; not started."""
        sid = session_id(request)
        self._new_run(sid, controls.config(), controls.lesson)
        self.pages.get(sid).notice = ""
        return self.status(sid)

    # --- live controls ---------------------------------------------------------------------------

    def live_change(self, live: LiveControls, request: gr.Request) -> str:
        """Apply the live sliders to the running GAN at its next step."""
        changes = live.changes()
        sid = session_id(request)
        session = self.manager.get(sid)
        if session is None:
            return self.status(sid)
        try:
            session.runner.update(**changes)  # the engine's config refuses e.g. WGAN-GP for a BatchNorm D
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(str(exc)) from None
        return self.status(sid)

    def _apply_live(self, session: Session, config: TrainConfig) -> None:
        session.runner.update(**{f: getattr(config, f) for f in LIVE_FIELDS})

    def set_speed(self, speed, request: gr.Request) -> str:
        """Slow motion: limit the run (and a B run) to `speed` steps/s, or "max"; no restart."""
        limit = speed_limit(speed)
        sid = session_id(request)
        self.pages.get(sid).speed = limit
        for key in (sid, sid + COMPARE_SUFFIX):
            session = self.manager.get(key)
            if session is not None:
                session.runner.set_speed(limit)
        return self.status(sid)

    def apply_fix(self, request: gr.Request) -> tuple:
        """Apply the current alert's suggested fix; returns the new live control values."""
        sid = session_id(request)
        session = self.manager.get(sid)
        fix = fix_of(self.live.alerts_of(session.runner))[0] if session is not None else None
        if not fix:
            raise refusal("No fix to apply right now.")
        self._refuse_if_hidden(sid, [FIX_CONTROLS.get(name, name) for name in fix], "this fix")
        try:
            config = session.runner.update(**fix)
        except (ConfigError, ValueError) as exc:
            raise refusal(str(exc)) from None
        gr.Info("Applied: " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                        for k, v in fix.items()))
        return astuple(LiveControls.of(config))

    # --- rewind, save, load, time-lapse -------------------------------------------------------------

    def rewind(self, index, request: gr.Request) -> str:
        sid = session_id(request)
        session = self.manager.get(sid)
        if session is None:
            raise refusal("Nothing to rewind yet: press Start.")
        try:
            session.runner.rewind(int(index))
        except (CheckpointError, TypeError, ValueError) as exc:
            raise refusal(f"Cannot rewind: {exc}") from None
        self.manager.cancel_start(sid)
        return self.status(sid)

    def pick_checkpoint(self, index, request: gr.Request) -> None:
        """Remember the visitor's choice in the rewind menu, so new checkpoints don't replace it."""
        self.pages.get(session_id(request)).checkpoint_pick = index

    def save(self, request: gr.Request) -> str:
        session = self.manager.get(session_id(request))
        if session is None:
            raise refusal("Nothing to save yet: press Start.")
        snap = session.runner.snapshot()
        folder = Path(tempfile.mkdtemp(prefix="gan-run-"))
        target = folder / f"gan-{snap.config.dataset}-step{snap.step}.safetensors"
        session.runner.save(target)
        return str(target)

    def load(self, path, request: gr.Request) -> tuple:
        """Load a saved run (safetensors + JSON: no code is executed), paused at its real step with
        the history the file carries, a checkpoint there and a fresh look at G and D.

        Outputs: status, the controls (`controls.COMPONENTS`) and the lesson's text.
        """
        if path is None:
            return (gr.skip(),) * (2 + len(Controls.__dataclass_fields__))
        sid = session_id(request)
        self._refuse_if_hidden(sid, HIDEABLE, "loading a saved run")
        data = read_visitor_file(path, what="The run file", max_bytes=MAX_RUN_FILE_BYTES)
        try:
            engine, history = read_run_bytes(data, device="auto")
            # The time-lapse saved with the run (checked before the visitor's run is replaced),
            # so a GIF made later still starts at step 0.
            timelapse = TimelapseRecorder.from_tensors(read_run_extras(data, "timelapse"), engine.step_count)
            session = self.manager.create(sid, engine.config, engine=engine)
            page = self.pages.get(sid)
            session.runner.set_speed(page.speed)
            session.runner.open_loaded(history, timelapse, f"Loaded a saved run at step {engine.step_count:,}: "
                                                           "press Resume (or Start) to continue it.")
        except (CheckpointError, ConfigError, ValueError, RuntimeError, TimeoutError) as exc:
            raise refusal(f"Cannot load this file ({len(data):,} bytes): {exc}") from None
        page.setup = setup_of(engine.config, "", None)
        page.points = None
        page.notice = ""
        if engine.config.dataset == "csv":
            page.setup["csv"] = "loaded"  # its points are in the file, not an upload
        self.manager.release(sid + COMPARE_SUFFIX)
        return (self.status(sid), *Controls.of(session.runner.config).values(), lesson_text(""))

    def timelapse(self, request: gr.Request) -> str:
        session = self.manager.get(session_id(request))
        if session is None or len(session.runner.timelapse) < 2:
            raise refusal("Train for a few seconds first: the timelapse needs at least two frames.")
        path = Path(tempfile.mkdtemp(prefix="gan-timelapse-")) / f"timelapse-step{session.runner.snapshot().step}.gif"
        gif.to_gif(session.runner.timelapse.frames(), path, fps=8)
        return str(path)

    # --- the visitor's own data -------------------------------------------------------------------

    def upload_csv(self, path, request: gr.Request) -> str:
        """Check an uploaded CSV at once and keep its points for the next Start."""
        sid = session_id(request)
        if path is None:
            return self.status(sid)
        self._refuse_if_hidden(sid, ["dataset"], "your own data")
        data = read_visitor_file(path, what="The CSV file", max_bytes=CSV_MAX_BYTES)
        try:
            points = parse_points_csv(data)
        except DataError as exc:
            raise refusal(f"This CSV cannot be used: {exc}") from None
        page = self.pages.get(sid)
        page.points = Points(Path(str(path)).name, data, len(points))
        gr.Info(f"Read {len(points):,} points from the CSV. Press Start to train on them.")
        return self.status(sid)

    def clear_csv(self, request: gr.Request) -> str:
        sid = session_id(request)
        self.pages.get(sid).points = None
        return self.status(sid)

    def use_drawing(self, sketch, request: gr.Request) -> tuple:
        """Turn the drawing into 2-D points, kept as the visitor's data (like a CSV upload, with
        the same checks and limits); Start trains on them. Outputs: dataset, the CSV box, status."""
        sid = session_id(request)
        self._refuse_if_hidden(sid, ["dataset"], "your own data")
        try:
            points = points_from_strokes(ink(sketch), DRAWN_POINTS, np.random.default_rng())
        except DataError as exc:
            raise refusal(str(exc)) from None
        text = points_csv(points)
        page = self.pages.get(sid)
        page.points = Points("my_drawing.csv", text.encode(), len(points))
        page.notice = (f"**Your drawing is the data:** {len(points):,} points sampled from the strokes. "
                       "Press **Start** to train on them.")
        path = Path(tempfile.mkdtemp(prefix="gan-drawing-")) / "my_drawing.csv"
        path.write_text(text)
        return "csv", gr.update(value=str(path), visible=True), self.status(sid)

    # --- lessons and A/B ---------------------------------------------------------------------------

    def choose_lesson(self, lesson, request: gr.Request) -> tuple:
        """Stage the lesson: a fresh run with the preset's configuration, at step 0, not started.

        The controls show exactly what will train, so touching a slider afterwards changes the
        lesson's run, never the previous one. "Free play" changes nothing. Outputs: the controls,
        the lesson's text, the CSV box, status.
        """
        sid = session_id(request)
        if not lesson:
            return (*(gr.skip() for _ in Controls.__dataclass_fields__), lesson_text(""), gr.skip(), gr.skip())
        self._refuse_if_hidden(sid, ["lesson"], "choosing another lesson")
        preset = get_preset(lesson)
        old = self.manager.get(sid)
        old_step = old.runner.snapshot().step if old is not None else 0
        self.manager.release(sid + COMPARE_SUFFIX)
        page = self.pages.get(sid)
        page.points = None  # a lesson brings its own data
        self._new_run(sid, preset.config, lesson, page)
        replaced = f" (the previous run, at step {old_step:,}, was replaced)" if old_step else ""
        page.notice = f"Lesson “{preset.title}” is set up at step 0{replaced}. Press Start."
        return (*Controls.for_lesson(lesson).values(), lesson_text(lesson), gr.update(value=None, visible=False),
                self.status(sid))

    def start_compare(self, controls: Controls, b: LiveControls, request: gr.Request) -> str:
        """Start run A (the controls) and run B (A with the B changes) from the same seed and noise."""
        config_a = controls.config()
        try:
            config_b = config_a.with_live(**{**b.changes(), "two_sided_smoothing": controls.two_sided})
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(f"Run B: {exc}") from None
        sid = session_id(request)
        page = self.pages.get(sid)
        self._new_run(sid + COMPARE_SUFFIX, config_b, controls.lesson, page)  # validates B before replacing A
        self._new_run(sid, config_a, controls.lesson, page)
        page.notice = ""
        self.manager.request_start(sid)
        self.manager.request_start(sid + COMPARE_SUFFIX)
        return self.status(sid)

    def stop_compare(self, request: gr.Request):
        self.manager.release(session_id(request) + COMPARE_SUFFIX)
        return gr.update(visible=False)


def speed_limit(speed) -> float | None:
    """A Speed choice ("max" or steps/s as text or number) → the runner's limit; a refusal if absurd."""
    if speed in (None, "", "max"):
        return None
    try:
        value = float(speed)
        if isinstance(speed, bool) or not 0 < value <= MAX_SPEED_LIMIT:
            raise ValueError
    except (TypeError, ValueError):
        raise refusal(f"Speed must be 'max' or a number of steps per second between 0 and "
                      f"{MAX_SPEED_LIMIT:g}, got {speed!r}.") from None
    return value


def lesson_text(lesson: str):
    if not lesson:
        return gr.update(value="", visible=False)
    preset = get_preset(lesson)
    return gr.update(value=f"{preset.explanation}\n\n*Watch for:* {preset.watch}. Press **Start**.", visible=True)


def blank_canvas(size: tuple[int, int]) -> dict:
    """The Sketchpad's first value: a white background of `size` (width, height) and no strokes."""
    width, height = size
    return {"background": np.full((height, width, 4), 255, np.uint8), "layers": [], "composite": None}


def picture(path) -> np.ndarray:
    """One of the Sketchpad's pictures (a cached upload, through the upload gate) as an RGBA array."""
    from PIL import Image, UnidentifiedImageError

    data = read_visitor_file(path, what="The drawing", max_bytes=MAX_DRAWING_BYTES)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > 4096 * 4096:
                raise refusal("The drawing is too large: paint on the page's canvas.")
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise refusal("The drawing is not a picture: paint on the page's canvas, then try again.") from None


def ink(sketch) -> np.ndarray:
    """The painted-ness of a Sketchpad value (type="filepath") as an (H, W) array: the layers'
    alpha (the strokes), else the composite's darkness on its white background."""
    if not isinstance(sketch, dict):
        raise refusal(EMPTY_CANVAS)
    layers = [picture(layer) for layer in (sketch.get("layers") or [])[:8] if layer is not None]
    if layers and len({layer.shape for layer in layers}) == 1:
        return np.max([layer[..., 3] for layer in layers], axis=0)
    if sketch.get("composite") is None:
        raise refusal(EMPTY_CANVAS)
    rgb = picture(sketch["composite"])[..., :3].astype(np.int16)
    return 255 - rgb.min(axis=-1)
