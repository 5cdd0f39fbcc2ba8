"""The class view: what a teacher's page polls to see every student's GAN, built once per run version.

A teacher page that showed its key (`classes.ClassRegistry.open_view`) holds a view token and
polls `GET /gan/class/{token}?since={key}` every CLASS_POLL_S (a route on Gradio's own FastAPI app,
like the live channel, `live.py`). Any other string gets 404 and nothing else: a student's live
token, a class code, another class's token. The answer is compact JSON:

- `students`: one small record per student — number and display name (never their session id),
  state (running, paused, waiting in the queue, …), the first alert, step, modes covered and
  high-quality share (or the Inception score for digits), the settings in effect (loss, G and D
  learning rates, k, smoothing), the experiment's value and outcome, and the key of their thumbnail;
- `parts`: what this page does not have yet — a student's thumbnail (`thumbnail.py`, a data URL)
  when it changed, the class summary line, the experiment's outcome plot;
- nothing new (no run moved, nobody joined): 204.

Each run's record and thumbnail come from `CardCache`: the run's `RunFrames` card (live.py), built
where the run trains — in its trainer process, so only the record and a changed thumbnail cross —
at most once per snapshot version of the run (at most once per CARD_S while it trains) and shared
by every viewer; the thumbnail is drawn again only when the run published a new evaluation frame,
at most every THUMB_S. A click on a student projects their run
at full size: `GET /gan/class/{token}/watch/{number}` answers the live channel's own payload for
that run (the same `RunFrames` bytes the student's page gets), for students of the token's own
class only.

Not here: who is in the class (`classes.py`), the teacher's actions (`classbuttons.py`), the
student's own page (`live.py`).
"""

from __future__ import annotations

import html
import math
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import orjson

from gan_core.serve.handle import RunHandle

from .classes import Class, ClassRegistry, Member
from .experiment import GOAL_HQ, LOSS_WORDS, PARAMETERS, Experiment, value_words
from .live import POLLER_JS, Built, FrameCache, LiveChannel, delta
from .pages import PageState, Pages
from .plots import D_COLOR, FAKE_COLOR, G_COLOR, Figure
from .sessions import SessionManager

CLASS_POLL_S = 1.25  # the class view polls this often (the issue: a refresh at least every 2 s)
CLASS_HIDDEN_S = 5.0  # … and this rarely from a tab in the background
CARD_S = 1.0  # a training run's record is rebuilt at most this often, whatever its version
CARD_WORKERS = 8  # runs a class view asks for their cards at once (see CardCache)
CARD_WAIT_S = 0.5  # how long a poll waits for new cards before it answers with the last ones
WATCH_PLOTS = ("samples", "d_hist", "losses", "coverage")  # the projected run's plots
RECORD_FIELD = {"d_lr": "d_lr", "g_lr": "g_lr", "n_critic": "k", "label_smoothing": "smoothing", "loss": "loss"}
MISSING = "This class view is no longer open on the server: open the teacher link again."
CSV_COLUMNS = ("student", "name", "parameter", "value", "state", "step", "modes_covered", "modes",
               "hq_percent", "inception_score", "mean_d_g_z_last_100_steps", "steps_to_all_modes",
               "loss", "g_lr", "d_lr", "k", "label_smoothing", "alert")


@dataclass(frozen=True)
class Card:
    """What the class view shows of one run, built from one snapshot."""

    version: int
    built_at: float  # time.monotonic()
    thumb: Built | None  # the thumbnail as a JSON string (a PNG data URL) with its key
    fields: dict  # state, alert, step, outcome, settings (`experiment.card_fields`)


