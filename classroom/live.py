"""The live channel: what an open page polls, built once per run version and shared by every viewer.

Why not a Gradio event per update: a tick through Gradio's queue costs ~12 ms of server CPU even
with nothing new (the event machinery, under the interpreter lock the web server shares), so a
class of 30 pages ticking 2.5 times a second took most of a core. Instead each page polls
`GET /gan/live/{token}?since={key}`, a small route mounted on Gradio's own FastAPI app:

- `token` is the page's secret (`pages.PageState.token`, 128 random bits, handed to the page by
  its load event); any other string gets 404 and nothing else, so a visitor reaches only their
  own run (never by session id, which the browser makes up);
- nothing new since `since`: 204 and the pace to poll at (`X-Next-Ms`), without building anything;
- otherwise: JSON with the status line, the model graph, the figures whose content changed, and
  `sync` when the alert, fix button, rewind menu or A/B box (Gradio components) need refreshing —
  the page then fires one Gradio event (`Page.sync`) for those.

Figures are built by `RunFrames` at most once per snapshot version of a run (history curves at
most once a second while a run races) and kept as JSON bytes, so ten viewers of one run (a
projected run, the teacher's class view) cost one build; a payload is joined from those bytes,
never re-serialised per viewer. `RunFrames` lives where the run trains (`RunHandle.view`): for a
run in a trainer process the figures are built there, outside the web server's interpreter lock,
and only the parts that changed cross, with the status line's facts (`Brief`) and the alerts —
not the snapshot's arrays. The server keeps a copy (`Frames`, in `FrameCache`) that every
viewer's payload is joined from. (The A/B plots, of two runs that may train in two processes,
are built here from both snapshots.) `PagePace` sets the poll interval from what the page work costs
(the server's own CPU and the trainers' builds, measured), slower as more pages open.

Not here: the figures themselves (`plots.py`, `overview.py`), the JavaScript that draws them
(`LIVE_JS` below hands them to `liveplot.py`'s plots).
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Sequence

import orjson

from gan_core.engine import lr_scale
from gan_core.losses import get_loss
from gan_core.serve.handle import RunHandle, RunUnreachable
from gan_core.telemetry import Snapshot

from . import overview, plots
from .alerts import Alert, detect
from .experiment import card_fields
from .pages import COMPARE_SUFFIX, PageState, Pages
from .png import png_data_url
from .sessions import SessionManager
from .thumbnail import thumbnail_png

PLOT_NAMES = ("samples", "d_hist", "losses", "d_means", "coverage")
COMPARE_PLOTS = ("compare_samples_a", "compare_samples_b", "compare_losses", "compare_coverage")
HISTORY_PLOTS = ("losses", "d_means", "coverage")
PAGE_PARTS = (*PLOT_NAMES, "overview")  # a run's parts that its page shows (not the class view's "thumb")
# The history curves redraw at most once a second while a run races: a second more of a long
# history hardly moves a 600-point curve, and each redraw costs the browser ~20 ms per plot.
# In slow motion (fewer new steps than this per redraw), paused or stepping, every version draws.
# The alerts are read again with them.
HISTORY_REDRAW_S = 1.0
SLOW_STEPS = 50
THUMB_S = 3.0  # a run's class-view thumbnail is drawn again at most this often (a new frame: ~every second)
FIGURES: dict[str, Callable[[Snapshot], plots.Figure]] = {
    "samples": plots.samples_figure, "d_hist": plots.d_output_figure, "losses": plots.loss_figure,
    "d_means": plots.d_means_figure, "coverage": plots.coverage_figure}
READY = "<b>Ready.</b> Choose a dataset and press <b>Start</b>."

# Pace (PagePace): a page polls every POLL_S while the web server has CPU to spare, slower (up to
# POLL_MAX_S) when the pages' work — the server's (the pages, Gradio's events and idle loop,
# reading the trainer processes) and the trainer processes' figure builds — would take more than
# SERVER_SHARE of one core: the rest is the trainers'. 30 pages whose runs train cost ~3.5 ms of
# CPU per poll on a busy 2-core box (new figures each time): at 0.10 they settled at a poll each
# 1.3 s and took 8 % of a core, which the class's trainers then lacked; at 0.06 they poll every
# 1.5–2 s (`python -m benchmarks tickcost`), while a lone page (~0.5 % of a core) keeps POLL_S.
POLL_S = 0.4
POLL_MAX_S = 2.0
POLL_HIDDEN_S = 5.0  # a tab in the background polls this rarely (the page's own rule)
SERVER_SHARE = 0.06
PACE_WINDOW_S = 2.0
PAGE_IDLE_S = 600.0  # a page not polled for this long is forgotten


@dataclass(frozen=True)
class Built:
    """One part of a run's frame: its JSON bytes and a key that changes when they do."""

    key: object
    data: bytes


