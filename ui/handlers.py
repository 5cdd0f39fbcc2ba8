"""Event handlers for app.py: short functions of the UI inputs and a session id.

Each visitor is keyed by `gr.Request.session_hash`. Handlers translate UI
values into `TrainConfig`s and runner calls, turn engine errors into
`gr.Error` messages (state unchanged), and read immutable snapshots to draw.
"""

import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from gan_core import plots
from gan_core.config import ConfigError, TrainConfig, default_config
from gan_core.data import CSV_MAX_BYTES, DataError
from gan_core.losses import LOSSES
from gan_core.sessions import ServerBusy, SessionManager

DATASET_CHOICES = [
    ("Ring of 8 Gaussians", "ring8"),
    ("Ring of 8 (wide, easier to see)", "ring8_wide"),
    ("5×5 grid of Gaussians", "grid25"),
    ("Spiral", "spiral"),
    ("Two moons", "moons"),
    ("MNIST digits (bundled, 28×28)", "digits"),
    ("My own 2-D points (CSV upload)", "csv"),
]
LOSS_CHOICES = [(loss.title, name) for name, loss in LOSSES.items()]
SIZE_CHOICES = ["small", "medium", "large"]
WIDTHS = {"toy": {"small": 32, "medium": 64, "large": 128}, "digits": {"small": 16, "medium": 32, "large": 64}}
PLOT_NAMES = ("samples", "d_hist", "losses", "d_means", "coverage")


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

    def config(self) -> TrainConfig:
        """The TrainConfig these controls describe; raises gr.Error on a bad value."""
        try:
            if self.size not in SIZE_CHOICES:
                raise ConfigError(f"model size must be one of {', '.join(SIZE_CHOICES)}, got {self.size!r}")
            width = WIDTHS["digits" if self.dataset == "digits" else "toy"][self.size]
            return default_config(
                self.dataset, width=width, batch_size=self.batch_size, seed=self.seed, loss=self.loss,
                **live_values(self.g_lr_log10, self.d_lr_log10, self.n_critic, self.label_smoothing,
                              self.two_sided),
            )
        except (ConfigError, TypeError, ValueError) as exc:
            raise gr.Error(str(exc)) from None


