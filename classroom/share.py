"""Share links: a page's setup in its URL, and reading one back when a page opens.

What it is: `share_link` (the controls, the lesson and the controls a teacher hides, as URL
query keys) and `from_link` (a page's first values from its URL: every value validated like a
control, anything unreadable ignored with a plain-text warning). What it is not: classes (a
teacher's hidden controls for a whole class are kept on the server: `classes.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

import gradio as gr

from .controls import Controls
from .presets import PRESETS, get_preset
from .uploads import refusal

# Controls a teacher can hide with ?hide=a,b, by their URL names, and the labels the page shows.
HIDEABLE = {"dataset": "Dataset", "size": "Network size", "batch": "Batch size", "seed": "Seed", "loss": "Loss",
            "g_lr": "G learning rate", "d_lr": "D learning rate", "k": "D steps per G step (k)",
            "smoothing": "Label smoothing", "two_sided": "Two-sided smoothing", "lesson": "Lesson"}
# One URL key per control, in the order of `controls.COMPONENTS`.
URL_KEYS = ("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k", "smoothing", "two_sided", "lesson")
B_CONTROLS = ("loss", "g_lr", "d_lr", "k", "smoothing")  # the A/B section's controls, hidden with their A control
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class Link:
    """What a page's URL asks for: the controls, the controls hidden, and why some were ignored."""

    controls: Controls
    hidden: frozenset[str]
    note: str = ""  # plain text, already escaped for a Gradio warning


def share_link(controls: Controls, hide: list[str] | None, request: gr.Request) -> str:
    """A link that opens this page with the same setup (and, for teachers, hidden controls)."""
    values = dict(zip(URL_KEYS, controls.values()))
    params = {k: v for k, v in values.items() if v not in ("", None)}
    if hide:
        params["hide"] = ",".join(h for h in hide if h in HIDEABLE)
    return f"{page_url(request)}?{urlencode(params)}"


def from_link(query: dict) -> Link:
    """The controls a page opens with: a lesson's, changed by any control values in `query`."""
    query = {k: str(v)[:MAX_QUERY_CHARS] for k, v in dict(query or {}).items()}
    lesson = query.get("lesson", "")
    controls = Controls.for_lesson(lesson) if lesson in PRESETS else Controls.start()
    note = ""
    try:
        values = dict(zip(URL_KEYS, controls.values()))
        for key in URL_KEYS[:-1]:
            if key in query:
                values[key] = _parse(key, query[key])
        candidate = Controls(*values.values())
        candidate.config()  # validates the whole setup
        controls = candidate
    except gr.Error as exc:  # already a visitor-safe message
        note = f"The link's setup was ignored: {exc.message}"
    except ValueError as exc:
        note = refusal(f"The link's setup was ignored: {exc}").message
    hidden = frozenset(filter(None, query.get("hide", "").split(","))) & set(HIDEABLE)
    return Link(controls, hidden, note)


def lesson_changes(controls: Controls) -> str:
    """How `controls` differ from their lesson's own settings, in words ("" if not at all), so a
    lesson's text never speaks of a loss or rate the page does not use."""
    if not controls.lesson:
        return ""
    own = Controls.for_lesson(controls.lesson)
    words = {"dataset": "dataset", "size": "network size", "batch_size": "batch size", "seed": "seed",
             "loss": "loss", "g_lr_log10": "G learning rate", "d_lr_log10": "D learning rate",
             "n_critic": "k", "label_smoothing": "label smoothing", "two_sided": "two-sided smoothing"}
    changed = [words[name] for name in words if getattr(controls, name) != getattr(own, name)]
    return ", ".join(changed)


def with_lesson_if_unchanged(controls: Controls) -> Controls:
    """The controls, marked Free play when they changed the lesson's dataset (its text would not apply)."""
    if controls.lesson and get_preset(controls.lesson).config.dataset != controls.dataset:
        return replace(controls, lesson="")
    return controls


def _parse(key: str, raw: str):
    if key in ("batch", "seed", "k"):
        return int(raw)
    if key in ("g_lr", "d_lr", "smoothing"):
        return float(raw)
    if key == "two_sided":
        return raw.lower() in ("1", "true", "yes")
    return raw


def page_url(request: gr.Request) -> str:
    headers = getattr(request, "headers", {}) or {}
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    proto = headers.get("x-forwarded-proto") or "http"
    return f"{proto}://{host}/"

