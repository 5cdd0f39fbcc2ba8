"""The page's server side in one place: what app.py wires to Gradio.

What it is: `Page`, which puts together the runs (`SessionManager`), what each open page is
(`Pages`), the live channel (`LiveChannel`), the actions (`Buttons`) and the classes (a
`ClassRegistry`, the teacher's class view `ClassView` and the class's actions `ClassButtons`),
and adds the events that concern the page itself: opening it (`open`: the URL's setup, the
class it joins and the live channel's token), refreshing the Gradio-side parts the live channel
flags (`sync`: alerts, fix, rewind menu, A/B box, and the controls when a teacher pushed or hid
some), closing it (`unload`), and the routes the live channel and the class view answer on.
`with_controls` / `with_live` turn Gradio's positional inputs into the one typed value a handler
takes, with the controls a teacher hid kept at the server's values. The class registry's sweep
runs on the session manager's housekeeping thread. What it is not: layout (app.py) or any action itself.
"""

from __future__ import annotations

import inspect

import gradio as gr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .buttons import Buttons, lesson_text, session_id
from .classbuttons import ClassButtons
from .classes import ClassRegistry, pin
from .classview import CLASS_POLL_S, ClassView
from .controls import COMPONENTS, LIVE_COMPONENTS, Controls, LiveControls
from .live import LiveChannel, alerts_markdown, fix_of
from .pages import COMPARE_SUFFIX, Pages
from .sessions import SessionManager
from .share import B_CONTROLS, HIDEABLE, URL_KEYS, from_link, lesson_changes, share_link

LIVE_ROUTE = "/gan/live/{token}"
CLASS_ROUTE = "/gan/class/{token}"
WATCH_ROUTE = "/gan/class/{token}/watch/{number}"