@dataclass(frozen=True)
class Brief:
    """What the status line reads of a snapshot (no arrays: it crosses from a trainer process)."""

    version: int
    state: str
    message: str
    step: int
    steps_per_s: float
    device: str
    modes_covered: int | None = None
    n_modes: int | None = None
    hq_percent: float | None = None
    value_estimate: float | None = None

    @classmethod
    def of(cls, snap: Snapshot) -> "Brief":
        frame = snap.frame
        scores = {} if frame is None else dict(modes_covered=frame.modes_covered, n_modes=frame.n_modes,
                                               hq_percent=frame.hq_percent, value_estimate=frame.value_estimate)
        return cls(snap.version, snap.state, snap.message, snap.step, snap.steps_per_s, snap.device, **scores)


@dataclass(frozen=True)
class FrameUpdate:
    """A `RunFrames`' answer: the parts built since the reader's key, and what it read of the run."""

    epoch: str  # the RunFrames' identity: a reader holding another's keys gets every part
    counter: int  # the newest part's key
    parts: dict[str, Built]
    brief: Brief
    alerts: list[Alert]
    card: dict | None  # the class view's record of the run (asked for with `card=True`)
    pid: int  # the process that built it, and the CPU seconds it took there (`PagePace.charge`)
    cpu_s: float


class RunFrames:
    """Everything a viewer shows of one run, built from its snapshots where the run trains (a
    `SnapshotView`: `RunHandle.view(RunFrames, …)`), at most once per snapshot version for every
    viewer: the page's figures, graph and alerts, and the class view's card (`card=True`: the
    record and the thumbnail, drawn again when a new evaluation frame came, at most every
    THUMB_S). Each part keeps its JSON bytes with a key; a reader says which key it holds and gets
    the parts built since. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.epoch = secrets.token_hex(8)
        self.version = -1
        self.parts: dict[str, Built] = {}
        self.counter = 0
        self.alerts: list[Alert] = []
        self.history_at = (-1, -math.inf)  # (step, time) the history plots were last built
        self.alerts_at = (-1, -math.inf)  # … and the alerts read
        self.frame_of: object = None  # the EvalFrame the samples and histograms were built from
        self.thumb_of: object = None  # … and the thumbnail, and when
        self.thumb_at = -math.inf
        self.card: dict | None = None

    def __call__(self, snap: Snapshot, epoch: str = "", known: int = 0, card: bool = False) -> FrameUpdate:
        cpu = time.thread_time()
        with self.lock:
            if card:
                self._card(snap)
            else:
                self.update(snap)
            fresh = epoch != self.epoch
            parts = {name: built for name, built in self.parts.items() if fresh or built.key > known}
            return FrameUpdate(self.epoch, self.counter, parts, Brief.of(snap), list(self.alerts),
                               self.card if card else None, os.getpid(), time.thread_time() - cpu)

    def _put(self, name: str, data: bytes) -> None:
        old = self.parts.get(name)
        if old is None or old.data != data:
            self.counter += 1
            self.parts[name] = Built(self.counter, data)

    @staticmethod
    def _due(snap: Snapshot, at: tuple[int, float]) -> bool:
        """Whether what reads the history is due again: always in slow motion, paused or stepping,
        at most every HISTORY_REDRAW_S while the run races."""
        step, t = at
        return snap.state != "running" or snap.step - step < SLOW_STEPS or time.monotonic() - t >= HISTORY_REDRAW_S

    def _read_alerts(self, snap: Snapshot) -> None:
        if self._due(snap, self.alerts_at):
            self.alerts_at = (snap.step, time.monotonic())
            self.alerts = detect(snap)

    def update(self, snap: Snapshot) -> None:
        """Rebuild the page's parts that `snap` changed (the caller holds `lock`)."""
        if snap.version == self.version:
            return
        self.version = snap.version
        if snap.frame is not self.frame_of or "samples" not in self.parts:
            self.frame_of = snap.frame
            for name in ("samples", "d_hist"):
                self._put(name, FIGURES[name](snap).to_bytes())
        if self._due(snap, self.history_at) or "losses" not in self.parts:
            self.history_at = (snap.step, time.monotonic())
            for name in HISTORY_PLOTS:
                self._put(name, FIGURES[name](snap).to_bytes())
        self._read_alerts(snap)
        self._put("overview", orjson.dumps(overview.overview_svg(snap)))

    def _card(self, snap: Snapshot) -> None:
        """The class view's record and thumbnail of the run (the caller holds `lock`)."""
        self._read_alerts(snap)
        self.card = card_fields(snap, self.alerts)
        now = time.monotonic()
        if snap.frame is not None and snap.frame is not self.thumb_of and now - self.thumb_at >= THUMB_S:
            self.thumb_of, self.thumb_at = snap.frame, now
            png = thumbnail_png(snap.frame, get_loss(snap.config.loss).is_probability)
            self._put("thumb", orjson.dumps(png_data_url(png)))


