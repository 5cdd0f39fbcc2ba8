"""What a class's buttons do: a teacher's actions on the whole class, and a student joining it.

Every teacher action is a short function of the teacher's request: it acts only if that request's
session opened the class view with the teacher key (`ClassRegistry.teacher_class`), and only on
that class's students; anyone else — a student with the student link included, by any API call —
gets a `uploads.refusal` that says how to become the teacher. The actions:

- **Start a class** (the main page, anyone; rate-limited per client host): the student link and
  the teacher link, shown once (the server keeps only the key's hash);
- **open the class view** (the class page's load): checks the key, hands the page its view token;
- **push** a lesson and settings: every student's run starts afresh with them (their status line
  says the teacher did it; their page's controls show the new values at its next sync);
- **pause all / resume all**; **hide controls** for the class (enforced by `pinned`: a hidden
  control keeps the server's value whatever a student sends, with a warning saying so);
- **assign** a class experiment: each student one value spread over a range (`experiment.py`),
  their run started afresh with it; **export** the class's table as CSV.

A student joins with the student link (`?class=<code>`, read when their page opens) or the
`join_class` endpoint, optionally with a display name.
Not here: the registry (`classes.py`), the class view's payload (`classview.py`).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from pathlib import Path

import gradio as gr

from .buttons import Buttons, session_id
from .classes import ClassRefused, ClassRegistry, pin
from .classview import CSV_COLUMNS, ClassView
from .controls import Controls, LiveControls
from .experiment import CONTROL_FIELD, PARAMETERS, Experiment, ExperimentError, table_csv, value_words
from .pages import COMPARE_SUFFIX, Pages
from .presets import PRESETS
from .sessions import SessionManager
from .share import HIDEABLE, page_url
from .uploads import refusal

NOT_TEACHER = ("Only this class's teacher can do this: open the teacher link you got from 'Start a class' "
               "(the student link cannot).")


def client_host(request: gr.Request | None) -> str:
    """Who asks, for the rate limit: the request's client host ("unknown" without one)."""
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


