"""Event handlers for app.py: short functions of the UI inputs and a session id.

Each visitor is keyed by `gr.Request.session_hash`. Handlers translate UI
values into `TrainConfig`s and runner calls, turn engine errors into
`gr.Error` messages (state unchanged), and read immutable snapshots to draw.
"""

import hashlib
import io
import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlencode

import gradio as gr
import numpy as np

from gan_core.checkpoints import MAX_RUN_FILE_BYTES, CheckpointError, read_run_bytes, read_run_extras
from gan_core.config import FROZEN_FIELDS, LIVE_FIELDS, ConfigError, TrainConfig, can_continue, default_config
from gan_core.engine import lr_scale
from gan_core.data import CSV_MAX_BYTES, IMAGE_DATASETS, DataError, parse_points_csv
from gan_core.losses import LOSSES
from gan_core.serve.handle import MAX_SPEED_LIMIT
from gan_core.strokes import points_csv, points_from_strokes
from gan_core.timelapse import TimelapseRecorder

from . import gif, liveplot, overview, plots
from .alerts import detect
from .presets import PRESETS, get_preset
from .sessions import PageTicks, ServerBusy, SessionManager
from .uploads import read_visitor_file, refusal

DATASET_CHOICES = [
    ("Ring of 8 Gaussians", "ring8"),
    ("Ring of 8 (wide, easier to see)", "ring8_wide"),
    ("5×5 grid of Gaussians", "grid25"),
    ("Spiral", "spiral"),
    ("Two moons", "moons"),
    ("MNIST digits (bundled, 28×28)", "digits"),
    ("Full MNIST, 60k (downloads via torchvision)", "mnist_full"),
    ("Fashion-MNIST (downloads via torchvision)", "fashion"),
    ("My own 2-D points (CSV upload)", "csv"),
]
LOSS_CHOICES = [(loss.title, name) for name, loss in LOSSES.items()]
SIZE_CHOICES = ["small", "medium", "large"]
WIDTHS = {"toy": {"small": 32, "medium": 64, "large": 128}, "digits": {"small": 16, "medium": 32, "large": 64}}
PLOT_NAMES = ("samples", "d_hist", "losses", "d_means", "coverage")
COMPARE_PLOTS = ("compare_samples_a", "compare_samples_b", "compare_losses", "compare_coverage")
TICK_OUTPUTS = ("status", "overview", *PLOT_NAMES, "alerts", "fix_button", "checkpoint_menu", "compare_box",
                *COMPARE_PLOTS, "timer")
# The history curves redraw at most once a second while a run races: a second more of a long
# history hardly moves a 600-point curve, and each redraw costs the browser ~20 ms per plot.
# In slow motion (fewer new steps than this per tick), paused or stepping, every tick draws.
HISTORY_PLOTS = ("losses", "d_means", "coverage")
HISTORY_REDRAW_S = 1.0
SLOW_STEPS_PER_TICK = 50
COMPARE_SUFFIX = "/B"  # session id of a visitor's second (B) run
# What defines a run: the fields that cannot change mid-run, plus the batch size (live in the engine,
# but a Setup control on this page), the lesson and the CSV file's content. Start with the same setup
# resumes; any difference starts a fresh run.
# d_batchnorm is left to gan_core's `can_continue`: the controls resolve it from their loss, while a
# run's D keeps the choice of the loss it started with (and a D without BatchNorm takes any loss).
SETUP_FIELDS = (*sorted(FROZEN_FIELDS - {"d_batchnorm"}), "batch_size")
SETUP_WORDS = {"lesson": "lesson", "csv": "CSV file", "dataset": "dataset", "width": "network size",
               "batch_size": "batch size", "seed": "seed"}
PRESET_CHOICES = [("Free play (choose everything yourself)", "")] + [(p.title, name) for name, p in PRESETS.items()]
# Controls a teacher can hide with ?hide=a,b in the page URL, and the URL keys of a shared setup.
HIDEABLE = ("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k", "smoothing", "two_sided", "lesson")
B_CONTROLS = ("loss", "g_lr", "d_lr", "k", "smoothing")  # the A/B section's controls, as HIDEABLE names
# Speed control (slow motion): label, value; "max" = as fast as the machine goes.
SPEED_CHOICES = [("Full speed", "max"), ("100 steps/s", "100"), ("10 steps/s", "10"), ("1 step/s", "1")]
DRAWN_POINTS = 2000  # points sampled from a drawing
SHARE_KEYS = ("lesson", "dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k", "smoothing", "two_sided")