@dataclass(frozen=True)
class Frames:
    """A run's frames as the server holds them, one immutable record (a merge makes a new one, so
    a reader never sees half an update): the parts as last received from the run's `RunFrames`,
    keyed by its epoch too (frames made afresh — another run, a move to another trainer process —
    never reuse a key a page holds), the status line's facts, the alerts, and the class-view card."""

    epoch: str = ""
    counter: int = 0
    version: int = -1  # of the snapshot the page's parts were last brought up to
    parts: dict[str, Built] = field(default_factory=dict)  # never changed once made
    brief: Brief | None = None
    alerts: tuple[Alert, ...] = ()
    card: dict | None = None
    card_version: int = -1  # of the snapshot the card was built from

    def merged(self, update: FrameUpdate) -> "Frames":
        """These frames with `update` (from the same run) applied."""
        same = update.epoch == self.epoch
        parts = dict(self.parts) if same else {}
        for name, built in update.parts.items():
            parts[name] = Built((update.epoch, built.key), built.data)
        if update.card is None:  # the page's parts were brought up to this version
            return Frames(update.epoch, update.counter, update.brief.version, parts, update.brief,
                          tuple(update.alerts), self.card if same else None, self.card_version if same else -1)
        return Frames(update.epoch, update.counter, self.version if same else -1, parts, update.brief,
                      tuple(update.alerts), update.card, update.brief.version)

    def unreachable(self, gone: RunUnreachable, version: int) -> "Frames":
        """These frames of a run that can no longer be asked: what it last showed, in the state
        `gone` says (`version`: the handle's, so the run is not asked again until it changes)."""
        brief = (dataclasses.replace(self.brief, version=version, state=gone.state, message=gone.message,
                                     steps_per_s=0.0) if self.brief is not None
                 else Brief(version, gone.state, gone.message, 0, 0.0, ""))
        card = dict(self.card, state=gone.state, rate=0) if self.card is not None else None
        return dataclasses.replace(self, version=version, brief=brief, card=card, card_version=version)


def delta(parts: dict[str, Built], sent: dict, since: str, state, viewer: object, head: dict) -> tuple[bytes, dict]:
    """(JSON body, new bookkeeping) of a payload for one viewer: `head`'s fields, a new key, and
    under "parts" those of `parts` the viewer does not have — all of them when `since` is not the
    key it was last sent (`sent["key"]`: it reloaded or lost a payload). `state` is kept with the
    key, for the caller's "nothing new" check. Parts are joined as the bytes they were built as."""
    known = sent if since == sent.get("key") else {}
    body_parts, new_sent = [], dict(known)
    for name, built in parts.items():
        if known.get(name) != built.key:
            body_parts.append(b'"' + name.encode() + b'":' + built.data)
            new_sent[name] = built.key
    payload_key = f"{id(viewer):x}.{time.monotonic_ns():x}"
    new_sent["key"], new_sent["state"] = payload_key, state
    start = orjson.dumps({"key": payload_key, **head})
    body = start[:-1] + (b',"parts":{' + b",".join(body_parts) + b"}}" if body_parts else b',"parts":{}}')
    return body, new_sent