class ClassButtons:
    """The class's actions (see the module docstring)."""

    def __init__(self, manager: SessionManager, pages: Pages, classes: ClassRegistry, buttons: Buttons,
                 view: ClassView) -> None:
        self.manager = manager
        self.pages = pages
        self.classes = classes
        self.buttons = buttons
        self.view = view

    # --- the main page ----------------------------------------------------------------------------

    def start_class(self, request: gr.Request) -> str:
        """A new class: its two links, as Markdown for the teacher (the key is not kept)."""
        try:
            cls, key = self.classes.create(client_host(request))
        except ClassRefused as exc:
            raise refusal(str(exc)) from None
        base = page_url(request)
        return (f"**Student link** (share it with the class):\n\n`{base}?class={cls.code}`\n\n"
                f"**Teacher link** (keep it to yourself: it opens the class view, and it is shown only now):"
                f"\n\n`{base}class?class={cls.code}#key={key}`")

    def join(self, code, name, request: gr.Request) -> str:
        """Join class `code` (the student link's) with a display name; returns the class note."""
        sid = session_id(request)
        try:
            member = self.classes.join(code, sid, name if isinstance(name, str) else "")
        except ClassRefused as exc:
            raise refusal(str(exc)) from None
        self.pages.get(sid)  # a student is in a class while their page is open (`Page.sweep_classes`)
        return student_note(member.number, member.name)

    def join_from_link(self, request: gr.Request, warn: bool = True):
        """The class of a page opened on a student link (joined now, its name kept), or None; with
        `warn`, a link to a class that is not open says so."""
        query = getattr(request, "query_params", None) or {}
        code = str(query.get("class", ""))[:100]
        if not code:
            return None
        try:
            self.classes.join(code, session_id(request))
        except ClassRefused as exc:
            if warn:
                gr.Warning(refusal(str(exc)).message)
            return None
        return self.classes.class_of(session_id(request))

    def student_box(self, request: gr.Request) -> tuple:
        """The main page's class box when it opens: (box, note, name, Start-a-class button, class code)."""
        cls = self.join_from_link(request, warn=False)  # the page's other load event (`Page.open`) warns
        members = dict(self.classes.members(cls.code)) if cls is not None else {}
        member = members.get(session_id(request))
        if member is None:
            return (gr.update(), gr.update(), gr.update(visible=False), gr.update(visible=True), "")
        return (gr.update(label="Your class", open=True), student_note(member.number, member.name),
                gr.update(visible=True), gr.update(visible=False), cls.code)

    # --- a student's controls, as the teacher set them -----------------------------------------------

    def pinned(self, controls: Controls, sid: str) -> Controls:
        """`controls` with the hidden ones at the server's values (see `classes.pin`)."""
        hidden = self.classes.hidden_of(sid)
        if not hidden:
            return controls
        result, changed = pin(controls, self._reference(sid), hidden)
        _warn_pinned(changed)
        return result

    def pinned_live(self, live: LiveControls, sid: str) -> LiveControls:
        hidden = self.classes.hidden_of(sid)
        if not hidden:
            return live
        result, changed = pin(live, self._reference(sid).live, hidden)
        _warn_pinned(changed)
        return result

    def _reference(self, sid: str) -> Controls:
        """What a hidden control is: the student's run's value, else what the teacher pushed, else the page's."""
        session = self.manager.get(sid)
        if session is not None:
            return Controls.of(session.runner.config, (self.pages.get(sid).setup or {}).get("lesson", ""))
        cls = self.classes.class_of(sid)
        return cls.pushed if cls is not None and cls.pushed is not None else Controls.start()

    # --- the class page ---------------------------------------------------------------------------

    def open_view(self, code, key, request: gr.Request) -> tuple[str, str]:
        """The class page opened with (code, key) from its link: (view token, the student link)."""
        try:
            token = self.classes.open_view(code, key, session_id(request))
        except ClassRefused as exc:
            raise refusal(str(exc)) from None
        return token, f"{page_url(request)}?class={code}"

    def _teacher(self, request: gr.Request):
        cls = self.classes.teacher_class(session_id(request))
        if cls is None:
            raise refusal(NOT_TEACHER)
        return cls

    def _students(self, cls) -> list[str]:
        """Session ids of the class's students whose page is open, by number."""
        return [sid for sid, _ in self.classes.members(cls.code) if self.pages.peek(sid) is not None]

    def push(self, lesson, loss, g_lr, d_lr, k, smoothing, request: gr.Request) -> str:
        """Every student starts a fresh run on `lesson` with these settings."""
        cls = self._teacher(request)
        controls = class_controls(lesson, loss, g_lr, d_lr, k, smoothing)
        title = PRESETS[controls.lesson].title if controls.lesson else "your settings"
        done, failed = self._restart_all(cls, lambda sid: (controls, f"**Your teacher pushed “{title}” to the "
                                                                    "class:** a fresh run started at step 0."))
        self.classes.set_pushed(cls.code, controls)
        return _outcome_words(f"Pushed “{title}”", done, failed)

    def assign(self, lesson, loss, g_lr, d_lr, k, smoothing, parameter, low, high, losses, request: gr.Request) -> str:
        """The class experiment: each student one value of `parameter` over low…high (or the
        chosen losses), their run started afresh with it on the push form's lesson and settings."""
        cls = self._teacher(request)
        base = class_controls(lesson, loss, g_lr, d_lr, k, smoothing)
        try:
            experiment = Experiment(str(parameter), _number(low), _number(high),
                                    tuple(losses) if isinstance(losses, (list, tuple)) else ())
        except ExperimentError as exc:
            raise refusal(str(exc)) from None
        students = self._students(cls)
        values = dict(zip(students, experiment.values(len(students))))
        numbers = dict((sid, m.number) for sid, m in self.classes.members(cls.code))
        label = PARAMETERS[experiment.parameter].label

        def assigned(sid):
            value = values[sid]
            field = CONTROL_FIELD[experiment.parameter]
            controls = replace(base, **{field: round(math.log10(value), 4) if field.endswith("_log10") else value})
            return controls, (f"**Your teacher assigned you {label} = {value_words(experiment.parameter, value)} "
                              "for the class experiment:** a fresh run started at step 0.")

        done, failed = self._restart_all(cls, assigned, students)
        self.classes.set_pushed(cls.code, base, experiment, {numbers[sid]: values[sid] for sid in done})
        return _outcome_words(f"Assigned {experiment.describe()}", done, failed)

    def _restart_all(self, cls, plan, students: list[str] | None = None) -> tuple[list[str], list[str]]:
        """Restart each student's run from `plan(sid)` = (controls, notice); (done, refusals)."""
        done, failed = [], []
        for sid in students if students is not None else self._students(cls):
            controls, notice = plan(sid)
            try:
                self.buttons.restart(sid, controls.config(), controls.lesson, notice)
                done.append(sid)
            except gr.Error as exc:
                failed.append(exc.message)
        return done, failed

    def pause_all(self, request: gr.Request) -> str:
        def pause(key, session):
            self.manager.cancel_start(key)
            session.runner.pause()

        count = self._each_run(request, pause, "**Your teacher paused the class.**")
        return f"Paused the class ({count} students)."

    def resume_all(self, request: gr.Request) -> str:
        def resume(key, session):
            if session.runner.state() not in ("error", "finished"):
                self.manager.request_start(key)

        count = self._each_run(request, resume, "**Your teacher resumed the class.**")
        return f"Resumed the class ({count} students; some may wait for a free slot)."

    def _each_run(self, request: gr.Request, act, notice: str) -> int:
        """`act(session id, session)` on every run (A and B) of the teacher's students, each told
        `notice`; returns how many students."""
        students = self._students(self._teacher(request))
        for sid in students:
            for key in (sid, sid + COMPARE_SUFFIX):
                session = self.manager.get(key)
                if session is not None:
                    act(key, session)
            self._tell(sid, notice)
        return len(students)

    def hide(self, hidden, request: gr.Request) -> str:
        """Hide these controls from every student (their pages hide them; the server keeps their values)."""
        cls = self._teacher(request)
        keys = frozenset(h for h in (hidden or []) if h in HIDEABLE)
        self.classes.set_hidden(cls.code, keys)
        for sid in self._students(cls):
            page = self.pages.peek(sid)
            if page is not None:
                page.pushed += 1
        words = ", ".join(HIDEABLE[key] for key in HIDEABLE if key in keys)
        return f"Hidden from the students: {words}." if keys else "Every control is visible to the students again."

    def export_csv(self, request: gr.Request):
        """The class's table (one row per student) as a CSV file to download."""
        cls = self._teacher(request)
        path = Path(tempfile.mkdtemp(prefix="gan-class-")) / "class-experiment.csv"
        path.write_text(table_csv(self.view.table(cls), CSV_COLUMNS))
        return gr.update(value=str(path), visible=True)

    def _tell(self, sid: str, notice: str) -> None:
        page = self.pages.peek(sid)
        if page is not None:
            page.notice = notice


