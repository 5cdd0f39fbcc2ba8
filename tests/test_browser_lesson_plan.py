"""The README's 10-minute lesson ("Teaching with it"), walked on the real page at a projector's
1280x720 in Debian's chromium: every step's presses, and what the README says the class then sees.

The runs train as fast as this box allows (the lesson's speed choices are checked, then set back
to full speed), and the waits are hang guards, not speed targets: the test checks behaviour only.
Skips without chromium locally, fails when CI=true.
"""

from __future__ import annotations

import re

import pytest

from app_support import LECTURE_VIEW, OFF_SCREEN_JS, choose, until, wait_until
from classroom.presets import get_preset

pytestmark = pytest.mark.browser

# The names of the samples plot's traces drawn in the page (plotly's own copy of the figure).
TRACE_NAMES_JS = """() => { const d = document.querySelector('#samples-plot .js-plotly-plot');
  return d && d.data ? d.data.map(t => t.name || '') : []; }"""


def status(page) -> str:
    return page.locator("#status").inner_text()


def traces(page) -> list[str]:
    return page.evaluate(TRACE_NAMES_JS)


def modes_covered(page) -> int | None:
    match = re.search(r"modes covered (\d+)/8", status(page))
    return int(match.group(1)) if match else None


def mean_d_fake(page) -> float | None:
    """Mean D(G(z)) as the model overview shows it."""
    match = re.search(r"D\(G\(z\)\) = ([\d.]+)", page.locator("#overview").inner_text())
    return float(match.group(1)) if match else None


def stage(page, lesson: str) -> None:
    """Choose a lesson from the menu and wait until its run is set up."""
    until(lambda: choose(page, "Lesson", lesson), lambda: "is set up at step 0" in status(page))


