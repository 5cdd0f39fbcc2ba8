"""The page's server side in one place: what app.py wires to Gradio.

What it is: `Page`, which puts together the runs (`SessionManager`), what each open page is
(`Pages`), the live channel (`LiveChannel`) and the actions (`Buttons`), and adds the events that
concern the page itself: opening it (`open`: the URL's setup and the live channel's token),
refreshing the Gradio-side parts the live channel flags (`sync`), closing it (`unload`), and the
route the live channel answers on. `with_controls` / `with_live` turn Gradio's positional inputs
into the one typed value a handler takes. What it is not: layout (app.py) or any action itself.
"""

from __future__ import annotations

import inspect

import gradio as gr
from fastapi import Response
from fastapi.routing import APIRoute

from .buttons import Buttons, lesson_text, session_id
from .controls import COMPONENTS, LIVE_COMPONENTS, Controls, LiveControls
from .live import LiveChannel, alerts_markdown, fix_of
from .pages import COMPARE_SUFFIX, Pages
from .sessions import SessionManager
from .share import B_CONTROLS, HIDEABLE, URL_KEYS, from_link, lesson_changes, share_link

LIVE_ROUTE = "/gan/live/{token}"


class Page:
    """Everything app.py wires: see the module docstring."""

    def __init__(self, manager: SessionManager | None = None) -> None:
        self.manager = manager or SessionManager()
        self.pages = Pages()
        self.live = LiveChannel(self.manager, self.pages)
        self.buttons = Buttons(self.manager, self.pages, self.live)

    # --- typed inputs -------------------------------------------------------------------------

    @staticmethod
    def with_controls(method):
        """A Gradio handler taking the controls (`controls.COMPONENTS` order) and calling
        `method(Controls, request=…)`."""
        return _handler(method, len(COMPONENTS), lambda values: (Controls(*values),))

    @staticmethod
    def with_live(method):
        """A Gradio handler taking the live controls (`controls.LIVE_COMPONENTS` order) and calling
        `method(LiveControls, request=…)`."""
        return _handler(method, len(LIVE_COMPONENTS), lambda values: (LiveControls(*values),))

    def share_handler(self):
        """Make a share link: the controls, then the list of controls to hide."""
        return _handler(lambda controls, hide, request: share_link(controls, hide, request), len(COMPONENTS) + 1,
                        lambda values: (Controls(*values[:-1]), values[-1]), name="share_link")

    def compare_handler(self):
        """A/B: the controls, then B's live changes (loss, log10 G lr, log10 D lr, k, smoothing)."""
        n = len(COMPONENTS)

        def typed(values):
            controls = Controls(*values[:n])
            return controls, LiveControls(*values[n:], two_sided=controls.two_sided)

        return _handler(self.buttons.start_compare, n + len(LIVE_COMPONENTS) - 1, typed)

    # --- the page itself -------------------------------------------------------------------------

    def open(self, request: gr.Request) -> tuple:
        """A page opened (possibly on a share link): its controls, hidden controls, the lesson's
        text, the CSV box, the A/B controls' visibility and the live channel's token."""
        sid = session_id(request)
        link = from_link(getattr(request, "query_params", None) or {})
        if link.note:
            gr.Warning(link.note)
        updates = [gr.update(value=v, visible=key not in link.hidden)
                   for key, v in zip(URL_KEYS, link.controls.values())]
        text = lesson_text(link.controls.lesson)
        changed = lesson_changes(link.controls)
        if changed and link.controls.lesson:
            text = gr.update(value=text["value"] + f"\n\n*This link changes the lesson's {changed}: the page shows "
                                                   "the link's settings.*", visible=True)
        b_updates = [gr.update(visible=name not in link.hidden) for name in B_CONTROLS]
        token = self.pages.get(sid).token
        return (*updates, text, gr.update(visible=link.controls.dataset == "csv"), *b_updates, token)

    def sync(self, request: gr.Request) -> tuple:
        """The Gradio-side parts the live channel flagged: alerts, fix button, rewind menu, A/B box."""
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
        page.sync_key = key
        return (gr.update(value=text, visible=bool(text)),
                gr.update(value=label or "Apply fix", visible=fix is not None, variant="primary", size="lg"),
                gr.update(choices=choices, value=pick), gr.update(visible=session_b is not None))

    def unload(self, request: gr.Request) -> None:
        sid = getattr(request, "session_hash", None)
        if sid:
            self.pages.forget(sid)
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

    def routes(self) -> list[APIRoute]:
        """Routes to mount on Gradio's FastAPI app (`launch(app_kwargs={"routes": ...})`)."""
        return [APIRoute(LIVE_ROUTE, self._live_endpoint, methods=["GET"], include_in_schema=False)]

    def _live_endpoint(self, token: str, since: str = "") -> Response:
        # A plain function: FastAPI runs it on its thread pool, so a snapshot fetched from a
        # trainer process never blocks the server's event loop.
        status, body, interval = self.live.poll(token, since[:64])
        headers = {"Cache-Control": "no-store", "X-Next-Ms": str(round(interval * 1000))}
        if status == 204:
            return Response(status_code=204, headers=headers)
        return Response(content=body, status_code=status, media_type="application/json", headers=headers)



def _handler(method, n_inputs: int, typed, name: str | None = None):
    """A function Gradio can call with `n_inputs` positional values and the request, calling
    `method(*typed(values), request=request)`. Its signature is spelled out (Gradio reads it to
    pass the request and to count inputs); not `functools.wraps`, through which Gradio would
    read `method`'s own signature."""

    def handler(*args):
        *values, request = args
        if len(values) != n_inputs:
            raise gr.Error(f"expected {n_inputs} values, got {len(values)}")
        return method(*typed(values), request=request)

    params = [inspect.Parameter(f"value_{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(n_inputs)]
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request))
    handler.__signature__ = inspect.Signature(params)
    handler.__annotations__ = {"request": gr.Request}
    handler.__name__ = handler.__qualname__ = name or getattr(method, "__name__", "handler")
    handler.__doc__ = method.__doc__
    return handler


HIDE_CHOICES = [(label, key) for key, label in HIDEABLE.items()]  # teacher mode's checkboxes: words, URL keys
