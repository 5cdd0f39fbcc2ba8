"""Shared helpers for the app, API and browser tests (not collected: no test_ prefix)."""

from __future__ import annotations

import os
import socket
import time
from contextlib import closing, contextmanager
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


# The page's controls as the start/step/reset endpoints take them (`classroom.controls.COMPONENTS`):
# dataset, size, batch, seed, loss, log10 G lr, log10 D lr, k, smoothing, two-sided, lesson.
SETUP = ["ring8", "small", 64, 0, "nonsaturating", -3.0, -3.0, 1, 0.0, False, ""]


def req(sid: str):
    """A Gradio request from the visitor `sid`."""
    import gradio as gr

    return gr.Request(session_hash=sid)


def controls(values=None, **changes):
    """The page's controls (`classroom.controls.Controls`): SETUP, or `values`, with `changes`."""
    from dataclasses import replace

    from classroom.controls import Controls

    return replace(Controls(*(values or SETUP)), **changes)


def frame(page, sid: str) -> dict:
    """What `sid`'s page gets from the live channel now, everything (as a fresh page would)."""
    import json

    status, body, _ = page.live.poll(page.pages.get(sid).token, "")
    assert status == 200, status
    return json.loads(body)


def as_upload(content: bytes | str | os.PathLike, name: str) -> str:
    """Put `content` (bytes, or the file at a path) in Gradio's upload cache as an upload through
    the page would (`<cache>/<hash>/<name>`) and return its path: what a handler receives."""
    import hashlib

    from classroom.uploads import upload_root

    data = content if isinstance(content, bytes) else Path(content).read_bytes()
    folder = upload_root() / hashlib.sha256(b"test-upload" + data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return str(folder / name)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `what` in the message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout} s")


def until(act, done, timeout: float = 60.0, every: float = 8.0):
    """Do `act` until `done()` is true: on a loaded machine the page's scripts may still be
    attaching their handlers when the first click lands (a click before that is lost)."""
    deadline = time.monotonic() + timeout
    while True:
        act()
        try:
            return wait_until(done, timeout=min(every, max(deadline - time.monotonic(), 0.1)))
        except AssertionError:
            if time.monotonic() >= deadline:
                raise


# The lecture view at a projector's 1280x720: what must be on screen without scrolling.
LECTURE_VIEW = ("#status .gan-status", "#step-d", "#samples-plot .js-plotly-plot")
# With the page scrolled to the top: for each selector whose element is not wholly inside the
# viewport, where it is (an empty list when all are on screen).
OFF_SCREEN_JS = """(selectors) => { window.scrollTo(0, 0); return selectors.map(s => {
  const el = document.querySelector(s); if (!el) return s + ': missing';
  const r = el.getBoundingClientRect();
  return (r.width > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight) ? null
    : `${s}: (${r.left}, ${r.top})-(${r.right}, ${r.bottom}) in ${innerWidth}x${innerHeight}`; }).filter(x => x); }"""


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the page's dropdown labelled `label` (Playwright)."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option).click()


def shown_step(page) -> int | None:
    """The step counter as the page's status line shows it (Playwright)."""
    import re

    match = re.search(r"step ([\d,]+)", page.locator("#status").inner_text())
    return int(match.group(1).replace(",", "")) if match else None


@contextmanager
def running_app(max_active: int = 2, processes: int | None = None):
    """The app launched in-process on a free port: yields (url, Page). Its runs train in trainer
    processes as the server's do (`processes` overrides how many; 0: threads here)."""
    import torch

    import app
    from classroom.page import Page
    from classroom.sessions import SessionManager

    torch.set_num_threads(1)
    page = Page(SessionManager(max_active=max_active, processes=processes))
    demo = app.build_demo(page)
    port = free_port()
    app.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", page
    finally:
        demo.close()
        page.manager.close()


def chromium() -> str:
    """Debian's chromium for Playwright. Skips locally when it or Playwright is missing, but
    *fails* when CI=true: `.ci/run` installs both, so a skip there would hide a broken page."""
    import importlib.util
    import os

    import pytest

    from benchmarks.browser_probe import chromium_path

    path = chromium_path()
    missing = None
    if not path:
        missing = "Debian's chromium is not installed (apt install chromium)"
    elif importlib.util.find_spec("playwright") is None:
        missing = "playwright is not installed (pip install -r requirements-dev.txt)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    return path