@dataclass(frozen=True)
class Controls:
    """The values of every control, in the order app.py passes them."""

    dataset: str
    size: str
    batch_size: int
    seed: int
    loss: str
    g_lr_log10: float
    d_lr_log10: float
    n_critic: int
    label_smoothing: float
    two_sided: bool
    lesson: str = ""

    def config(self) -> TrainConfig:
        """The TrainConfig these controls describe; raises gr.Error on a bad value.

        A lesson preset for the same dataset supplies the fields that have no control
        (packing, Adam betas, …); the controls override the rest.
        """
        try:
            if self.size not in SIZE_CHOICES:
                raise ConfigError(f"model size must be one of {', '.join(SIZE_CHOICES)}, got {self.size!r}")
            width = WIDTHS["digits" if self.dataset in IMAGE_DATASETS else "toy"][self.size]
            values = dict(width=width, batch_size=self.batch_size, seed=self.seed, loss=self.loss,
                          **live_values(self.g_lr_log10, self.d_lr_log10, self.n_critic, self.label_smoothing,
                                        self.two_sided))
            preset = PRESETS.get(self.lesson or "")
            if preset is not None and preset.config.dataset == self.dataset:
                return replace(preset.config, d_batchnorm=None, **values)  # D follows the chosen loss
            return default_config(self.dataset, **values)
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(str(exc)) from None


def live_values(g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided) -> dict:
    for name, v in (("G learning rate", g_lr_log10), ("D learning rate", d_lr_log10)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} (log₁₀) must be a finite number, got {v!r}")
    # Two significant digits: the log slider's 10^-1.7 means 0.02, as a preset or a person would write it.
    lr = lambda x: float(f"{10.0 ** x:.2g}")
    return dict(g_lr=lr(g_lr_log10), d_lr=lr(d_lr_log10), n_critic=n_critic,
                label_smoothing=label_smoothing, two_sided_smoothing=two_sided)


def size_of(config: TrainConfig) -> str:
    widths = WIDTHS["digits" if config.is_image else "toy"]
    return min(widths, key=lambda k: abs(widths[k] - config.width))


def control_values(config: TrainConfig) -> tuple:
    """(dataset, size, batch, seed, loss, log10 G lr, log10 D lr, k, smoothing, two-sided)."""
    return (config.dataset, size_of(config), config.batch_size, config.seed, config.loss,
            round(math.log10(config.g_lr), 2), round(math.log10(config.d_lr), 2), config.n_critic,
            config.label_smoothing, config.two_sided_smoothing)


def defaults_for(dataset: str) -> tuple:
    """Control values (loss, g_lr_log10, d_lr_log10, k, smoothing, two-sided, batch) for a dataset."""
    if dataset not in dict((v, k) for k, v in DATASET_CHOICES):
        raise refusal(f"unknown dataset {dataset!r}")
    cfg = default_config(dataset if dataset != "csv" else "moons")
    return (cfg.loss, round(math.log10(cfg.g_lr), 2), round(math.log10(cfg.d_lr), 2), cfg.n_critic,
            cfg.label_smoothing, cfg.two_sided_smoothing, cfg.batch_size)


def _read_upload(path: str | None) -> bytes | None:
    """The CSV upload's bytes (None when there is none), through the upload gate."""
    if path is None:
        return None
    return read_visitor_file(path, what="The CSV file", max_bytes=CSV_MAX_BYTES)


def setup_of(config: TrainConfig, lesson: str = "", csv_bytes: bytes | None = None) -> dict:
    """The identity of a run's setup (see SETUP_FIELDS): equal setups continue, different ones restart."""
    setup = {name: getattr(config, name) for name in SETUP_FIELDS}
    setup["lesson"] = lesson or ""
    setup["csv"] = hashlib.sha256(csv_bytes).hexdigest() if csv_bytes is not None else None
    return setup


def setup_changes(old: dict, new: dict) -> list[str]:
    """What differs between two setups, in words for the status line (e.g. ["lesson", "seed"])."""
    changed = [name for name in new if old.get(name) != new[name]]
    words = [SETUP_WORDS.get(name, name.replace("_", " ")) for name in changed]
    return list(dict.fromkeys(words))


def _fmt_percent(p: float) -> str:
    """0.3%, not 0%: a mode counts as covered with a single good sample (VEEGAN), so tiny shares matter."""
    return f"{p:.0f}%" if p >= 10 or p == 0 else f"{p:.1f}%" if p >= 0.1 else f"{p:.2f}%"