class CardCache:
    """`Card`s per run handle (forgotten with the handle), shared by every class view.

    A card is the run's `RunFrames` card, built where the run trains (`FrameCache.built(runner,
    card=True)`; a run in a trainer process answers between its child's training work): `cards`
    asks for a class's runs on CARD_WORKERS threads at once and waits at most CARD_WAIT_S, so one
    slow answer delays no refresh — that run shows its last card, and its new one at the next poll."""

    def __init__(self, frames: FrameCache) -> None:
        self._frames = frames  # the live channel's: one RunFrames per run for pages and class views
        self._lock = threading.Lock()
        self._cards: weakref.WeakKeyDictionary[RunHandle, tuple[threading.Lock, list]] = weakref.WeakKeyDictionary()
        self._building: weakref.WeakKeyDictionary[RunHandle, Future] = weakref.WeakKeyDictionary()
        self._workers = ThreadPoolExecutor(max_workers=CARD_WORKERS, thread_name_prefix="class-cards")

    def cards(self, runners: list[RunHandle]) -> list[Card | None]:
        """The cards of `runners` (see the class docstring); None for a run with none yet."""
        with self._lock:
            futures = []
            for runner in runners:
                future = self._building.get(runner)
                if future is None or future.done():
                    future = self._building[runner] = self._workers.submit(self.card, runner)
                futures.append(future)
        wait(futures, timeout=CARD_WAIT_S)
        return [f.result() if f.done() and f.exception() is None else self.last(r) for f, r in zip(futures, runners)]

    def last(self, runner: RunHandle) -> Card | None:
        """The run's card as last built (not brought up to date)."""
        with self._lock:
            entry = self._cards.get(runner)
        return entry[1][0] if entry is not None else None

    def card(self, runner: RunHandle) -> Card | None:
        """The run's card, rebuilt when its version changed (at most once per CARD_S while it trains)."""
        with self._lock:
            entry = self._cards.get(runner)
            if entry is None:
                entry = self._cards[runner] = (threading.Lock(), [None])
        lock, held = entry
        with lock:
            card = held[0]
            now = time.monotonic()
            if card is not None and (card.version == runner.telemetry.version or (
                    card.fields["state"] == "running" and now - card.built_at < CARD_S)):
                return card
            frames = self._frames.built(runner, card=True)
            if frames.card is not None:  # (none: a run gone before its first card)
                held[0] = card = Card(frames.card_version, now, frames.parts.get("thumb"), frames.card)
            return card


