"""Shared fixtures for the tests: one torch thread, the tiny config, and a check
(autouse: every test) that no 'gan-*' training thread outlives the test that started it."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
import time

import pytest
import torch

import app_support
from configs import tiny_config


@pytest.fixture(scope="session", autouse=True)
def upload_cache():
    """Gradio's upload cache for this test session only (not the machine's /tmp/gradio)."""
    folder = tempfile.mkdtemp(prefix="gan-test-uploads-")
    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = folder
    yield folder
    if before is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = before
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny CPU models gain nothing from intra-op threads on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gan_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gan-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail the test if a 'gan-*' training thread is still alive when it ends."""
    before = set(_gan_threads())
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and set(_gan_threads()) - before:
        time.sleep(0.01)
    leaked = sorted(t.name for t in set(_gan_threads()) - before)
    assert not leaked, f"training threads left running: {leaked}"


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture
def wait_until():
    return functools.partial(app_support.wait_until, timeout=10.0, interval=0.005)


@pytest.fixture
def make_page():
    """Build the page's server side (`classroom.page.Page`) on a fresh SessionManager; every
    session is released at the end."""
    from classroom.page import Page
    from classroom.sessions import SessionManager

    managers = []

    def make(max_active: int = 1, processes: int = 0) -> "Page":
        managers.append(SessionManager(max_active=max_active, max_sessions=4, processes=processes))
        return Page(managers[-1])

    yield make
    for manager in managers:
        manager.close()


@pytest.fixture
def page(make_page):
    return make_page(max_active=1)


@pytest.fixture(params=[0, 2], ids=["threads", "processes"])
def any_page(request, make_page):
    """`page` with runs trained on threads here, then in two trainer processes (the server's
    default): for tests that look at runs only through the handle."""
    return make_page(max_active=1, processes=request.param)


@pytest.fixture
def make_runner(tiny):
    """Build runners on tiny configs; every one is stopped when the test ends."""
    from gan_core.serve.runner import Runner

    made: list = []

    def make(config=None, **kwargs):
        kwargs.setdefault("name", f"gan-test-{len(made)}")
        kwargs.setdefault("chunk_s", 0.005)
        kwargs.setdefault("eval_interval_s", 0.05)
        runner = Runner(config or tiny(), **kwargs)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.stop(timeout=30)


@pytest.fixture
def open_page():
    """`open_page(url, width, height)`: a page of headless Debian Chromium (see
    `app_support.chromium`) at that viewport, gone to `url`; the browser closes after the test."""
    from playwright.sync_api import sync_playwright

    from benchmarks.browser_probe import launch

    app_support.chromium()  # skips here without a browser, fails under CI=true
    with sync_playwright() as p:
        browsers = []

        def open_(url: str, width: int = 1400, height: int = 1000):
            if not browsers:
                browsers.append(launch(p))
            page = browsers[0].new_page(viewport={"width": width, "height": height})
            page.goto(url)
            return page

        try:
            yield open_
        finally:
            for browser in browsers:
                browser.close()


@pytest.fixture
def app_page(open_page):
    """The app in-process and a 1400x1000 headless Chromium page open on it: yields
    (page, manager); `page.url_base` is the app's address, `page.server` its `classroom.page.Page`.
    Its runs train on threads in this process, so a test can look at their engines."""
    with app_support.running_app(processes=0) as (url, server):
        page = open_page(url)
        page.url_base = url
        page.server = server
        yield page, server.manager