def _fmt_lr(lr: float) -> str:
    return f"{lr:.1e}".replace("e-0", "e-")


class Handlers:
    """All UI callbacks, bound to one `SessionManager`."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        # Each visitor's chosen speed limit (steps/s, None = full), kept across Start/Reset/Load;
        # dropped in unload. Written by set_speed only.
        self._speeds: dict[str, float | None] = {}
        self.ticks = PageTicks()  # how often each open page ticks

    @staticmethod
    def _sid(request: gr.Request | None) -> str:
        sid = getattr(request, "session_hash", None)
        if not sid:
            raise refusal("No browser session: reload the page.")
        return sid

    def _session(self, request):
        return self.manager.get(self._sid(request))

    # --- buttons ------------------------------------------------------------------------------

    def start(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
              label_smoothing, two_sided, upload, lesson, request: gr.Request):
        """Resume the current run if its setup is unchanged; otherwise start a fresh run (step 0)."""
        config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                          label_smoothing, two_sided, lesson).config()
        sid = self._sid(request)
        session = self.manager.get(sid)
        csv_bytes = self._csv_for(config, upload, session)
        setup = setup_of(config, lesson, csv_bytes)
        if config.dataset == "csv" and csv_bytes is None:
            setup["csv"] = "loaded"  # the points inside a loaded run file
        if session is not None and session.runner.state() not in ("finished", "error"):
            changed = setup_changes(session.extras.get("setup", {}), setup)
            if not changed and not can_continue(session.runner.config, config):
                changed = ["loss: WGAN-GP needs a discriminator without BatchNorm"]
            if not changed:
                self._apply_live(session, config)
                session.extras.pop("notice", None)
                self.manager.request_start(sid)
                return self.status(request)
            notice = f"New run: the setup changed ({', '.join(changed)}); it starts from step 0."
        else:
            notice = None
        session = self._new_run(sid, config, upload, lesson)
        if notice and session is not None:
            session.extras["notice"] = notice
        self.manager.request_start(sid)
        return self.status(request)

    def _csv_for(self, config: TrainConfig, upload: str | None, session) -> bytes | None:
        """The uploaded CSV's bytes for a CSV run; None for other datasets.

        A CSV run loaded from a file carries its points but no upload: with no new upload,
        its setup stays the loaded one (so Start resumes it).
        """
        if config.dataset != "csv":
            return None
        if upload is None and session is not None and session.extras.get("setup", {}).get("csv") == "loaded":
            return None
        csv_bytes = _read_upload(upload)
        if csv_bytes is None:
            raise refusal("Upload a CSV file of 2-D points first (two columns: x, y).")
        return csv_bytes

    def _new_run(self, sid: str, config: TrainConfig, upload: str | None, lesson: str = ""):
        csv_bytes = self._csv_for(config, upload, None)
        try:
            session = self._with_speed(sid, self.manager.create(sid, config, csv_bytes))
        except (ConfigError, DataError, ServerBusy, RuntimeError, TimeoutError) as exc:
            raise refusal(str(exc)) from None
        session.extras["setup"] = setup_of(config, lesson, csv_bytes)
        session.runner.publish_frame()  # the plots show G and D at step 0 before Start
        return session

    def _with_speed(self, sid: str, session):
        """A new run (A or B) keeps the visitor's speed setting."""
        session.runner.set_speed(self._speeds.get(sid.removesuffix(COMPARE_SUFFIX)))
        return session

    def pause(self, request: gr.Request):
        sid = self._sid(request)
        for key in (sid, sid + COMPARE_SUFFIX):
            session = self.manager.get(key)
            if session is not None:
                self.manager.cancel_start(key)
                session.runner.pause()
                session.extras.pop("notice", None)
        return self.status(request)

    def resume(self, request: gr.Request):
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:
            raise refusal("Nothing to resume yet: press Start.")
        if session.runner.state() == "error":
            raise refusal("This run failed; press Reset, then Start.")
        self.manager.request_start(sid)
        if self.manager.get(sid + COMPARE_SUFFIX) is not None:
            self.manager.request_start(sid + COMPARE_SUFFIX)
        return self.status(request)

    def step(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
             label_smoothing, two_sided, upload, lesson, request: gr.Request):
        """One training step (k D updates + 1 G update), then stay paused."""
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:
            config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                              label_smoothing, two_sided, lesson).config()
            session = self._new_run(sid, config, upload, lesson)
        self.manager.cancel_start(sid)
        session.runner.step(1)
        return self.status(request)

    def reset(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
              label_smoothing, two_sided, upload, lesson, request: gr.Request):
        """Throw the run away and build a fresh one (step 0) from the controls; not started."""
        config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                          label_smoothing, two_sided, lesson).config()
        self._new_run(self._sid(request), config, upload, lesson)
        return self.status(request)

    def step_d(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
               label_smoothing, two_sided, upload, lesson, request: gr.Request):
        """One discriminator update only (G unchanged), then stay paused."""
        controls = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                            label_smoothing, two_sided, lesson)
        return self._single_update("d", controls, upload, request)

    def step_g(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
               label_smoothing, two_sided, upload, lesson, request: gr.Request):
        """One generator update only (D unchanged), then stay paused."""
        controls = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                            label_smoothing, two_sided, lesson)
        return self._single_update("g", controls, upload, request)

    def _single_update(self, network: str, controls: Controls, upload, request: gr.Request):
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:  # like Step: the first press builds the run from the controls
            session = self._new_run(sid, controls.config(), upload)
        if session.runner.state() == "error":
            raise refusal("This run failed; press Reset, then Start.")
        self.manager.cancel_start(sid)
        try:
            (session.runner.step_d if network == "d" else session.runner.step_g)()
        except TimeoutError as exc:
            raise refusal(f"The run did not answer: {exc}") from None
        return self.status(request)

    def use_drawing(self, sketch, request: gr.Request):
        """Turn the drawing into 2-D points, written as a CSV the upload box then holds: Start
        trains on them through the CSV path (same checks and limits). Outputs: dataset, upload, status."""
        try:
            points = points_from_strokes(_ink(sketch), DRAWN_POINTS, np.random.default_rng())
        except DataError as exc:
            raise refusal(str(exc)) from None
        path = Path(tempfile.mkdtemp(prefix="gan-drawing-")) / "my_drawing.csv"
        path.write_text(points_csv(points))
        note = (f"**Your drawing is the data:** {len(points):,} points sampled from the strokes. "
                "Press **Start** to train on them.")
        return "csv", gr.update(value=str(path), visible=True), note

    # --- live controls ---------------------------------------------------------------------------

    def live(self, loss, g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided,
             request: gr.Request):
        """Apply the live sliders to the running GAN at its next step."""
        try:
            changes = dict(loss=loss, **live_values(g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided))
        except ConfigError as exc:
            raise refusal(str(exc)) from None
        session = self._session(request)
        if session is None:
            return gr.skip()
        try:
            session.runner.update(**changes)  # the engine's config refuses e.g. WGAN-GP for a BatchNorm D
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(str(exc)) from None
        return self.status(request)

    def set_speed(self, speed, request: gr.Request):
        """Slow motion: limit the run (and a B run) to `speed` steps/s, or "max"; no restart."""
        limit = _speed_limit(speed)
        sid = self._sid(request)
        self._speeds[sid] = limit
        for key in (sid, sid + COMPARE_SUFFIX):
            session = self.manager.get(key)
            if session is not None:
                session.runner.set_speed(limit)
        return self.status(request)

    def _apply_live(self, session, config: TrainConfig) -> None:
        session.runner.update(**{f: getattr(config, f) for f in LIVE_FIELDS})

    # --- reading ------------------------------------------------------------------------------------

    def status(self, request: gr.Request) -> str:
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:
            return "**Ready.** Choose a dataset and press **Start**."
        snap = session.runner.snapshot()
        cfg = session.runner.config  # includes changes queued for the next step
        position = self.manager.queue_position(sid)
        state = snap.state
        if position:
            head = self.manager.wait_message(sid)
        else:
            head = f"**{state.capitalize()}**"
        limit = session.runner.speed_limit
        rate = f"{snap.steps_per_s:,.0f} steps/s" + (f" (slow motion: {limit:g}/s)" if limit else "")
        parts = [head, f"step **{snap.step:,}**", rate,
                 "GPU" if snap.device.startswith("cuda") else "CPU",
                 f"G lr {_fmt_lr(cfg.g_lr)} · D lr {_fmt_lr(cfg.d_lr)} · k={cfg.n_critic}"
                 + (f" · smoothing {cfg.label_smoothing:g}" if cfg.label_smoothing else "")]
        scale = lr_scale(cfg, snap.step)
        if scale < 0.99:  # say so once the decay is visible in two digits
            parts.append(f"lr decay: now G {_fmt_lr(cfg.g_lr * scale)} · D {_fmt_lr(cfg.d_lr * scale)} "
                         f"({scale:.0%} of the sliders' values, {cfg.lr_decay_final:.0%} by step "
                         f"{cfg.lr_decay_steps:,})")
        frame = snap.frame
        if frame is not None and frame.modes_covered is not None:
            parts.append(f"modes covered **{frame.modes_covered}/{frame.n_modes}** "
                         f"({_fmt_percent(frame.hq_percent)} of samples high quality)")
        if frame is not None and frame.value_estimate is not None:
            parts.append(f"game value V(D,G) = {frame.value_estimate:.2f} (−1.39 when D can only guess)")
        text = " · ".join(parts)
        if session.extras.get("notice"):
            text += f"\n\n> **{session.extras['notice']}**"
        if snap.message:
            text += f"\n\n> **Note:** {snap.message}"
        return text

    def tick(self, request: gr.Request):
        """Timer: redraw only what changed since this visitor's last tick.

        Outputs (TICK_OUTPUTS): status, the five plots, the alerts text, the fix button, the
        rewind menu, the A/B plot. Plots are figure JSON for `liveplot.live_plot`; a plot whose
        JSON equals what this visitor already has is skipped, so a paused run or a slow
        metric costs the browser nothing.
        """
        sid = self._sid(request)
        interval = self.ticks.tick(sid)
        timer_out = gr.skip() if interval is None else gr.update(value=interval)
        self.manager.admit()
        session = self.manager.get(sid)
        if session is None:
            return (*_nothing_new(), timer_out)
        snap = session.runner.snapshot()
        session_b = self.manager.get(sid + COMPARE_SUFFIX)
        key = (snap.version, self.manager.queue_position(sid), session_b and session_b.runner.telemetry.version)
        if session.extras.get("sent") == key:
            return (*_nothing_new(), timer_out)
        due = self._plots_due(session, snap)
        if due == set(PLOT_NAMES):
            session.extras["sent"] = key  # else the next tick draws what this one deferred
        plots_out = [self._if_changed(session, name, FIGURES[name](snap).to_json()) if name in due
                     else liveplot.UNCHANGED for name in PLOT_NAMES]
        graph = overview.overview_svg(snap)
        graph_out = gr.skip() if session.extras.get("overview") == graph else graph
        session.extras["overview"] = graph
        return (self.status(request), graph_out, *plots_out, *self._alerts(session, snap),
                self._rewind_menu(session), *self._compare(session, session_b, snap, due), timer_out)

    @staticmethod
    def _plots_due(session, snap) -> set[str]:
        """The plots to redraw this tick (see HISTORY_REDRAW_S)."""
        last_step, last_t = session.extras.get("history_drawn", (None, 0.0))
        now = time.monotonic()
        if (snap.state != "running" or last_step is None or snap.step - last_step < SLOW_STEPS_PER_TICK
                or now - last_t >= HISTORY_REDRAW_S):
            session.extras["history_drawn"] = (snap.step, now)
            return set(PLOT_NAMES)
        return set(PLOT_NAMES) - set(HISTORY_PLOTS)

    @staticmethod
    def _if_changed(session, name: str, figure_json: str):
        """The figure's JSON, or UNCHANGED if this visitor's page already shows exactly it."""
        sent = session.extras.setdefault("plots_sent", {})
        if sent.get(name) == figure_json:
            return liveplot.UNCHANGED
        sent[name] = figure_json
        return figure_json

    def _alerts(self, session, snap) -> tuple:
        alerts = detect(snap)
        text = "\n\n".join(f"**{a.title}** — {a.explanation} *What to do:* {a.suggestion}" for a in alerts)
        with_fix = next((a for a in alerts if a.fix), None)
        if session.extras.get("alert_text") == text:
            text_out = gr.skip()
        else:
            session.extras["alert_text"] = text
            text_out = gr.update(value=text, visible=bool(text))
        session.extras["fix"] = with_fix.fix if with_fix else None
        label = f"Apply fix: {with_fix.fix_label}" if with_fix else ""
        if session.extras.get("fix_label") == label:
            return text_out, gr.skip()
        session.extras["fix_label"] = label
        # A full-size, coloured button: the one action the alert asks for (issue 14).
        return text_out, gr.update(value=label or "Apply fix", visible=with_fix is not None, variant="primary",
                                   size="lg")

    def _rewind_menu(self, session):
        """The checkpoint menu: newest first, keeping the visitor's own pick while it is kept."""
        infos = session.runner.checkpoints.list()
        key = tuple(i.index for i in infos)
        if session.extras.get("menu") == key:
            return gr.skip()
        session.extras["menu"] = key
        choices = [(i.label, i.index) for i in reversed(infos)]
        pick = session.extras.get("checkpoint_pick")
        value = pick if pick in key else (choices[0][1] if choices else None)
        return gr.update(choices=choices, value=value)

    def pick_checkpoint(self, index, request: gr.Request) -> None:
        """Remember the visitor's choice in the checkpoint menu, so new checkpoints don't replace it."""
        session = self._session(request)
        if session is not None:
            session.extras["checkpoint_pick"] = index

    # --- fixes, rewind, save/load, timelapse, presets, share ----------------------------------------

    def apply_fix(self, request: gr.Request):
        """Apply the suggested fix of the current alert; returns the new live control values."""
        session = self._session(request)
        fix = session.extras.get("fix") if session is not None else None
        if not fix:
            raise refusal("No fix to apply right now.")
        try:
            config = session.runner.update(**fix)
        except (ConfigError, ValueError) as exc:
            raise refusal(str(exc)) from None
        gr.Info("Applied: " + ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                        for k, v in fix.items()))
        return control_values(config)[4:]

    def rewind(self, index, request: gr.Request):
        session = self._session(request)
        if session is None:
            raise refusal("Nothing to rewind yet: press Start.")
        try:
            session.runner.rewind(int(index))
        except (CheckpointError, TypeError, ValueError) as exc:
            raise refusal(f"Cannot rewind: {exc}") from None
        self.manager.cancel_start(self._sid(request))
        return self.status(request)

    def save(self, request: gr.Request):
        session = self._session(request)
        if session is None:
            raise refusal("Nothing to save yet: press Start.")
        folder = Path(tempfile.mkdtemp(prefix="gan-run-"))
        return str(session.runner.save(folder))

    def load(self, path, request: gr.Request):
        """Load a saved run (safetensors + JSON: no code is executed), paused at its real step with
        the history the file carries, a checkpoint there and a fresh look at G and D.

        Outputs: status, the ten controls, the lesson menu (Free play) and its text.
        """
        if path is None:
            return (gr.skip(),) * 13
        data = read_visitor_file(path, what="The run file", max_bytes=MAX_RUN_FILE_BYTES)
        sid = self._sid(request)
        try:
            engine, history = read_run_bytes(data, device="auto")
            # The time-lapse saved with the run (checked before the visitor's run is replaced),
            # so a GIF made later still starts at step 0.
            timelapse = TimelapseRecorder.from_tensors(read_run_extras(data, "timelapse"), engine.step_count)
            session = self._with_speed(sid, self.manager.create(sid, engine.config, engine=engine))
            step = engine.step_count
            session.runner.open_loaded(history, timelapse, f"Loaded a saved run at step {step:,}: press Resume "
                                                           "(or Start) to continue it.")
        except (CheckpointError, ConfigError, ValueError, RuntimeError, TimeoutError) as exc:
            raise refusal(f"Cannot load this file ({len(data):,} bytes): {exc}") from None
        session.extras["setup"] = setup_of(engine.config, "", None)
        if engine.config.dataset == "csv":
            session.extras["setup"]["csv"] = "loaded"  # its points are in the file, not an upload
        self.manager.release(sid + COMPARE_SUFFIX)
        return (self.status(request), *control_values(session.runner.config), "", _lesson_text(""))

    def check_csv(self, path):
        """Validate an uploaded CSV at once (not only on Start) and say what was read."""
        if path is None:
            return
        try:
            points = parse_points_csv(_read_upload(path))
        except DataError as exc:
            raise refusal(f"This CSV cannot be used: {exc}") from None
        gr.Info(f"Read {len(points):,} points from the CSV. Press Start to train on them.")

    def timelapse(self, request: gr.Request):
        session = self._session(request)
        if session is None or len(session.runner.timelapse) < 2:
            raise refusal("Train for a few seconds first: the timelapse needs at least two frames.")
        path = Path(tempfile.mkdtemp(prefix="gan-timelapse-")) / f"timelapse-step{session.runner.snapshot().step}.gif"
        gif.to_gif(session.runner.timelapse.frames(), path, fps=8)
        return str(path)

    def share_link(self, lesson, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                   label_smoothing, two_sided, hide, request: gr.Request) -> str:
        """A link that opens this page with the same setup (and, for teachers, hidden controls)."""
        values = dict(zip(SHARE_KEYS, (lesson, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10,
                                       n_critic, label_smoothing, two_sided)))
        params = {k: v for k, v in values.items() if v not in ("", None)}
        if hide:
            params["hide"] = ",".join(hide)
        base = _page_url(request)
        return f"{base}?{urlencode(params)}"

    # --- A/B comparison -----------------------------------------------------------------------------

    def start_compare(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                      label_smoothing, two_sided, upload, lesson, b_loss, b_g_lr_log10, b_d_lr_log10, b_n_critic,
                      b_label_smoothing, request: gr.Request):
        """Start run A (the controls) and run B (A with the B changes) from the same seed and noise."""
        config_a = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                            label_smoothing, two_sided, lesson).config()
        try:
            changes = dict(loss=b_loss, **live_values(b_g_lr_log10, b_d_lr_log10, b_n_critic, b_label_smoothing,
                                                      two_sided))
            config_b = config_a.with_live(**changes)
        except (ConfigError, TypeError, ValueError) as exc:
            raise refusal(f"Run B: {exc}") from None
        sid = self._sid(request)
        self._new_run(sid + COMPARE_SUFFIX, config_b, upload, lesson)  # validates B before replacing A
        self._new_run(sid, config_a, upload, lesson)
        self.manager.request_start(sid)
        self.manager.request_start(sid + COMPARE_SUFFIX)
        return self.status(request)

    def stop_compare(self, request: gr.Request):
        self.manager.release(self._sid(request) + COMPARE_SUFFIX)
        return gr.update(visible=False)

    def _compare(self, session, session_b, snap_a, due: set[str]) -> tuple:
        """The A/B box's visibility and its four plots: both runs' samples side by side,
        their losses and their coverage (history plots follow the same pace as above)."""
        if session_b is None:
            for name in COMPARE_PLOTS:
                session.extras.get("plots_sent", {}).pop(name, None)
            shown = session.extras.pop("compare_shown", False)
            return (gr.update(visible=False) if shown else gr.skip(), *(liveplot.UNCHANGED for _ in COMPARE_PLOTS))
        b = session_b.runner
        snap_b = b.snapshot()
        diff = {f: getattr(b.config, f) for f in LIVE_FIELDS if getattr(b.config, f) != getattr(snap_a.config, f)}
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in diff.items()) or "same"
        history = "losses" in due
        figures = {
            "compare_samples_a": lambda: plots.samples_figure(snap_a, label="A"),
            "compare_samples_b": lambda: plots.samples_figure(snap_b, label=f"B ({label})"),
            "compare_losses": lambda: plots.compare_figure(snap_a, snap_b, "A", f"B ({label})") if history else None,
            "compare_coverage": lambda: plots.compare_coverage_figure(snap_a, snap_b, "A", "B") if history else None,
        }
        out = []
        for name in COMPARE_PLOTS:
            fig = figures[name]()
            out.append(liveplot.UNCHANGED if fig is None else self._if_changed(session, name, fig.to_json()))
        shown = session.extras.get("compare_shown", False)
        session.extras["compare_shown"] = True
        return (gr.skip() if shown else gr.update(visible=True), *out)

    def on_load(self, request: gr.Request):
        """Read a shared setup from the URL: control values, lesson and hidden controls."""
        query = dict(getattr(request, "query_params", {}) or {})
        values = list(control_values(default_config("ring8"))) + [""]  # + lesson
        keys = ("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k", "smoothing", "two_sided", "lesson")
        note = ""
        if query.get("lesson") in PRESETS:
            values = list(control_values(get_preset(query["lesson"]).config)) + [query["lesson"]]
        try:
            for i, key in enumerate(keys[:-1]):
                if key in query:
                    values[i] = _parse_query_value(key, query[key])
            Controls(*values).config()  # validates the whole setup
        except gr.Error as exc:  # already a visitor-safe message
            values = list(control_values(default_config("ring8"))) + [""]
            note = f"The link's setup was ignored: {exc.message}"
        except ValueError as exc:
            values = list(control_values(default_config("ring8"))) + [""]
            note = refusal(f"The link's setup was ignored: {exc}").message
        hidden = set(filter(None, str(query.get("hide", "")).split(","))) & set(HIDEABLE)
        updates = [gr.update(value=v, visible=keys[i] not in hidden) for i, v in enumerate(values)]
        lesson_text = _lesson_text(values[-1])
        if note:
            gr.Warning(note)
        b_updates = [gr.update(visible=name not in hidden) for name in B_CONTROLS]
        return (*updates, lesson_text, gr.update(visible=values[0] == "csv"), *b_updates)

    def choose_lesson(self, lesson, request: gr.Request):
        """Stage the lesson: a fresh run with the preset's configuration, at step 0, not started.

        The controls show exactly what will train, so touching a slider afterwards changes
        the lesson's run, never the previous one (issue 14). "Free play" changes nothing.
        """
        if not lesson:
            return (*(gr.skip() for _ in range(10)), _lesson_text(""))
        preset = get_preset(lesson)
        sid = self._sid(request)
        old = self.manager.get(sid)
        old_step = old.runner.snapshot().step if old is not None else 0
        self.manager.release(sid + COMPARE_SUFFIX)
        session = self._new_run(sid, preset.config, None, lesson)
        replaced = f" (the previous run, at step {old_step:,}, was replaced)" if old_step else ""
        session.extras["notice"] = f"Lesson “{preset.title}” is set up at step 0{replaced}. Press Start."
        return (*control_values(preset.config), _lesson_text(lesson))

    def server_stats(self) -> dict:
        """Counts for operators and the load benchmark (no per-visitor data)."""
        stats = self.manager.stats()
        stats["steps_per_s"] = self.manager.running_rates()
        stats["capacity"] = self.manager.capacity()
        stats["training_threads"] = self.manager.training_threads()
        return stats

    def unload(self, request: gr.Request) -> None:
        sid = getattr(request, "session_hash", None)
        if sid:
            self._speeds.pop(sid, None)
            self.ticks.forget(sid)
            self.manager.release(sid)
            self.manager.release(sid + COMPARE_SUFFIX)


