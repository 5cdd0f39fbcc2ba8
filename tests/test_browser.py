"""Real-browser test: Debian's chromium driven by Playwright against the live app.

Skips locally when chromium or Playwright is missing, but *fails* when CI=true:
`.ci/run` installs both, so a skip there would hide a broken page.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from statistics import median

import pytest

from app_support import running_app, wait_until
from classroom.browser_probe import CHROMIUM_ARGS, PageProbe, chromium_path

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LIVE_PLOTS = ("samples-plot", "hist-plot", "loss-plot", "means-plot", "coverage-plot")


def _chromium() -> str:
    path = chromium_path()
    missing = None
    if not path:
        missing = "Debian's chromium is not installed (apt install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -r requirements-dev.txt)"
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)
    return path


@pytest.fixture
def live_app():
    with running_app() as (url, manager):
        yield url, manager


def _trace_points(page, elem_id: str) -> int:
    """Number of data points plotly has drawn in the plot with this elem_id."""
    return page.evaluate(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                     if (!el || !el.data) return 0;
                     return el.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0); }""",
        elem_id,
    )


def test_lesson_preset_fills_the_controls(live_app):
    from playwright.sync_api import sync_playwright

    url, manager = live_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url + "?lesson=strong_d&hide=g_lr")
            wait_until(lambda: page.locator("#lesson-text").is_visible(), timeout=20)
            assert "discriminator wins" in page.locator("#lesson-text").inner_text()
            assert page.get_by_label("number input for D steps per G step (k)").input_value() == "5"
            assert page.get_by_label("number input for G learning rate (log10)").count() == 0, "hidden by the link"
        finally:
            browser.close()


def test_start_watch_and_move_a_slider(live_app):
    from playwright.sync_api import sync_playwright

    url, manager = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1300})
            page.goto(url)
            page.get_by_role("button", name="Start").click()
            wait_until(lambda: _trace_points(page, "loss-plot") > 10, timeout=60)
            wait_until(lambda: _trace_points(page, "hist-plot") > 0, timeout=30)
            assert "Running" in page.locator("#status").inner_text()

            (session,) = [manager.get(sid) for sid in list(manager._sessions)]
            engine = session.runner.engine
            box = page.get_by_label("number input for D learning rate (log10)")
            box.fill("-2")
            box.press("Enter")
            wait_until(lambda: math.isclose(engine.d_opt.param_groups[0]["lr"], 1e-2 * engine.lr_scale(), rel_tol=2e-2), timeout=20)
            step = session.runner.snapshot().step
            wait_until(lambda: session.runner.snapshot().step > step + 50, timeout=20)
            assert session.runner.engine is engine, "moving a live slider must not restart the run"
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / "live_page.png"), full_page=True)

            # Rewind through the real page: the menu's choices were updated by the timer.
            runner = session.runner
            runner.checkpoint_now()
            page.get_by_text("Rewind, save, timelapse and share").click()
            wait_until(lambda: "#" in (page.get_by_label("Checkpoints (one every 10 s)").input_value() or ""),
                       timeout=20)
            page.get_by_role("button", name="Rewind to checkpoint").click()
            wait_until(lambda: "Rewound" in page.locator("#status").inner_text(), timeout=20)
            assert runner.state() == "paused"
        finally:
            browser.close()
    assert (ARTIFACTS / "live_page.png").stat().st_size > 10_000


def _count_redraws(page) -> None:
    """Count every finished plotly draw of the live plots in window.__redraws."""
    page.evaluate("""(ids) => { window.__redraws = 0;
        for (const id of ids) document.querySelector('#' + id + ' .js-plotly-plot')
            .on('plotly_afterplot', () => { window.__redraws += 1; }); }""", list(LIVE_PLOTS))


def test_page_memory_stays_flat_while_training(live_app):
    """Two minutes of the default run drawing 2.5x/s must not grow the page's JS heap.

    The heap is measured after a forced GC (what the page still holds, not garbage
    waiting for collection); the first third of the samples is compared with the
    last. Before the fix each update left a whole plot behind (+45 MB a minute).
    """
    from playwright.sync_api import sync_playwright

    url, manager = live_app
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Start").click()
            wait_until(lambda: _trace_points(page, "loss-plot") > 10, timeout=60)
            _count_redraws(page)
            page.wait_for_timeout(10_000)  # warm up: caches, JIT, the first histories
            probe = PageProbe(page)
            samples = []
            for _ in range(12):
                samples.append(probe.sample())
                page.wait_for_timeout(7_000)
            redraws = page.evaluate("window.__redraws")
        finally:
            browser.close()
    # Medians of the first and last thirds: a sample taken in the middle of a redraw
    # holds that redraw's objects, and must not decide the test alone.
    third = len(samples) // 3
    heap_first = median(s.heap_after_gc_mb for s in samples[:third])
    heap_last = median(s.heap_after_gc_mb for s in samples[-third:])
    nodes_first = median(s.dom_nodes for s in samples[:third])
    nodes_last = median(s.dom_nodes for s in samples[-third:])
    assert heap_last - heap_first < 8.0, (
        f"JS heap after GC grew from {heap_first:.1f} MB to {heap_last:.1f} MB in "
        f"{samples[-1].t_s - samples[0].t_s:.0f} s of training ({redraws} redraws)")
    assert nodes_last < 1.2 * nodes_first + 500, f"DOM nodes grew from {nodes_first:.0f} to {nodes_last:.0f}"
    assert redraws >= 50, f"the plots redrew only {redraws} times: the test measured an idle page"