class FrameCache:
    """The `Frames` of each run handle, forgotten with the handle. `charge(seconds)` is told the
    CPU time a trainer process spent building for a reader here (`PagePace`)."""

    def __init__(self, charge: Callable[[float], None] = lambda seconds: None) -> None:
        self._lock = threading.Lock()
        self._held: weakref.WeakKeyDictionary[RunHandle, list] = weakref.WeakKeyDictionary()  # [lock, Frames]
        self._charge = charge

    def built(self, runner: RunHandle, card: bool = False) -> Frames:
        """The run's frames brought up to date: built once per version for every reader, asked of
        the run only when its version moved (or for its card, `card=True`)."""
        with self._lock:
            held = self._held.get(runner)
            if held is None:
                held = self._held[runner] = [threading.Lock(), Frames()]
        with held[0]:
            frames = held[1]
            if card or frames.brief is None or frames.version != runner.telemetry.version:
                try:
                    update = runner.view(RunFrames, frames.epoch, frames.counter, card)
                except RunUnreachable as gone:
                    frames = frames.unreachable(gone, runner.telemetry.version)
                else:
                    frames = frames.merged(update)
                    if update.pid != os.getpid():
                        self._charge(update.cpu_s)
                held[1] = frames
            return frames


class PagePace:
    """How often every open page polls: POLL_S while the server's own work stays under
    SERVER_SHARE of a core, slower as it grows (up to POLL_MAX_S). The work is measured: this
    process's CPU time minus what trainer threads inside it spent (`cpu_elsewhere`), plus what
    trainer processes spent building the pages' figures (`charge`), so the pace follows this box's
    speed and load, not a constant measured on another."""

    def __init__(self, cpu: Callable[[], float] = time.process_time, cpu_elsewhere: Callable[[], float] = lambda: 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cpu, self._elsewhere, self._clock = cpu, cpu_elsewhere, clock
        self._lock = threading.Lock()
        self.interval = POLL_S
        self.charged_s = 0.0  # CPU seconds trainer processes spent building for the pages (`charge`)
        self._mark = (clock(), cpu() - cpu_elsewhere())

    def charge(self, seconds: float) -> None:
        """Count `seconds` of CPU a trainer process spent on the pages' work (their figures) as
        the server's own: where a page's figures are built does not make them free."""
        with self._lock:
            self.charged_s += seconds

    def poll(self) -> float:
        """Note a poll; returns the interval (seconds) to tell the page."""
        with self._lock:
            now = self._clock()
            t0, cpu0 = self._mark
            if now - t0 >= PACE_WINDOW_S:
                cpu = self._cpu() - self._elsewhere() + self.charged_s
                share = max(0.0, cpu - cpu0) / (now - t0)
                # Multiplicative: the pages' cost is about proportional to how often they poll.
                factor = min(2.0, max(0.5, share / SERVER_SHARE)) if share > 0 else 0.5
                self.interval = round(min(POLL_MAX_S, max(POLL_S, self.interval * factor)), 2)
                self._mark = (now, cpu)
            return self.interval


class LiveChannel:
    """Builds each page's payload (see the module docstring). Thread-safe."""

    def __init__(self, manager: SessionManager, pages: Pages, pace: PagePace | None = None) -> None:
        self.manager = manager
        self.pages = pages
        self.pace = pace or PagePace(cpu_elsewhere=manager.local_training_cpu)
        self.frames = FrameCache(charge=self.pace.charge)
        self._compare_lock = threading.Lock()
        self._compared: weakref.WeakKeyDictionary[RunHandle, tuple[int, dict[str, Built]]] = \
            weakref.WeakKeyDictionary()  # B's handle -> (key, its A/B plots)
        self._swept = time.monotonic()

    # --- what a page polls ------------------------------------------------------------------

    def poll(self, token: str, since: str = "") -> tuple[int, bytes | None, float]:
        """(HTTP status, JSON body or None, seconds until the next poll) for the page of `token`."""
        self._forget_idle_pages()
        found = self.pages.by_token(token)
        if found is None:
            return 404, orjson.dumps({"error": "This page is no longer open on the server: reload it."}), POLL_MAX_S
        sid, page = found
        interval = self.pace.poll()
        session = self.manager.get(sid)
        session_b = self.manager.get(sid + COMPARE_SUFFIX)
        key = self._key(sid, page, session, session_b)
        if since and since == page.sent.get("key") and key == page.sent.get("state"):
            return 204, None, interval
        parts, sync = self._parts(sid, page, session, session_b)
        body, page.sent = delta(parts, page.sent, since, key, page, {"next_ms": round(interval * 1000), "sync": sync})
        return 200, body, interval

    def _forget_idle_pages(self) -> None:
        """Forget pages not seen for PAGE_IDLE_S (a tab gone without its unload event): a
        dictionary sweep at most once a minute, no run is touched."""
        now = time.monotonic()
        if now - self._swept >= 60.0:
            self._swept = now
            self.pages.sweep(PAGE_IDLE_S)

    def _key(self, sid: str, page: PageState, session, session_b) -> tuple:
        """Everything the payload depends on, cheap to read (no snapshot fetched)."""
        runner = session.runner if session is not None else None
        mine = (id(runner), runner.telemetry.version, runner.speed_limit, runner.config) if runner is not None else None
        version_b = session_b.runner.telemetry.version if session_b is not None else None
        return (mine, version_b, self.manager.queue_position(sid), self.manager.queue_position(sid + COMPARE_SUFFIX),
                page.notice, page.sync_key, page.pushed)

    def _parts(self, sid: str, page: PageState, session, session_b) -> tuple[dict[str, Built], bool]:
        if session is None:
            text = self.status_without_run(page)
            return {"status": Built(hash(text), orjson.dumps(text))}, \
                self.sync_key(page, None, None, []) != (page.sync_key or EMPTY_SYNC)
        frames = self.frames.built(session.runner)
        parts = {name: frames.parts[name] for name in PAGE_PARTS if name in frames.parts}
        parts["status"] = Built(hash(text := self.status(sid, page, session, frames.brief)), orjson.dumps(text))
        if session_b is not None:
            parts.update(self._compare(session.runner, frames.brief, session_b.runner))
        sync = self.sync_key(page, session, session_b, frames.alerts) != page.sync_key
        return parts, sync

    def _compare(self, runner_a: RunHandle, brief_a: Brief, runner_b: RunHandle) -> dict[str, Built]:
        """The A/B plots of one visitor's two runs (built again only when either run changed), here
        in the server from both runs' snapshots: a figure of two runs, which may train in two
        processes."""
        label = compare_label(runner_a.config, runner_b)
        key = hash((id(runner_a), id(runner_b), brief_a.version, runner_b.telemetry.version, label))
        with self._compare_lock:
            cached = self._compared.get(runner_b)
        if cached is not None and cached[0] == key:
            return cached[1]
        snap_a, snap_b = runner_a.snapshot(), runner_b.snapshot()
        figures = {"compare_samples_a": plots.samples_figure(snap_a, label="A"),
                   "compare_samples_b": plots.samples_figure(snap_b, label=f"B ({label})"),
                   "compare_losses": plots.compare_figure(snap_a, snap_b, "A", f"B ({label})"),
                   "compare_coverage": plots.compare_coverage_figure(snap_a, snap_b, "A", "B")}
        built = {name: Built(hash((key, name)), fig.to_bytes()) for name, fig in figures.items()}
        with self._compare_lock:
            self._compared[runner_b] = (key, built)
        return built

    # --- the status line and the Gradio-side parts ----------------------------------------------

    def status(self, sid: str, page: PageState, session, snap: Brief) -> str:
        """The status line (HTML): state, step, speed, device, settings, coverage, notes."""
        runner = session.runner
        cfg = runner.config  # includes changes queued for the next step
        position = self.manager.queue_position(sid)
        head = markdown_bold(self.manager.wait_message(sid)) if position else f"<b>{snap.state.capitalize()}</b>"
        parts = [head, f"step <b>{snap.step:,}</b>"]
        limit = runner.speed_limit
        if snap.state == "running":
            parts.append(f"{snap.steps_per_s:,.0f} steps/s" + (f" (slow motion: {limit:g}/s)" if limit else ""))
        elif limit:
            parts.append(f"slow motion: {limit:g} steps/s")
        if snap.modes_covered is not None:
            parts.append(f"modes covered <b>{snap.modes_covered}/{snap.n_modes}</b> "
                         f"({fmt_percent(snap.hq_percent)} of samples high quality)")
        # The settings and the game value: for the teacher more than the back row, so they keep
        # the normal size under Large text (the page's CSS), which keeps the line short.
        details = ["GPU" if snap.device.startswith("cuda") else "CPU",
                   f"G lr {fmt_lr(cfg.g_lr)} · D lr {fmt_lr(cfg.d_lr)} · k={cfg.n_critic}"
                   + (f" · smoothing {cfg.label_smoothing:g}" if cfg.label_smoothing else "")]
        scale = lr_scale(cfg, snap.step)
        if scale < 0.99:  # say so once the decay is visible in two digits
            details.append(f"lr decay: now G {fmt_lr(cfg.g_lr * scale)} · D {fmt_lr(cfg.d_lr * scale)} "
                           f"({scale:.0%} of the sliders' values, {cfg.lr_decay_final:.0%} by step "
                           f"{cfg.lr_decay_steps:,})")
        if snap.value_estimate is not None:
            details.append(f"game value V(D,G) = {snap.value_estimate:.2f} (−1.39 when D can only guess)")
        text = " · ".join(parts) + '<span class="gan-detail"> · ' + " · ".join(details) + "</span>"
        position_b = self.manager.queue_position(sid + COMPARE_SUFFIX)
        waiting_b = (f"**Run B waits for a place to train** (position {position_b} in the queue): its curves "
                     "start when it does." if position_b else "")
        for note in (page.notice, snap.message, waiting_b):
            if note:
                text += f'<div class="gan-note">{markdown_bold(note)}</div>'
        return text

    @staticmethod
    def status_without_run(page: PageState) -> str:
        return READY + (f'<div class="gan-note">{markdown_bold(page.notice)}</div>' if page.notice else "")

    @staticmethod
    def sync_key(page: PageState, session, session_b, alerts: Sequence[Alert]) -> tuple:
        """What the Gradio-side components show: alert text, fix, rewind menu, A/B box, and the
        class revision of the controls (what a teacher pushed or hid: `PageState.pushed`)."""
        menu = tuple(i.index for i in session.runner.checkpoints.list()) if session is not None else ()
        return (alerts_markdown(alerts), fix_of(alerts)[1], menu, session_b is not None, page.pushed)

    def alerts_of(self, runner: RunHandle) -> tuple[Alert, ...]:
        return self.frames.built(runner).alerts

    def brief(self, runner: RunHandle) -> Brief:
        """What the status line reads of the run (built with its frames, once per version)."""
        return self.frames.built(runner).brief


EMPTY_SYNC = ("", "", (), False, 0)


def alerts_markdown(alerts: Sequence[Alert]) -> str:
    return "\n\n".join(f"**{a.title}** — {a.explanation} *What to do:* {a.suggestion}" for a in alerts)


def fix_of(alerts: Sequence[Alert]) -> tuple[dict | None, str]:
    """The first alert's fix with its button label ("Apply fix: …"), or (None, "")."""
    with_fix = next((a for a in alerts if a.fix), None)
    return (with_fix.fix, f"Apply fix: {with_fix.fix_label}") if with_fix else (None, "")


def compare_label(config_a, runner_b: RunHandle) -> str:
    """What B changes against A (config `config_a`), e.g. "d_lr=0.01" ("same" if nothing)."""
    from gan_core.config import LIVE_FIELDS

    b = runner_b.config
    diff = {f: getattr(b, f) for f in LIVE_FIELDS if getattr(b, f) != getattr(config_a, f)}
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in diff.items()) or "same"