def live_values(g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided) -> dict:
    for name, v in (("G learning rate", g_lr_log10), ("D learning rate", d_lr_log10)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{name} (log₁₀) must be a finite number, got {v!r}")
    return dict(g_lr=10.0 ** g_lr_log10, d_lr=10.0 ** d_lr_log10, n_critic=n_critic,
                label_smoothing=label_smoothing, two_sided_smoothing=two_sided)


def defaults_for(dataset: str) -> tuple:
    """Control values (loss, g_lr_log10, d_lr_log10, k, smoothing, two-sided, batch) for a dataset."""
    if dataset not in dict((v, k) for k, v in DATASET_CHOICES):
        raise gr.Error(f"unknown dataset {dataset!r}")
    cfg = default_config(dataset if dataset != "csv" else "moons")
    return (cfg.loss, round(math.log10(cfg.g_lr), 2), round(math.log10(cfg.d_lr), 2), cfg.n_critic,
            cfg.label_smoothing, cfg.two_sided_smoothing, cfg.batch_size)


def _read_upload(path: str | None) -> bytes | None:
    if path is None:
        return None
    file = Path(path)
    size = file.stat().st_size
    if size > CSV_MAX_BYTES:
        raise gr.Error(f"The file is {size:,} bytes; the limit is {CSV_MAX_BYTES:,} bytes.")
    return file.read_bytes()


def _fmt_lr(lr: float) -> str:
    return f"{lr:.1e}".replace("e-0", "e-")


class Handlers:
    """All UI callbacks, bound to one `SessionManager`."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    @staticmethod
    def _sid(request: gr.Request | None) -> str:
        sid = getattr(request, "session_hash", None)
        if not sid:
            raise gr.Error("No browser session: reload the page.")
        return sid

    def _session(self, request):
        return self.manager.get(self._sid(request))

    # --- buttons ------------------------------------------------------------------------------

    def start(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
              label_smoothing, two_sided, upload, request: gr.Request):
        """Start a new run from the controls, or resume the current one if its setup is unchanged."""
        config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                          label_smoothing, two_sided).config()
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is not None and session.runner.state() in ("paused", "running", "finished"):
            current = session.runner.config
            if _same_setup(current, config) and session.runner.state() != "finished":
                self._apply_live(session, config)
                self.manager.request_start(sid)
                return self.status(request)
        self._new_run(sid, config, upload)
        self.manager.request_start(sid)
        return self.status(request)

    def _new_run(self, sid: str, config: TrainConfig, upload: str | None):
        csv_bytes = _read_upload(upload) if config.dataset == "csv" else None
        if config.dataset == "csv" and csv_bytes is None:
            raise gr.Error("Upload a CSV file of 2-D points first (two columns: x, y).")
        try:
            return self.manager.create(sid, config, csv_bytes)
        except (ConfigError, DataError, ServerBusy, RuntimeError) as exc:
            raise gr.Error(str(exc)) from None

    def pause(self, request: gr.Request):
        session = self._session(request)
        if session is not None:
            self.manager.cancel_start(self._sid(request))
            session.runner.pause()
        return self.status(request)

    def resume(self, request: gr.Request):
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:
            raise gr.Error("Nothing to resume yet: press Start.")
        if session.runner.state() == "error":
            raise gr.Error("This run failed; press Reset, then Start.")
        self.manager.request_start(sid)
        return self.status(request)

    def step(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
             label_smoothing, two_sided, upload, request: gr.Request):
        """One training step (k D updates + 1 G update), then stay paused."""
        sid = self._sid(request)
        session = self.manager.get(sid)
        if session is None:
            config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                              label_smoothing, two_sided).config()
            session = self._new_run(sid, config, upload)
        self.manager.cancel_start(sid)
        session.runner.step(1)
        return self.status(request)

    def reset(self, dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
              label_smoothing, two_sided, upload, request: gr.Request):
        """Throw the run away and build a fresh one (step 0) from the controls; not started."""
        config = Controls(dataset, size, batch_size, seed, loss, g_lr_log10, d_lr_log10, n_critic,
                          label_smoothing, two_sided).config()
        self._new_run(self._sid(request), config, upload)
        return self.status(request)

    # --- live controls ---------------------------------------------------------------------------

    def live(self, loss, g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided,
             request: gr.Request):
        """Apply the live sliders to the running GAN at its next step."""
        session = self._session(request)
        if session is None:
            return gr.skip()
        try:
            changes = dict(loss=loss, **live_values(g_lr_log10, d_lr_log10, n_critic, label_smoothing, two_sided))
            if loss == "wgan-gp" and session.runner.config.dataset == "digits":
                raise ConfigError("WGAN-GP on digits needs a discriminator without BatchNorm: "
                                  "choose the loss before pressing Start/Reset.")
            session.runner.update(**changes)
        except (ConfigError, TypeError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        return self.status(request)

    def _apply_live(self, session, config: TrainConfig) -> None:
        session.runner.update(**{f: getattr(config, f) for f in (
            "loss", "g_lr", "d_lr", "n_critic", "label_smoothing", "two_sided_smoothing", "batch_size")})

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
            stats = self.manager.stats()
            head = (f"**Waiting for a free trainer — position {position} in the queue** "
                    f"({stats['running']}/{stats['max_active']} runs training on this server).")
        else:
            head = f"**{state.capitalize()}**"
        parts = [head, f"step **{snap.step:,}**", f"{snap.steps_per_s:,.0f} steps/s",
                 "GPU" if snap.device.startswith("cuda") else "CPU",
                 f"G lr {_fmt_lr(cfg.g_lr)} · D lr {_fmt_lr(cfg.d_lr)} · k={cfg.n_critic}"
                 + (f" · smoothing {cfg.label_smoothing:g}" if cfg.label_smoothing else "")]
        frame = snap.frame
        if frame is not None and frame.modes_covered is not None:
            parts.append(f"modes **{frame.modes_covered}/{frame.n_modes}**, {frame.hq_percent:.0f}% high quality")
        if frame is not None and frame.value_estimate is not None:
            parts.append(f"V(D,G) = {frame.value_estimate:.2f} (equilibrium −log 4 = −1.39)")
        text = " · ".join(parts)
        if snap.message:
            text += f"\n\n> **Note:** {snap.message}"
        return text

    def tick(self, request: gr.Request):
        """Timer: redraw only when the run published something new."""
        sid = self._sid(request)
        self.manager.admit()
        session = self.manager.get(sid)
        n_out = 1 + len(PLOT_NAMES)
        if session is None:
            return tuple(gr.skip() for _ in range(n_out))
        snap = session.runner.snapshot()
        key = (snap.version, self.manager.queue_position(sid))
        if session.extras.get("sent") == key:
            return tuple(gr.skip() for _ in range(n_out))
        session.extras["sent"] = key
        return (self.status(request), *figures(snap))

    def server_stats(self) -> dict:
        """Counts for operators and the load benchmark (no per-visitor data)."""
        import threading

        stats = self.manager.stats()
        stats["steps_per_s"] = self.manager.running_rates()
        stats["training_threads"] = sum(1 for t in threading.enumerate() if t.name.startswith("gan-"))
        return stats

    def unload(self, request: gr.Request) -> None:
        sid = getattr(request, "session_hash", None)
        if sid:
            self.manager.release(sid)


def _same_setup(a: TrainConfig, b: TrainConfig) -> bool:
    """True when only live fields differ, so the run can continue."""
    keys = ("dataset", "z_dim", "width", "depth", "pack", "seed", "device", "gp_weight")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def figures(snap) -> tuple:
    return (plots.samples_figure(snap), plots.d_output_figure(snap), plots.loss_figure(snap),
            plots.d_means_figure(snap), plots.coverage_figure(snap))