def _nothing_new() -> tuple:
    """A tick with nothing new, up to the timer: live plots get liveplot.UNCHANGED (cheaper than
    gr.skip(), see there)."""
    return tuple(liveplot.UNCHANGED if name in PLOT_NAMES or name in COMPARE_PLOTS else gr.skip()
                 for name in TICK_OUTPUTS[:-1])


MAX_DRAWING_BYTES = 8_000_000  # a 400×400 RGBA PNG is far smaller


def _picture(path) -> np.ndarray:
    """One of the Sketchpad's pictures (a cached upload, through the upload gate) as an array."""
    from PIL import Image, UnidentifiedImageError

    data = read_visitor_file(path, what="The drawing", max_bytes=MAX_DRAWING_BYTES)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > 4096 * 4096:
                raise refusal("The drawing is too large: paint on the page's canvas.")
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError):
        raise refusal("The drawing is not a picture: paint on the page's canvas, then try again.") from None


def _ink(sketch) -> np.ndarray:
    """The painted-ness of a Sketchpad value (type="filepath") as an (H, W) array: the layers'
    alpha (the strokes), else the composite's darkness on its white background."""
    empty = "The canvas is empty: paint a shape with the brush (press and drag), then try again."
    if not isinstance(sketch, dict):
        raise refusal(empty)
    layers = [_picture(layer) for layer in (sketch.get("layers") or [])[:8] if layer is not None]
    if layers and len({layer.shape for layer in layers}) == 1:
        return np.max([layer[..., 3] for layer in layers], axis=0)
    if sketch.get("composite") is None:
        raise refusal(empty)
    rgb = _picture(sketch["composite"])[..., :3].astype(np.int16)
    return 255 - rgb.min(axis=-1)


def _speed_limit(speed) -> float | None:
    """A Speed choice ("max" or steps/s as text or number) → the runner's limit; gr.Error if absurd."""
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


def _lesson_text(lesson: str):
    if not lesson:
        return gr.update(value="", visible=False)
    preset = get_preset(lesson)
    return gr.update(value=f"{preset.explanation}\n\n*Watch for:* {preset.watch}. Press **Start**.", visible=True)


def _parse_query_value(key: str, raw: str):
    if key in ("batch", "seed", "k"):
        return int(raw)
    if key in ("g_lr", "d_lr", "smoothing"):
        return float(raw)
    if key == "two_sided":
        return raw.lower() in ("1", "true", "yes")
    return raw


def _page_url(request: gr.Request) -> str:
    headers = getattr(request, "headers", {}) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    proto = headers.get("x-forwarded-proto") or "http"
    return f"{proto}://{host}/"


FIGURES = {"samples": plots.samples_figure, "d_hist": plots.d_output_figure, "losses": plots.loss_figure,
           "d_means": plots.d_means_figure, "coverage": plots.coverage_figure}


def figures(snap) -> tuple:
    return tuple(FIGURES[name](snap) for name in PLOT_NAMES)