class Page:
    """Everything app.py wires: see the module docstring."""

    def __init__(self, manager: SessionManager | None = None, classes: ClassRegistry | None = None) -> None:
        self.manager = manager or SessionManager()
        self.pages = Pages()
        self.live = LiveChannel(self.manager, self.pages)
        self.classes = classes or ClassRegistry()
        self.buttons = Buttons(self.manager, self.pages, self.live, hidden_of=self.classes.hidden_of)
        self.class_view = ClassView(self.manager, self.pages, self.classes, self.live)
        self.class_buttons = ClassButtons(self.manager, self.pages, self.classes, self.buttons, self.class_view)
        self.manager.add_sweeper(self.sweep_classes)

    # --- typed inputs -------------------------------------------------------------------------

    def with_controls(self, method):
        """A Gradio handler taking the controls (`controls.COMPONENTS` order) and calling
        `method(Controls, request=…)`; controls a teacher hid keep the server's values."""
        pinned = self.class_buttons.pinned
        return _handler(method, len(COMPONENTS), lambda values, sid: (pinned(Controls(*values), sid),))

    def with_live(self, method):
        """A Gradio handler taking the live controls (`controls.LIVE_COMPONENTS` order) and calling
        `method(LiveControls, request=…)`; controls a teacher hid keep the server's values."""
        pinned = self.class_buttons.pinned_live
        return _handler(method, len(LIVE_COMPONENTS), lambda values, sid: (pinned(LiveControls(*values), sid),))

    def share_handler(self):
        """Make a share link: the controls, then the list of controls to hide."""
        return _handler(lambda controls, hide, request: share_link(controls, hide, request), len(COMPONENTS) + 1,
                        lambda values, sid: (Controls(*values[:-1]), values[-1]), name="share_link")

    def compare_handler(self):
        """A/B: the controls, then B's live changes (loss, log10 G lr, log10 D lr, k, smoothing).
        A control a teacher hid keeps A's value in B too."""
        n = len(COMPONENTS)

        def typed(values, sid):
            controls = self.class_buttons.pinned(Controls(*values[:n]), sid)
            b = LiveControls(*values[n:], two_sided=controls.two_sided)
            return controls, pin(b, controls.live, self.classes.hidden_of(sid))[0]

        return _handler(self.buttons.start_compare, n + len(LIVE_COMPONENTS) - 1, typed)

    # --- the page itself -------------------------------------------------------------------------

    def open(self, request: gr.Request) -> tuple:
        """A page opened (possibly on a share link): its controls, hidden controls, the lesson's
        text, the CSV box, the A/B controls' visibility and the live channel's token."""
        sid = session_id(request)
        link = from_link(getattr(request, "query_params", None) or {})
        if link.note:
            gr.Warning(link.note)
        cls = self.class_buttons.join_from_link(request)  # a student link: the class's setup and hidden controls
        hidden = link.hidden | (cls.hidden if cls is not None else frozenset())
        controls = cls.pushed if cls is not None and cls.pushed is not None else link.controls
        updates = [gr.update(value=v, visible=key not in hidden) for key, v in zip(URL_KEYS, controls.values())]
        text = lesson_text(controls.lesson)
        changed = lesson_changes(link.controls)
        if changed and link.controls.lesson and controls is link.controls:
            text = gr.update(value=text["value"] + f"\n\n*This link changes the lesson's {changed}: the page shows "
                                                   "the link's settings.*", visible=True)
        b_updates = [gr.update(visible=name not in hidden) for name in B_CONTROLS]
        token = self.pages.get(sid).token
        return (*updates, text, gr.update(visible=link.controls.dataset == "csv"), *b_updates, token)

    def sync(self, request: gr.Request) -> tuple:
        """The Gradio-side parts the live channel flagged: alerts, fix button, rewind menu, A/B box;
        then, after a teacher pushed settings or hid controls, the controls (`COMPONENTS` order,
        values and visibility), the lesson's text and the A/B controls' visibility."""
        sid = session_id(request)
        page = self.pages.get(sid)
        session = self.manager.get(sid)
        session_b = self.manager.get(sid + COMPARE_SUFFIX)
        alerts = self.live.alerts_of(session.runner) if session is not None else []
        key = self.live.sync_key(page, session, session_b, alerts)
        text = alerts_markdown(alerts)
        fix, label = fix_of(alerts)
        infos = session.runner.checkpoints.list() if session is not None else []
        choices = [(i.label, i.index) for i in reversed(infos)]
        pick = page.checkpoint_pick if page.checkpoint_pick in key[2] else (choices[0][1] if choices else None)
        # The key ends with `PageState.pushed`: a teacher changed the controls since the page last synced.
        pushed = self._pushed_controls(sid, session) if key[-1] != (page.sync_key or (0,))[-1] else \
            (gr.skip(),) * (len(URL_KEYS) + 1 + len(B_CONTROLS))
        page.sync_key = key
        return (gr.update(value=text, visible=bool(text)),
                gr.update(value=label or "Apply fix", visible=fix is not None, variant="primary", size="lg"),
                gr.update(choices=choices, value=pick), gr.update(visible=session_b is not None), *pushed)

    def _pushed_controls(self, sid: str, session) -> tuple:
        """The controls as the teacher left them: the run's values, the class's hidden ones hidden."""
        cls = self.classes.class_of(sid)
        hidden = cls.hidden if cls is not None else frozenset()
        page = self.pages.get(sid)
        lesson = (page.setup or {}).get("lesson", "")
        controls = Controls.of(session.runner.config, lesson) if session is not None else \
            (cls.pushed if cls is not None and cls.pushed is not None else Controls.start())
        return (*(gr.update(value=v, visible=key not in hidden) for key, v in zip(URL_KEYS, controls.values())),
                lesson_text(controls.lesson), *(gr.update(visible=name not in hidden) for name in B_CONTROLS))

    def unload(self, request: gr.Request) -> None:
        sid = getattr(request, "session_hash", None)
        if sid:
            self.pages.forget(sid)
            self.manager.release(sid)
            self.manager.release(sid + COMPARE_SUFFIX)
            self.classes.leave(sid)
            self.classes.close_views(sid)

    def sweep_classes(self) -> None:
        """On the housekeeping thread: a student whose page is gone (forgotten without its unload
        event) leaves their class; a class with a student's page open is still in use; one with no
        page open for `classes.CLASS_IDLE_S` closes and its students' runs are freed."""
        open_pages = set(self.pages.open_ids(within_s=CLASS_POLL_S * 40))
        for cls in self.classes.classes():
            for sid in [sid for sid in cls.members if self.pages.peek(sid) is None]:
                self.classes.leave(sid)
            if any(sid in open_pages for sid in cls.members):
                self.classes.touch(cls.code)
        for cls in self.classes.sweep():
            self.class_view.forget(cls.code)
            for sid in cls.members:
                self.manager.release(sid)
                self.manager.release(sid + COMPARE_SUFFIX)

    def server_stats(self) -> dict:
        """Counts for operators and the benchmarks (no per-visitor data)."""
        stats = self.manager.stats()
        stats["steps_per_s"] = self.manager.running_rates()
        stats["capacity"] = self.manager.capacity()
        stats["training_threads"] = self.manager.training_threads()
        stats["pages_open"] = len(self.pages.open_ids(within_s=10.0))
        stats["poll_interval_s"] = self.live.pace.interval
        return stats

    # --- the live channel's route --------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Routes to mount on Gradio's FastAPI app (`launch(app_kwargs={"routes": ...})`). Plain
        Starlette routes: FastAPI's parameter parsing and validation cost a poll ~0.5 ms of
        the event loop's CPU for two strings (`python -m benchmarks tickcost`). The endpoints are
        plain functions: Starlette runs them on its thread pool, so waiting for a trainer
        process's answer (a run's new figures) never blocks the server's event loop."""
        return [Route(LIVE_ROUTE, self._live_endpoint, methods=["GET"], include_in_schema=False),
                Route(CLASS_ROUTE, self._class_endpoint, methods=["GET"], include_in_schema=False),
                Route(WATCH_ROUTE, self._watch_endpoint, methods=["GET"], include_in_schema=False)]

    def _live_endpoint(self, request: Request) -> Response:
        return _answer(*self.live.poll(request.path_params["token"], _since(request)))

    def _class_endpoint(self, request: Request) -> Response:
        return _answer(*self.class_view.poll(request.path_params["token"], _since(request)))

    def _watch_endpoint(self, request: Request) -> Response:
        number = request.path_params["number"]
        number = int(number) if number.isascii() and number.isdigit() and len(number) < 7 else -1
        return _answer(*self.class_view.watch(request.path_params["token"], number, _since(request)))