class ClassView:
    """The class route's payloads (see the module docstring). Thread-safe."""

    def __init__(self, manager: SessionManager, pages: Pages, classes: ClassRegistry, live: LiveChannel) -> None:
        self.manager = manager
        self.pages = pages
        self.classes = classes
        self.live = live
        self.cards = CardCache(live.frames)
        self._outcomes: dict[str, Built] = {}  # class code -> its outcome plot
        self._lock = threading.Lock()

    # --- the class -----------------------------------------------------------------------------

    def poll(self, token: str, since: str = "") -> tuple[int, bytes | None, float]:
        """(HTTP status, JSON body or None, seconds until the next poll) for a teacher's view token."""
        found = self.classes.view(token)
        if found is None:
            return 404, orjson.dumps({"error": MISSING}), CLASS_POLL_S
        cls, view = found
        students = self._students(cls)
        state = (cls.revision, tuple((m.number, m.name, id(runner), runner and runner.telemetry.version, queued)
                                     for _, m, runner, queued in students))
        if since and since == view.sent.get("key") and state == view.sent.get("state"):
            return 204, None, CLASS_POLL_S
        runners = [runner for _, _, runner, _ in students if runner is not None]
        by_run = dict(zip(runners, self.cards.cards(runners)))
        rows = [self._row(m, runner, by_run.get(runner), queued, cls) for _, m, runner, queued in students]
        records = [row for row, _ in rows]
        parts = {"summary": _built(summary(cls, records)), "outcome": self._outcome(cls, records)}
        for record, thumb in rows:
            if thumb is not None:
                parts[f"thumb:{record['n']}"] = thumb
        head = {"next_ms": round(CLASS_POLL_S * 1000), "students": records}
        # A card older than its run (rebuilt at most every CARD_S) must not be kept behind a 204.
        current = all(card is not None and card.version == runner.telemetry.version for runner, card in by_run.items())
        body, view.sent = delta(parts, view.sent, since, state if current else None, view, head)
        return 200, body, CLASS_POLL_S

    def table(self, cls: Class) -> list[dict]:
        """The class's table, one row per student (the CSV export's rows)."""
        rows = []
        for _, m, runner, queued in self._students(cls):
            r, _ = self._row(m, runner, self.cards.card(runner) if runner is not None else None, queued, cls)
            rows.append(dict(student=r["n"], name=r["name"],
                             parameter=cls.experiment.parameter if cls.experiment else "",
                             value=r.get("x"), state=r["state"], step=r.get("step"), modes_covered=r.get("modes"),
                             modes=r.get("n_modes"), hq_percent=r.get("hq"), inception_score=r.get("is"),
                             mean_d_g_z_last_100_steps=r.get("d_fake"), steps_to_all_modes=r.get("to_all"),
                             loss=r.get("loss"), g_lr=r.get("g_lr"), d_lr=r.get("d_lr"), k=r.get("k"),
                             label_smoothing=r.get("smoothing"), alert=r.get("alert")))
        return rows

    def _students(self, cls: Class) -> list[tuple[str, Member, RunHandle | None, int]]:
        """(session id, member, their run or None, queue position) by number; reading the session
        table does not count as the student being seen."""
        sessions = self.manager.sessions()
        out = []
        for sid, member in self.classes.members(cls.code):
            session = sessions.get(sid)
            out.append((sid, member, session.runner if session is not None else None,
                        self.manager.queue_position(sid) if session is not None else 0))
        return out

    def _row(self, member: Member, runner: RunHandle | None, card: Card | None, queued: int,
             cls: Class) -> tuple[dict, Built | None]:
        """(the student's record for the page, their thumbnail)."""
        record = dict(n=member.number, name=member.name)
        if runner is None or card is None:
            record.update(state="no run yet" if runner is None else "starting", thumb=None)
            return record, None
        record.update(card.fields, thumb=card.thumb.key if card.thumb is not None else None)
        if queued:
            record["state"] = "waiting"
        if record["kind"] == "mode_collapse":
            record["state"] += " · collapsed"
        record["is"] = record.pop("inception")
        record["to_all"] = record.pop("steps_to_all")
        experiment = cls.experiment
        if experiment is not None:
            x = record[RECORD_FIELD[experiment.parameter]]
            record.update(x=x, value=value_words(experiment.parameter, x))
        return record, card.thumb

    def _outcome(self, cls: Class, records: list[dict]) -> Built:
        """The outcome plot, built again only when what it shows changed."""
        points = tuple((r["n"], r.get("x"), r.get("modes"), r.get("hq"), r.get("is"), r.get("d_fake"), r.get("to_all"))
                       for r in records)
        key = hash((cls.experiment, points))
        with self._lock:
            built = self._outcomes.get(cls.code)
        if built is None or built.key != key:
            built = Built(key, outcome_figure(cls.experiment, records).to_bytes())
            with self._lock:
                self._outcomes[cls.code] = built
        return built

    def forget(self, code: str) -> None:
        """A class closed: drop its outcome plot."""
        with self._lock:
            self._outcomes.pop(code, None)

    # --- one student, projected ------------------------------------------------------------------

    def watch(self, token: str, number: int, since: str = "") -> tuple[int, bytes | None, float]:
        """The live channel's payload of student `number`'s run, for a view of that student's class."""
        found = self.classes.view(token)
        sid = self.classes.member_sid(found[0].code, number) if found is not None else None
        session = self.manager.sessions().get(sid) if sid is not None else None
        if session is None:
            return 404, orjson.dumps({"error": "This student has no run to show (or is not in this class)."}), \
                CLASS_POLL_S
        cls, view = found
        interval = self.live.pace.interval
        runner = session.runner
        state = (number, id(runner), runner.telemetry.version)
        if since and since == view.watch_sent.get("key") and state == view.watch_sent.get("state"):
            return 204, None, interval
        frames = self.live.frames.built(runner)
        parts = {name: frames.parts[name] for name in WATCH_PLOTS if name in frames.parts}
        page = self.pages.peek(sid) or PageState(token="")
        text = self.live.status(sid, page, session, frames.brief)
        parts["status"] = Built(hash(text), orjson.dumps(text))
        body, view.watch_sent = delta(parts, view.watch_sent, since, state, view, {"next_ms": round(interval * 1000)})
        return 200, body, interval