def markdown_bold(text: str) -> str:
    """Our own status texts use **bold**: escaped, then bold made <b>."""
    parts = html.escape(text, quote=False).split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def fmt_percent(p: float) -> str:
    """0.3%, not 0%: a mode counts as covered with a single good sample (VEEGAN), so tiny shares matter."""
    return f"{p:.0f}%" if p >= 10 or p == 0 else f"{p:.1f}%" if p >= 0.1 else f"{p:.2f}%"


def fmt_lr(lr: float) -> str:
    return f"{lr:.1e}".replace("e-0", "e-")


# A channel a page polls (this live channel, the class view's): GET url?since=<key of the last
# payload>; a 200's payload goes to `apply`, a 404 to `gone` (and polling stops); the next poll
# comes when the server says (X-Next-Ms), no sooner than `pace.hidden` ms in a background tab.
# `point(url)` polls another url from now on (null: stop), everything sent afresh; an answer still
# on its way for the old one is dropped.
POLLER_JS = """
function ganPoller(apply, gone, pace) {
  let url = null, since = '', timer = null, busy = false, run = 0;
  async function poll() {
    timer = null;
    if (!url || busy) return;
    busy = true;
    const mine = run;
    let next = pace.poll;
    try {
      const r = await fetch(url + '?since=' + encodeURIComponent(since), {cache: 'no-store'});
      next = parseInt(r.headers.get('X-Next-Ms') || next, 10);
      if (mine !== run) next = 30;
      else if (r.status === 404) { url = null; gone(); }
      else if (r.status === 200) { const frame = await r.json(); if (mine === run) { since = frame.key; apply(frame); } }
    } catch (e) { next = pace.max; } finally { busy = false; }
    if (document.hidden) next = Math.max(next, pace.hidden);
    if (url && !timer) timer = setTimeout(poll, next);
  }
  function now() { if (timer) clearTimeout(timer); timer = setTimeout(poll, 30); }
  document.addEventListener('visibilitychange', () => { if (!document.hidden && url) now(); });
  return {now: now, resend() { since = ''; },
          point(to) { run += 1; url = to; since = ''; if (timer) clearTimeout(timer); timer = null; if (url) now(); }};
}
"""

