"""Real-browser test: Debian's chromium driven by Playwright against the live app.

Skips locally when chromium or Playwright is missing, but *fails* when CI=true:
`.ci/run` installs both, so a skip there would hide a broken page.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from app_support import LECTURE_VIEW, OFF_SCREEN_JS, running_app, until, wait_until
from gan_core.config import default_config

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LIVE_PLOTS = ("samples-plot", "hist-plot", "loss-plot", "means-plot", "coverage-plot")
COMPARE_PLOTS = ("compare-samples-a", "compare-samples-b", "compare-plot", "compare-coverage")


@pytest.fixture
def live_app():
    with running_app() as (url, page):
        yield url, page.manager


def _trace_points(page, elem_id: str) -> int:
    """Number of data points plotly has drawn in the plot with this elem_id."""
    return page.evaluate(
        """(id) => { const el = document.querySelector('#' + id + ' .js-plotly-plot');
                     if (!el || !el.data) return 0;
                     return el.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0); }""",
        elem_id,
    )


def test_lesson_preset_fills_the_controls(live_app, open_page):
    url, manager = live_app
    page = open_page(url + "?lesson=strong_d&hide=g_lr", 1400, 1100)
    wait_until(lambda: page.locator("#lesson-text").is_visible(), timeout=20)
    assert "discriminator wins" in page.locator("#lesson-text").inner_text()
    assert page.get_by_label("number input for D steps per G step (k)").input_value() == "5"
    assert page.get_by_label("number input for G learning rate (log10)").count() == 0, "hidden by the link"


def test_start_watch_and_move_a_slider(live_app, open_page):
    url, manager = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(url, 1600, 1300)
    page.get_by_role("button", name="Start").click()
    wait_until(lambda: _trace_points(page, "loss-plot") > 10, timeout=60)
    wait_until(lambda: _trace_points(page, "hist-plot") > 0, timeout=30)
    assert "Running" in page.locator("#status").inner_text()

    # The page's own server: the run trains in a trainer process, seen through its handle.
    (session,) = manager.sessions().values()
    runner = session.runner
    before = runner.snapshot().step
    box = page.get_by_label("number input for D learning rate (log10)")
    box.fill("-2")
    box.press("Enter")
    # The change is marked on the plots once the training thread applied it between two steps.
    changed = lambda: [s for s, text in runner.snapshot().events if "D lr" in text]
    wait_until(changed, timeout=20)
    assert changed()[0] >= before, "moving a live slider must not restart the run"
    assert math.isclose(runner.config.d_lr, 1e-2)
    step = runner.snapshot().step
    wait_until(lambda: runner.snapshot().step > step + 50, timeout=20)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "live_page.png"), full_page=True)

    # Rewind through the real page: the menu's choices were updated by the timer.
    # The menu shows the newest checkpoint once the page synced after it (an older one, taken at
    # the first steps, would rewind to before the time-lapse's second frame).
    index = runner.checkpoint_now()
    page.get_by_text("Rewind, save, timelapse and share").click()
    wait_until(lambda: f"#{index} " in (page.get_by_label("Checkpoints (one every 10 s)").input_value() or ""),
               timeout=20, what="the menu showing the checkpoint just taken")
    page.get_by_role("button", name="Rewind to checkpoint").click()
    wait_until(lambda: "Rewound" in page.locator("#status").inner_text(), timeout=20)
    assert runner.state() == "paused"
    assert (ARTIFACTS / "live_page.png").stat().st_size > 10_000
    # The time-lapse: a file to download and the GIF itself shown on the page.
    preview = page.locator("#timelapse-preview img")
    until(lambda: page.get_by_role("button", name="Make timelapse GIF").click(), lambda: preview.count() == 1,
          timeout=120, every=30)
    preview.scroll_into_view_if_needed()  # a lazy image loads once near the viewport
    wait_until(lambda: preview.evaluate("(img) => img.complete && img.naturalWidth") > 0, timeout=30,
               what="the preview's GIF loaded")
    assert ".gif" in preview.get_attribute("src")
    assert re.search(r"timelapse-step\d+\s*\.gif", page.locator("#timelapse-file").inner_text())


def test_each_plot_is_redrawn_in_place(live_app, open_page):
    """The live channel's figures redraw the same plot element again and again (Plotly.react), so
    the page holds one plot per chart however long it trains (the page's memory over minutes is
    `python -m benchmarks browser`)."""
    url, manager = live_app
    page = open_page(url, 1400, 1000)
    page.get_by_role("button", name="Start").click()
    wait_until(lambda: _trace_points(page, "loss-plot") > 10, timeout=60)
    page.evaluate("""(ids) => { window.__plots = ids.map(id => document.querySelector('#' + id + ' .js-plotly-plot'));
        window.__redraws = 0;
        for (const d of window.__plots) d.on('plotly_afterplot', () => { window.__redraws += 1; }); }""",
                  list(LIVE_PLOTS))
    wait_until(lambda: page.evaluate("window.__redraws") >= 10, timeout=60, what="ten redraws")
    same = page.evaluate("""(ids) => ids.every((id, i) =>
        document.querySelectorAll('#' + id + ' .js-plotly-plot').length === 1
        && document.querySelector('#' + id + ' .js-plotly-plot') === window.__plots[i])""", list(LIVE_PLOTS))
    assert same, "a plot element was replaced instead of redrawn"


TITLES_JS = """(ids) => ids.map(id => [id, document.querySelector('#' + id + ' .js-plotly-plot')])
  .filter(([id, d]) => d && d.offsetWidth > 0).map(([id, d]) => {
    const box = d.getBoundingClientRect(), t = d.querySelector('.gtitle');
    const b = t ? t.getBoundingClientRect() : null;
    const legend = d.querySelector('.legend'), l = legend ? legend.getBoundingClientRect() : null;
    return {id: id, width: box.width, text: t ? t.textContent : '',
            intended: d.layout && d.layout.title ? d.layout.title.text : '',
            left: b ? b.left - box.left : 0, right: b ? b.right - box.left : 0, bottom: b ? b.bottom - box.top : 0,
            legend_top: l ? l.top - box.top : null}; })"""
# What covers each plot's title, as text: for every visible plot, its title is scrolled into view;
# (1) at points spread over the title's text the topmost element must belong to the plot (nothing
# of the page lies on it); (2) no other visible element of the page has a box that meets the
# title's text box; (3) inside the plot, no legend, colour bar, annotation, axis (ticks, titles)
# or the plot area meets it.
TITLE_COVERS_JS = """(ids) => {
  const name = (el) => el ? (el.id ? '#' + el.id : '') + '<' + el.tagName.toLowerCase() + ' class="'
      + (el.getAttribute('class') || '') + '">' + (el.textContent || '').trim().slice(0, 40) : 'nothing';
  const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const inside = ['.legend', '.colorbar', '.annotation', '.g-xtitle', '.g-ytitle', '.g-y2title', '.xtick',
                  '.ytick', '.y2tick', '.nsewdrag'];
  const out = {};
  for (const id of ids) {
    const plot = document.querySelector('#' + id + ' .js-plotly-plot');
    if (!plot || !plot.offsetWidth) continue;
    const title = plot.querySelector('.gtitle');
    if (!title) { out[id] = ['no title']; continue; }
    title.scrollIntoView({block: 'center'});
    const t = title.getBoundingClientRect();
    const problems = [];
    for (const fx of [0.02, 0.14, 0.26, 0.38, 0.5, 0.62, 0.74, 0.86, 0.98]) for (const fy of [0.25, 0.5, 0.75]) {
      const top = document.elementFromPoint(t.left + fx * t.width, t.top + fy * t.height);
      if (!top || !plot.contains(top)) problems.push('covered by ' + name(top));
    }
    for (const el of document.body.querySelectorAll('*')) {
      if (el.contains(plot) || plot.contains(el)) continue;
      if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0 && meets(r, t)) problems.push('overlapped by ' + name(el));
    }
    for (const el of plot.querySelectorAll(inside.join(','))) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.height > 0 && meets(r, t)) problems.push('overlapped by its own ' + name(el));
    }
    out[id] = [...new Set(problems)];
  }
  return out;
}"""
# Every visible plot drawn at text scale k (its base font is 15 px), and a plot sized by the page's
# CSS at that size.
DRAWN_AT_JS = """(k) => [...document.querySelectorAll('.js-plotly-plot')].filter(d => d.offsetWidth > 0)
  .every(d => d._fullLayout && d._fullLayout.font.size === Math.round(15 * k)
              && (!d.classList.contains('fit-height') || Math.abs(d._fullLayout.height - d.clientHeight) <= 1))"""


def test_projector_layout_titles_and_overview(live_app, open_page):
    """The lecture view on a projector, at 1280x720 and 1400x1000, in normal and Large text, with an
    A/B run's plots shown too: the status line, *Step D only* and D's surface are on screen without
    scrolling; every plot title is whole (its rendered text is the intended one and lies inside
    its plot) and nothing covers it; the model overview's numbers change while training.
    Screenshots of each go to test-artifacts/."""
    url, manager = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_page(url, 1280, 720)
    wait_until(lambda: len(page.evaluate(TITLES_JS, list(LIVE_PLOTS))) == len(LIVE_PLOTS), timeout=60, what="placeholders drawn")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_until(lambda: _trace_points(page, "loss-plot") > 10 and _trace_points(page, "samples-plot") > 100,
               timeout=60, what="live plots drawn")
    numbers = lambda: page.locator("#overview").inner_text()
    first = numbers()
    lr = f"lr {default_config('ring8').g_lr:.1e}".replace("e-0", "e-")
    assert "D loss" in first and "mean D(x) =" in first and lr in first
    wait_until(lambda: numbers() != first, timeout=20, what="the overview's numbers change")
    page.screenshot(path=str(ARTIFACTS / "projector_1280x720_running.png"))  # the README's docs/screenshot.png
    # An A/B run (B with a 10x D learning rate: the longest titles), so its four plots show too.
    page.get_by_text("A/B compare: run a second GAN beside this one").click()
    box = page.get_by_label("number input for B: D learning rate (log10)")
    box.fill("-2")
    box.press("Enter")
    page.get_by_role("button", name="Start A/B").click()
    wait_until(lambda: _trace_points(page, "compare-samples-b") > 100 and _trace_points(page, "compare-plot") > 10,
               timeout=60, what="the A/B plots drawn")
    # Paused from here: a still page to measure and photograph (a tall page of nine plots redrawn
    # several times a second can take a headless browser longer than its timeout to capture).
    page.get_by_role("button", name="Pause", exact=True).click()
    wait_until(lambda: "Paused" in page.locator("#status").inner_text(), timeout=30, what="paused")
    plots = [*LIVE_PLOTS, *COMPARE_PLOTS]
    for width, height in ((1280, 720), (1400, 1000)):
        page.set_viewport_size({"width": width, "height": height})
        for large in (False, True):
            page.get_by_label("Large text (for the back row)").set_checked(large)
            wait_until(lambda: page.evaluate(DRAWN_AT_JS, 1.3 if large else 1), timeout=20,
                       what="every plot drawn at the new size")
            where = f"{width}x{height}{' large text' if large else ''}"
            assert page.evaluate(OFF_SCREEN_JS, list(LECTURE_VIEW)) == [], where
            name = f"projector_{width}x{height}{'_large' if large else ''}"
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            if not large:
                page.screenshot(path=str(ARTIFACTS / f"{name}_full.png"), full_page=True)
            titles = page.evaluate(TITLES_JS, plots)
            assert {t["id"] for t in titles} == set(plots), where
            for t in titles:
                assert t["text"] == t["intended"] and t["text"], f"{where}, {t['id']}: title text {t['text']!r}"
                assert 0 <= t["left"] and t["right"] <= t["width"], f"{where}, {t['id']}: title cut off: {t}"
                if t["legend_top"] is not None:
                    assert t["legend_top"] >= t["bottom"], f"{where}, {t['id']}: the legend covers the title: {t}"
            covered = {k: v for k, v in page.evaluate(TITLE_COVERS_JS, plots).items() if v}
            assert not covered, f"{where}: {covered}"