def _built(text: str) -> Built:
    return Built(hash(text), orjson.dumps(text))


def summary(cls: Class, records: list[dict]) -> str:
    """The class in one line of plain text: how many, doing what, the experiment, hidden controls."""
    count = lambda word: sum(1 for r in records if r["state"].startswith(word))
    parts = [f"{len(records)} student{'s' if len(records) != 1 else ''}", f"{count('running')} running"]
    for word in ("waiting", "paused", "no run yet"):
        if count(word):
            parts.append(f"{count(word)} {word}")
    alerts = sum(1 for r in records if r.get("alert"))
    if alerts:
        parts.append(f"{alerts} with an alert")
    if cls.experiment is not None:
        parts.append(f"experiment: {cls.experiment.describe()}")
    if cls.hidden:
        parts.append("hidden from students: " + ", ".join(sorted(cls.hidden)))
    return " · ".join(parts)


OUTCOMES = (("modes", "modes covered"), ("hq", "high-quality samples (%)"),
            ("d_fake", "mean D(G(z)), last 100 steps"), ("to_all", f"steps to all modes, ≥ {GOAL_HQ:g}% HQ"))
DIGIT_OUTCOMES = (("is", "Inception score"), ("d_fake", "mean D(G(z)), last 100 steps"))
OUTCOME_COLORS = (G_COLOR, "#9467bd", FAKE_COLOR, D_COLOR)
PANELS = ((0.0, 0.43, 0.6, 1.0), (0.57, 1.0, 0.6, 1.0), (0.0, 0.43, 0.0, 0.4), (0.57, 1.0, 0.0, 0.4))


def outcome_figure(experiment: Experiment | None, records: list[dict]) -> Figure:
    """The class experiment's outcome: each measure (a small plot, named on its y axis) against the
    value each student runs with, one point per student labelled with their number; the x axes span
    the experiment's range (log for learning rates)."""
    if experiment is None:
        fig = Figure("Class experiment: outcome per student", "", "", height=430)
        fig.layout["xaxis"]["visible"] = fig.layout["yaxis"]["visible"] = False
        return fig.message("Assign an experiment to plot its outcome")
    spec = PARAMETERS[experiment.parameter]
    fig = Figure(f"Class experiment: outcome against {spec.label}", "", "", height=430)
    digits = any(r.get("is") is not None for r in records) and not any(r.get("modes") is not None for r in records)
    fig.layout.pop("xaxis"), fig.layout.pop("yaxis")
    fig.layout.update(showlegend=False, margin=dict(l=64, r=16, t=48, b=8))
    x_axis = dict(automargin=True, type={"log": "log", "category": "category"}.get(spec.kind, "linear"))
    if spec.kind == "log":  # one tick a decade, written 1e-4 (not plotly's "100µ")
        x_axis.update(range=[math.log10(experiment.low) - 0.2, math.log10(experiment.high) + 0.2],
                      dtick=1, tickformat=".0e")
    elif spec.kind != "category":
        pad = 0.08 * (experiment.high - experiment.low)
        x_axis.update(range=[experiment.low - pad, experiment.high + pad])
    with_x = [r for r in records if r.get("x") is not None]
    xs = [LOSS_WORDS.get(r["x"], r["x"]) if spec.kind == "category" else r["x"] for r in with_x]
    for i, (name, title) in enumerate(DIGIT_OUTCOMES if digits else OUTCOMES):
        suffix = "" if i == 0 else str(i + 1)
        x0, x1, y0, y1 = PANELS[i]
        bottom = y0 == 0.0
        fig.layout[f"xaxis{suffix}"] = dict(x_axis, domain=[x0, x1], anchor=f"y{suffix}",
                                            title=dict(text=spec.label if bottom else "", font=dict(size=13)))
        fig.layout[f"yaxis{suffix}"] = dict(domain=[y0, y1], anchor=f"x{suffix}", automargin=True,
                                            title=dict(text=title, font=dict(size=12)),
                                            rangemode="normal" if name == "d_fake" else "tozero")
        points = [(x, r) for x, r in zip(xs, with_x) if r.get(name) is not None]
        if not points:
            fig.layout["annotations"].append(dict(text="none yet", showarrow=False, xref=f"x{suffix} domain",
                                                  yref=f"y{suffix} domain", x=0.5, y=0.5,
                                                  font=dict(size=13, color="#888888")))
        fig.add(type="scatter", mode="markers+text", xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                x=[x for x, _ in points], y=[r[name] for _, r in points],
                text=[f"#{r['n']}" for _, r in points], textposition="top center", textfont=dict(size=11),
                hovertext=[f"#{r['n']} {html.escape(r['name'])}" for _, r in points], hoverinfo="text+x+y",
                marker=dict(size=9, color=OUTCOME_COLORS[i]), name=title, cliponaxis=False)
    if not with_x:
        fig.message("No student has run the experiment yet")
    return fig