# The page's side: started by the hidden `live` component's load script (app.py) with its token.
LIVE_JS = POLLER_JS + """
const box = element.querySelector('.gan-live');
let token = null, syncing = false;
function apply(frame) {
  const parts = frame.parts || {};
  for (const [name, value] of Object.entries(parts)) {
    if (name === 'status') {
      const el = document.querySelector('#status .gan-status'); if (el) el.innerHTML = value;
    } else if (name === 'overview') {
      const el = document.querySelector('#overview .gan-overview'); if (el) el.innerHTML = value;
    } else if (window.ganPlots && window.ganPlots[name]) {
      window.ganPlots[name](value);
    } else {  // a plot not mounted yet (a hidden A/B box): drawn when it mounts
      (window.ganPending || (window.ganPending = {}))[name] = value;
    }
  }
  if (frame.sync && !syncing) {
    const button = document.querySelector('#gan-sync');
    if (button) { syncing = true; button.click(); setTimeout(() => { syncing = false; }, 1500); }
  }
}
function gone() {
  const el = document.querySelector('#status .gan-status');
  if (el) el.innerHTML = '<b>This page is no longer open on the server: reload it.</b>';
}
const channel = ganPoller(apply, gone, {poll: %(poll_ms)d, max: %(max_ms)d, hidden: %(hidden_ms)d});
// now(): after a button, poll now instead of at the next tick. say(html): show a line in the status
// until the server's next one (asked for in full: the page no longer shows what it was sent).
window.ganLive = {now: channel.now,
  say: (html) => { const el = document.querySelector('#status .gan-status'); if (el) el.innerHTML = html;
    channel.resend(); }};
function begin() {
  const value = (props.value || '').trim();
  if (value && value !== token) { token = value; channel.point('gan/live/' + token); }
}
watch('value', begin);
begin();
""" % dict(poll_ms=round(POLL_S * 1000), max_ms=round(POLL_MAX_S * 1000), hidden_ms=round(POLL_HIDDEN_S * 1000))