def test_the_ten_minute_lesson(app_page, open_page):
    page, manager = app_page
    page.set_viewport_size({"width": 1280, "height": 720})
    press = lambda name: page.get_by_role("button", name=name, exact=True).click()
    run = lambda: next(iter(manager.sessions().values())).runner

    # 1. The game: Healthy GAN, 1 step/s, Start; the model graph shows z → G → fakes → D ← real.
    stage(page, "Healthy GAN (ring of 8)")
    page.get_by_label("1 step/s").check()
    press("Start")
    wait_until(lambda: "Running" in status(page) and "slow motion: 1/s" in status(page), timeout=30,
               what="running in slow motion")
    graph = page.locator("#overview").inner_text()
    assert all(box in graph for box in ("noise z", "G (generator)", "fake samples G(z)", "D (discriminator)",
                                        "real samples x", "D loss", "G loss"))

    # 2. One move at a time: Pause, Step D only (D's 0.5 line before and now), Step G only (trails).
    press("Pause")
    wait_until(lambda: run().state() == "paused" and "Paused" in status(page), timeout=30, what="paused")
    press("Step D only")
    wait_until(lambda: "D updated once" in status(page), timeout=30, what="D's single update")
    assert "G unchanged" in status(page)
    # D's boundary before (dashed) and now (solid); G did not move, so no trails.
    d_only = lambda names: {"D=0.5 before", "D=0.5 now"} <= set(names) and not any("moves" in n for n in names)
    wait_until(lambda: d_only(traces(page)), timeout=30, what="D's previous and new boundary, and no trails")
    # What the class looks at now is on the projected screen: the status line, the button, the plot.
    assert page.evaluate(OFF_SCREEN_JS, list(LECTURE_VIEW)) == []
    press("Step G only")
    wait_until(lambda: "G updated once" in status(page), timeout=30, what="G's single update")
    assert "D unchanged" in status(page)
    # Trails of G's samples (the raw G's: this run keeps an EMA of G); D did not move.
    g_only = lambda names: "raw G's moves" in names and "D=0.5 before" not in names
    wait_until(lambda: g_only(traces(page)), timeout=30, what="the trails of G's samples, and no old boundary")
    # In slow motion the same lines and trails appear at every step.
    press("Resume")
    wait_until(lambda: {"D=0.5 before", "D=0.5 now", "raw G's moves"} <= set(traces(page)) and "Running" in status(page),
               timeout=30, what="boundaries and trails at 1 step/s")

    # 3. Let it run: 100 steps/s, then full speed; the coverage climbs to 8/8.
    page.get_by_label("100 steps/s").check()
    wait_until(lambda: "slow motion: 100/s" in status(page), timeout=30, what="100 steps/s")
    healthy = run()
    page.get_by_label("Full speed").check()
    wait_until(lambda: "slow motion" not in status(page), timeout=30, what="full speed")
    wait_until(lambda: modes_covered(page) == 8, timeout=240, what="8/8 modes covered")
    assert run() is healthy, "changing the speed does not restart the run"

    # 4. Break it: Mode collapse, a fresh run; the alert appears; its fix switches to WGAN-GP.
    stage(page, "Mode collapse")
    press("Start")
    collapse = run()
    assert collapse is not healthy and get_preset("mode_collapse").config.n_critic == collapse.config.n_critic
    alert = page.locator("#alerts")
    wait_until(lambda: alert.is_visible() and "Mode collapse: G covers only" in alert.inner_text(), timeout=300,
               what="the mode-collapse alert")
    covered = re.search(r"covers only (\d+) of 8 modes", alert.inner_text())
    assert covered and 1 <= int(covered.group(1)) <= 4, alert.inner_text()  # "1–4 of the 8 clusters"
    fix = page.locator("#fix")
    assert "WGAN-GP" in fix.inner_text()
    fix.click()
    wait_until(lambda: collapse.config.loss == "wgan-gp", timeout=30, what="the fix applied")
    assert collapse.config.d_lr == pytest.approx(1e-3) and run() is collapse
    wait_until(lambda: "WGAN-GP" in page.get_by_label("Loss", exact=True).input_value(), timeout=30,
               what="the Loss menu showing the fix")
    wait_until(lambda: not alert.is_visible(), timeout=60, what="the alert gone")
    markers = lambda: page.evaluate("""() => (document.querySelector('#loss-plot .js-plotly-plot').layout.annotations
        || []).map(a => a.text)""")
    wait_until(lambda: any("loss → wgan-gp" in text for text in markers()), timeout=30,
               what="the marker where the rule changed, on the losses")

    # 5. A too-strong D: minimax loss, D(G(z)) near 0; switch the loss live, no restart.
    stage(page, "D too strong → G's gradient vanishes")
    press("Start")
    strong = run()
    assert strong.config.loss == "minimax"
    wait_until(lambda: alert.is_visible() and "minimax loss" in alert.inner_text(), timeout=300,
               what="the D-too-strong alert")
    before = mean_d_fake(page)
    assert before is not None and before < 0.1, page.locator("#overview").inner_text()
    step = strong.snapshot().step
    choose(page, "Loss", "Non-saturating (−log D(G(z)))")
    wait_until(lambda: strong.config.loss == "nonsaturating", timeout=30, what="the loss switched live")
    assert run() is strong and strong.snapshot().step >= step, "a live switch: the same run, not restarted"
    wait_until(lambda: strong.snapshot().step > step + 250 and "Running" in status(page), timeout=120,
               what="the run training on")
    wait_until(lambda: (mean_d_fake(page) or 0) > max(0.06, 1.5 * before), timeout=120, what="D(G(z)) rising")

    # 6. Your turn: a share link with the learning rates hidden opens without them.
    page.get_by_text("Rewind, save, timelapse and share").click()
    for label in ("G learning rate", "D learning rate"):
        page.get_by_label(label, exact=True).check()
    link = page.locator("#share-url textarea")
    until(lambda: page.get_by_role("button", name="Make share link").click(), lambda: "hide=" in link.input_value())
    assert re.search(r"hide=g_lr%2Cd_lr|hide=d_lr%2Cg_lr", link.input_value()), link.input_value()
    student = open_page(link.input_value(), 1280, 720)
    wait_until(lambda: student.get_by_label("number input for D steps per G step (k)").count() == 1, timeout=30,
               what="the student's page")
    wait_until(lambda: student.get_by_label("number input for G learning rate (log10)").count() == 0
               and student.get_by_label("number input for D learning rate (log10)").count() == 0, timeout=30,
               what="the learning rates hidden")
    assert student.get_by_label("number input for B: D learning rate (log10)").count() == 0