# --- the class page's side -------------------------------------------------------------------------

# The grid's HTML (gr.HTML's template; CLASS_JS fills it). Names are set as text, never as HTML.
CLASS_TEMPLATE = """<div class="gan-class">
<div class="gan-class-bar"><span class="gan-class-summary">Waiting for the class…</span>
<label>Sort <select class="gan-sort"><option value="n">by number</option><option value="modes">fewest modes first</option>
<option value="-modes">most modes first</option><option value="alert">alerts first</option>
<option value="x">by experiment value</option></select></label>
<label>Show <select class="gan-filter"><option value="all">everyone</option><option value="alert">with an alert</option>
<option value="collapsed">mode collapse</option><option value="waiting">waiting, paused or not started</option></select></label></div>
<div class="gan-cards"></div></div>"""
WATCH_TEMPLATE = """<div class="gan-watch-head"><span class="gan-watch-title"></span>
<button type="button" class="gan-close">Close (Esc)</button></div><div class="gan-watch-status"></div>"""

# Gradio adds to each custom rule a copy scoped inside its container (more specific); the
# projection's rules start at <html> (its class says whether a run is projected), which only the
# rule as written matches.
CLASS_CSS = """
/* The class view is a second Gradio page, reached by its link only: Gradio 6.31 draws a navigation bar
   on every page of a multi-page app, even with gr.Navbar(visible=False) (checked in Chromium). */
.nav-holder {display: none !important;}
.gan-class-bar {display: flex; flex-wrap: wrap; gap: 0.4em 1.2em; align-items: center; margin-bottom: 0.5em;}
.gan-class-summary {flex: 1 1 100%; font-weight: 600;}
.gan-class-bar select {font-size: 15px; padding: 2px 4px;}
.gan-cards {display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px;}
.gan-card {border: 2px solid #d0d0d0; border-radius: 8px; padding: 5px; font-size: 12.5px; line-height: 1.3;
  cursor: pointer; background: white; color: #222; overflow: hidden;}
.gan-card:hover, .gan-card:focus {border-color: #1f77b4; outline: none;}
.gan-card img {width: 100%; max-width: 124px; aspect-ratio: 1; display: block; margin: 0 auto; background: #eee;}
.gan-card .head {font-size: 14px; margin-top: 3px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
.gan-card .line {overflow-wrap: anywhere;}
.gan-card .alert {color: #b00020; font-weight: 600;}
.gan-card.has-alert {border-color: #d62728;}
.gan-card.waiting, .gan-card.idle {opacity: 0.75;}
html:not(.gan-projecting) #projection {display: none !important;}
html.gan-projecting #projection {position: fixed; inset: 0; z-index: 1000; background: white; overflow: auto;
  padding: 10px 16px;}
.gan-watch-head {display: flex; justify-content: space-between; align-items: center; font-size: 22px; font-weight: 600;}
.gan-close {font-size: 16px; padding: 4px 12px; border: 1px solid #999; border-radius: 6px; background: #f4f4f4;}
.gan-watch-status {font-size: 16px; margin: 4px 0;}
"""

