"""Browser tests of issue 14 (a lesson that behaves), in Debian's chromium via Playwright:
choosing a lesson, Start after a change, the checkpoint menu, teacher mode's A/B controls."""

from __future__ import annotations

import pytest

from app_support import choose, until, wait_until
from classroom.presets import get_preset

pytestmark = pytest.mark.browser


def only_session(manager):
    return wait_until(lambda: next(iter(manager._sessions.values()), None), what="a session")


def start(page, manager):
    """Press Start until the run exists; returns its session."""
    until(lambda: page.get_by_role("button", name="Start", exact=True).click(),
          lambda: next(iter(manager._sessions.values()), None))
    return only_session(manager)


# Records every text the status line shows (window.__statusLog), however briefly.
STATUS_LOG_JS = """() => { const el = document.querySelector('#status'); window.__statusLog = [el.innerText];
  new MutationObserver(() => window.__statusLog.push(el.innerText))
    .observe(el, {childList: true, subtree: true, characterData: true}); }"""


def status(page) -> str:
    return page.locator("#status").inner_text()


def test_a_lesson_chosen_mid_run_is_staged_and_start_trains_it_fresh(app_page):
    page, manager = app_page
    page.goto(page.url_base)
    old = start(page, manager).runner
    wait_until(lambda: old.snapshot().step > 300, timeout=30)
    page.evaluate(STATUS_LOG_JS)
    until(lambda: choose(page, "Lesson", "Mode collapse"), lambda: "Press Start" in status(page))
    log = page.evaluate("window.__statusLog")
    setting_up = [i for i, text in enumerate(log) if "Setting up the lesson" in text]
    set_up = [i for i, text in enumerate(log) if "is set up at step 0" in text]
    assert setting_up and set_up and setting_up[0] < set_up[0], f"no word before the lesson was ready: {log}"
    staged = only_session(manager).runner
    assert staged is not old and staged.snapshot().step == 0
    healthy_g_lr = old.config.g_lr
    # Touch one slider: it must reach the staged lesson run, not the old run.
    box = page.get_by_label("number input for D learning rate (log10)")
    box.fill("-3.2")
    box.press("Enter")
    wait_until(lambda: abs(staged.config.d_lr - 10 ** -3.2) < 1e-5, timeout=20)
    assert old.config.g_lr == healthy_g_lr
    lesson = get_preset("mode_collapse").config
    assert (staged.config.g_lr, staged.config.n_critic) == (pytest.approx(lesson.g_lr), lesson.n_critic)
    assert old.config.n_critic != lesson.n_critic, "the lesson's own setup, not the old run's"
    page.get_by_role("button", name="Start", exact=True).click()
    wait_until(lambda: staged.snapshot().step > 50, timeout=30)
    assert only_session(manager).runner is staged
    # Another lesson, then Start (without staging, e.g. after Free play): a fresh run, said on the page.
    seed = page.get_by_label("Seed")
    seed.fill("5")
    seed.press("Tab")
    page.get_by_role("button", name="Start", exact=True).click()
    wait_until(lambda: "New run: the setup changed (seed)" in status(page), timeout=20)
    assert only_session(manager).runner is not staged


def test_checkpoint_menu_keeps_the_visitors_choice_while_training(app_page):
    page, manager = app_page
    page.goto(page.url_base)
    session = start(page, manager)
    runner = session.runner
    wait_until(lambda: runner.snapshot().step > 100, timeout=30)
    for _ in range(3):
        runner.checkpoint_now()
    menu = page.get_by_label("Checkpoints (one every 10 s)")
    until(lambda: page.get_by_text("Rewind, save, timelapse and share").click(), menu.is_visible)
    wait_until(lambda: "#3" in (menu.input_value() or ""), timeout=30, what="the new checkpoints in the menu")
    menu.click()
    page.get_by_role("option", name="#1 ").click()
    wait_until(lambda: (menu.input_value() or "").startswith("#1 "), timeout=30)
    (sid,) = manager.sessions()
    wait_until(lambda: page.server.pages.get(sid).checkpoint_pick == 1, timeout=30, what="the pick to reach the server")
    runner.checkpoint_now()  # a new checkpoint arrives (the runner adds one every 10 s)
    wait_until(lambda: any(i.index == 4 for i in runner.checkpoints.list()))
    menu.click()  # the open menu lists the new checkpoint once the page has it
    wait_until(lambda: page.get_by_role("option", name="#4 ").count() == 1, timeout=30, what="#4 in the menu")
    page.keyboard.press("Escape")
    assert (menu.input_value() or "").startswith("#1 "), menu.input_value()
    page.get_by_role("button", name="Rewind to checkpoint").click()
    picked = runner.checkpoints.get(1).step
    wait_until(lambda: f"Rewound to step {picked:,}" in status(page), timeout=20)


def test_teacher_mode_hides_the_ab_learning_rates_too(app_page):
    page, manager = app_page
    page.goto(page.url_base + "?hide=g_lr,d_lr")
    wait_until(lambda: page.get_by_label("number input for D steps per G step (k)").count() == 1, timeout=20)
    # The page first renders every control, then the link's hide list arrives with the page-load event.
    wait_until(lambda: page.get_by_label("number input for G learning rate (log10)").count() == 0, timeout=20,
               what="the link's hidden controls to disappear")
    until(lambda: page.get_by_text("A/B compare: run a second GAN beside this one").click(),
          lambda: page.get_by_label("number input for B: D steps per G step (k)").is_visible())
    for label in ("G learning rate (log10)", "D learning rate (log10)",
                  "B: G learning rate (log10)", "B: D learning rate (log10)"):
        assert page.get_by_label(f"number input for {label}").count() == 0, label