def lesson_settings(lesson) -> tuple:
    """The push form's settings when the teacher picks a lesson: the lesson's own
    (loss, log10 G lr, log10 D lr, k, smoothing)."""
    live = (Controls.for_lesson(lesson) if lesson in PRESETS and lesson else Controls.start()).live
    return live.loss, live.g_lr_log10, live.d_lr_log10, live.n_critic, live.label_smoothing


def experiment_form(parameter) -> tuple:
    """The experiment form for `parameter`: its default range (low, high) or, for the loss, the losses box."""
    spec = PARAMETERS.get(parameter)
    if spec is None:
        raise refusal(f"Unknown parameter {str(parameter)[:40]!r}: choose one from the list.")
    category = spec.kind == "category"
    return (gr.update(value=spec.default[0], visible=not category),
            gr.update(value=spec.default[1], visible=not category), gr.update(visible=category))


def class_controls(lesson, loss, g_lr, d_lr, k, smoothing) -> Controls:
    """The push form's controls: the lesson's setup (Free play: the page's) with these settings."""
    if lesson not in ("", None, *PRESETS):
        raise refusal(f"Unknown lesson {str(lesson)[:40]!r}: choose one from the list.")
    start = Controls.for_lesson(lesson) if lesson else Controls.start()
    controls = replace(start, loss=loss, g_lr_log10=g_lr, d_lr_log10=d_lr, n_critic=k, label_smoothing=smoothing)
    controls.config()  # a refusal on a bad value, before any student's run is touched
    return controls


def student_note(number: int, name: str) -> str:
    """What a student is told about their class (their name is not repeated: the box shows it)."""
    named = "the name you typed" if name else "the name you type here (if any)"
    return (f"You are **student #{number}** in this class. Your teacher sees your run (its plots and settings) "
            f"and {named} — nothing else — and may push a lesson or settings to the whole class.")


def _warn_pinned(changed: list[str]) -> None:
    if changed:
        gr.Warning(f"Your teacher set the {', '.join(HIDEABLE[key] for key in changed).lower()} for the class: "
                   "your change to it was not applied.")


def _number(value) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _outcome_words(what: str, done: list, failed: list) -> str:
    text = f"{what} to {len(done)} student{'s' if len(done) != 1 else ''}: each started a fresh run."
    if failed:
        text += f" {len(failed)} could not start: {failed[0]}"
    return text