def _since(request: Request) -> str:
    """The key of the payload a poll's page has (`?since=`), at most 64 characters."""
    return request.query_params.get("since", "")[:64]


def _answer(status: int, body: bytes | None, interval: float) -> Response:
    """A poll's HTTP answer: JSON, or 204 when nothing is new; `X-Next-Ms` says when to poll again."""
    headers = {"Cache-Control": "no-store", "X-Next-Ms": str(round(interval * 1000))}
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def _handler(method, n_inputs: int, typed, name: str | None = None):
    """A function Gradio can call with `n_inputs` positional values and the request, calling
    `method(*typed(values, session id), request=request)`. Its signature is spelled out (Gradio reads it to
    pass the request and to count inputs); not `functools.wraps`, through which Gradio would
    read `method`'s own signature."""

    def handler(*args):
        *values, request = args
        if len(values) != n_inputs:
            raise gr.Error(f"expected {n_inputs} values, got {len(values)}")
        return method(*typed(values, session_id(request)), request=request)

    params = [inspect.Parameter(f"value_{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n_inputs)]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
    handler.__signature__ = inspect.Signature(params)
    handler.__annotations__ = {"request": gr.Request}
    handler.__name__ = handler.__qualname__ = name or getattr(method, "__name__", "handler")
    handler.__doc__ = method.__doc__
    return handler


HIDE_CHOICES = [(label, key) for key, label in HIDEABLE.items()]  # teacher mode's checkboxes: words, URL keys