# `element`, `props` and `watch` are given by gr.HTML (js_on_load); the token arrives as its value.
CLASS_JS = POLLER_JS + """
const root = element.querySelector('.gan-class');
const grid = root.querySelector('.gan-cards'), summary = root.querySelector('.gan-class-summary');
const sortBy = root.querySelector('.gan-sort'), show = root.querySelector('.gan-filter');
const base = (window.gradio_config && window.gradio_config.root || location.origin).replace(/\\/?$/, '/');
const pace = {poll: %(poll_ms)d, max: %(max_ms)d, hidden: %(hidden_ms)d};
let token = null, students = [], watching = null;
const cards = {}, thumbs = {};
function put(el, value) { if (el) el.textContent = value == null ? '' : String(value); }
function lr(v) { return v == null ? '' : v.toExponential(1); }
function card(s) {
  let el = cards[s.n];
  if (!el) {
    el = document.createElement('div'); el.className = 'gan-card'; el.tabIndex = 0; el.dataset.n = s.n;
    el.innerHTML = '<img alt=""><div class="head"><b class="num"></b> <span class="name"></span></div>'
      + '<div class="line state"></div><div class="line outcome"></div><div class="line d"></div>'
      + '<div class="line loss"></div><div class="line rates"></div><div class="line value"></div>'
      + '<div class="line alert"></div>';
    el.addEventListener('click', () => project(s.n));
    el.addEventListener('keydown', (e) => { if (e.key === 'Enter') project(s.n); });
    cards[s.n] = el;
  }
  const img = el.querySelector('img');
  if (thumbs[s.n] && img.dataset.key !== String(s.thumb)) { img.src = thumbs[s.n]; img.dataset.key = String(s.thumb); }
  put(el.querySelector('.num'), '#' + s.n); put(el.querySelector('.name'), s.name);
  el.title = '#' + s.n + (s.name ? ' ' + s.name : '') + ': click to project this run';
  put(el.querySelector('.state'), s.step == null ? s.state : s.state + ' · step ' + s.step.toLocaleString());
  put(el.querySelector('.outcome'), s.modes != null ? s.modes + '/' + s.n_modes + ' modes · HQ '
      + (s.hq == null ? '–' : Math.round(s.hq) + '%%') : s.is != null ? 'Inception score ' + s.is : '');
  put(el.querySelector('.d'), s.d_fake == null ? '' : 'D(G(z)) ' + s.d_fake.toFixed(2));
  put(el.querySelector('.loss'), s.loss == null ? '' : s.loss_words + ' · k ' + s.k
      + (s.smoothing ? ' · smooth ' + s.smoothing : ''));
  put(el.querySelector('.rates'), s.loss == null ? '' : 'G lr ' + lr(s.g_lr) + ' · D lr ' + lr(s.d_lr));
  put(el.querySelector('.value'), s.value == null ? '' : 'assigned: ' + s.value);
  put(el.querySelector('.alert'), s.alert || '');
  el.classList.toggle('has-alert', !!s.alert);
  el.classList.toggle('waiting', s.state === 'waiting');
  el.classList.toggle('idle', s.state === 'no run yet' || s.state === 'idle');
  return el;
}
function keep(s) {
  const f = show.value;
  if (f === 'alert') return !!s.alert;
  if (f === 'collapsed') return s.kind === 'mode_collapse';
  if (f === 'waiting') return !s.state.startsWith('running');
  return true;
}
function order(a, b) {
  const k = sortBy.value, big = 1e12;
  if (k === 'modes') return (a.modes ?? big) - (b.modes ?? big) || a.n - b.n;
  if (k === '-modes') return (b.modes ?? -1) - (a.modes ?? -1) || a.n - b.n;
  if (k === 'alert') return (b.alert ? 1 : 0) - (a.alert ? 1 : 0) || a.n - b.n;
  if (k === 'x') return (typeof a.x === 'number' && typeof b.x === 'number' ? a.x - b.x
                         : String(a.x ?? '').localeCompare(String(b.x ?? ''))) || a.n - b.n;
  return a.n - b.n;
}
function render() {
  const wanted = students.filter(keep).sort(order).map(card);
  for (const el of Array.from(grid.children)) if (!wanted.includes(el)) el.remove();
  wanted.forEach((el, i) => { if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i] || null); });
  const present = new Set(students.map(s => String(s.n)));
  for (const n of Object.keys(cards)) if (!present.has(n)) { delete cards[n]; delete thumbs[n]; }
  if (watching !== null) {
    const s = students.find(s => s.n === watching);
    put(document.querySelector('.gan-watch-title'), 'Student #' + watching + (s && s.name ? ' · ' + s.name : '')
        + (s && s.value ? ' · assigned ' + s.value : ''));
  }
}
function draw(name, value) {
  if (window.ganPlots && window.ganPlots[name]) window.ganPlots[name](value);
  else (window.ganPending || (window.ganPending = {}))[name] = value;
}
function apply(frame) {
  students = frame.students || [];
  for (const [name, value] of Object.entries(frame.parts || {})) {
    if (name.startsWith('thumb:')) thumbs[name.slice(6)] = value;
    else if (name === 'summary') put(summary, value);
    else draw(name, value);
  }
  render();
}
function applyWatch(frame) {
  for (const [name, value] of Object.entries(frame.parts || {})) {
    if (name !== 'status') draw(name, value);
    else { const el = document.querySelector('.gan-watch-status'); if (el) el.innerHTML = value; }  // the server's escaped HTML
  }
}
const classChannel = ganPoller(apply, () => put(summary, 'This class view is no longer open on the server: open the teacher link again.'), pace);
const watchChannel = ganPoller(applyWatch, () => put(document.querySelector('.gan-watch-status'), 'This student has no run to show right now.'), pace);
function project(n) {
  watching = n;
  document.documentElement.classList.add('gan-projecting');
  render();
  watchChannel.point(base + 'gan/class/' + token + '/watch/' + n);
}
function stopProjecting() {
  watching = null; watchChannel.point(null);
  document.documentElement.classList.remove('gan-projecting');
}
window.ganClass = {project: project, close: stopProjecting, now: classChannel.now};
document.addEventListener('click', (e) => { if (e.target.closest && e.target.closest('.gan-close')) stopProjecting(); });
document.addEventListener('keydown', (e) => { if (e.key === 'Escape') stopProjecting(); });
sortBy.addEventListener('change', render); show.addEventListener('change', render);
function begin() {
  const value = (props.value || '').trim();
  if (value && value !== token) { token = value; classChannel.point(base + 'gan/class/' + token); }
}
watch('value', begin);
begin();
""" % dict(poll_ms=round(CLASS_POLL_S * 1000), max_ms=round(2 * CLASS_POLL_S * 1000), hidden_ms=round(CLASS_HIDDEN_S * 1000))
# The class page's load: the class code from the link's query, the key from its fragment (#key=…),
# which the browser never sends to a server (no access log or Referer header ever holds it).
READ_TEACHER_LINK_JS = """() => { const q = new URLSearchParams(location.search);
  const h = new URLSearchParams(location.hash.replace(/^#/, ''));
  return [q.get('class') || '', h.get('key') || '']; }"""
