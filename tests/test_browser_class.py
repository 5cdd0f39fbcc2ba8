"""A class in a real browser: one teacher's class view (Debian's chromium via Playwright) and a
class of students — six simulated with gradio_client and one more in the browser on the student
link. The class view shows them all live; *Push* restarts every student's run on the lesson (and
the browser student's controls follow); *Assign* gives each student a distinct value and the
outcome plot one point per student. A screenshot of the class view at 1280×720 goes to
test-artifacts/ (the README's is docs/classview.png, taken from it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app_support import SETUP, running_app, until, wait_until
from classroom.controls import Controls
from classroom.presets import PRESETS

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
NAMES = ["Ada", "<script>alert(1)</script>", "**Grace** _Hopper_", "Alan", "Emmy", "Kurt"]

CARDS_JS = """() => Array.from(document.querySelectorAll('.gan-card')).map(c => ({
  n: c.dataset.n, name: c.querySelector('.name').textContent, name_nodes: c.querySelector('.name').childElementCount,
  state: c.querySelector('.state').textContent, thumb: (c.querySelector('img').src || '').slice(0, 22)}))"""
OUTCOME_JS = """() => { const d = document.querySelector('#outcome-plot .js-plotly-plot');
  return d && d.data ? d.data.map(t => (t.x || []).length) : null; }"""


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).click()
    page.locator(f'li[role=option][aria-label="{option}"]').click()  # Gradio's menu (not the grid's <select>)


@pytest.fixture
def class_app():
    with running_app(max_active=100) as (url, server):  # trainer processes, as the server runs them; all train
        yield url, server
        server.manager.release_all()


def test_a_teacher_sees_the_class_live_pushes_a_lesson_and_assigns_an_experiment(class_app, open_page):
    from gradio_client import Client

    url, server = class_app
    manager = server.manager
    teacher = open_page(url, 1280, 720)
    until(lambda: teacher.get_by_text("Teach a class").click(),
          lambda: teacher.get_by_role("button", name="Start a class").is_visible())
    teacher.get_by_role("button", name="Start a class").click()
    links = teacher.locator("#class-links")
    wait_until(lambda: "#key=" in links.inner_text(), timeout=30, what="the class links")
    text = links.inner_text()
    student_link = re.search(r"(http\S+\?class=[\w-]+)", text)[1]
    teacher_link = re.search(r"(http\S+/class\?class=[\w-]+#key=[\w-]+)", text)[1]
    code = student_link.rsplit("=", 1)[1]
    assert "#key=" not in student_link

    students = []
    for i, name in enumerate(NAMES):
        client = Client(url, verbose=False)
        client.predict(api_name="/open_page")
        client.predict(code, name, api_name="/join_class")
        client.predict(*SETUP[:3], i, *SETUP[4:], api_name="/start")
        students.append(client)
    learner = open_page(student_link, 1280, 720)  # the seventh, in the browser
    wait_until(lambda: learner.get_by_label("Your name in the class (optional; your teacher sees it)").is_visible(),
               timeout=60, what="the student's class box")
    name_box = learner.get_by_label("Your name in the class (optional; your teacher sees it)")
    name_box.fill("Browser")
    name_box.press("Enter")
    learner.get_by_role("button", name="Start", exact=True).click()
    sids = [c.session_hash for c in students]

    teacher.goto(teacher_link)
    cards = lambda: teacher.evaluate(CARDS_JS)
    wait_until(lambda: len(cards()) == 7 and all(c["thumb"].startswith("data:image/png") for c in cards()),
               timeout=90, what="seven cards with thumbnails")
    shown = {c["name"]: c for c in cards()}
    assert set(shown) == {*NAMES, "Browser"}, "names shown as typed, as text"
    assert all(c["name_nodes"] == 0 for c in cards()) and teacher.locator(".gan-cards script").count() == 0
    first = {c["n"]: c["state"] for c in cards()}
    wait_until(lambda: sum(c["state"] != first[c["n"]] for c in cards()) >= 6, timeout=30,
               what="the class view is live (steps move)")

    # Push a lesson: every student's run starts afresh on it.
    run_of = lambda sid: getattr(manager.sessions().get(sid), "runner", None)  # None while being replaced
    old = {sid: run_of(sid) for sid in sids}
    lesson = Controls.for_lesson("mode_collapse")
    choose(teacher, "Lesson to push", PRESETS["mode_collapse"].title)
    push_d_lr = teacher.get_by_label("number input for D learning rate (log10)")
    wait_until(lambda: abs(float(push_d_lr.input_value()) - lesson.d_lr_log10) < 1e-6, timeout=30,
               what="the push form shows the lesson's settings")
    teacher.get_by_role("button", name="Push to every student (fresh runs)").click()
    preset = PRESETS["mode_collapse"].config
    # The page's setup is written just after its new run is made: wait for both, not the run alone.
    wait_until(lambda: all(run_of(s) not in (None, old[s]) and run_of(s).config == preset
                           and server.pages.get(s).setup["lesson"] == "mode_collapse" for s in sids),
               timeout=60, what="every run restarted on the lesson, its page's setup on the lesson")
    wait_until(lambda: "Your teacher pushed" in learner.locator("#status").inner_text(), timeout=60)
    d_lr = learner.get_by_label("number input for D learning rate (log10)")
    wait_until(lambda: learner.get_by_label("Lesson", exact=True).input_value() == PRESETS["mode_collapse"].title
               and abs(float(d_lr.input_value()) - lesson.d_lr_log10) < 1e-6, timeout=60,
               what="the student's controls show the lesson")

    # The class experiment: D's learning rate over 1e-4 … 1e-2, one value per student.
    teacher.get_by_role("button", name="Assign (fresh runs)").click()
    runs = lambda: [s.runner for sid, s in manager.sessions().items() if not sid.endswith("/B")]
    spread = {float(f"{1e-4 * 100 ** (i / 6):.2g}") for i in range(7)}  # log-spaced, two digits
    wait_until(lambda: sorted(r.config.d_lr for r in runs()) == sorted(spread), timeout=60,
               what="seven distinct D learning rates over 1e-4 … 1e-2")
    wait_until(lambda: (teacher.evaluate(OUTCOME_JS) or [0])[0] == 7, timeout=90,
               what="one point per student on the outcome plot (modes covered)")
    assert all(teacher.locator(f".gan-card[data-n='{c['n']}'] .value").inner_text().startswith("assigned: ")
               for c in cards())
    ARTIFACTS.mkdir(exist_ok=True)
    teacher.evaluate("window.scrollTo(0, 0)")
    teacher.wait_for_timeout(4000)  # a few seconds of training into the experiment
    teacher.screenshot(path=str(ARTIFACTS / "classview_1280x720.png"))

    # Sort and filter in the page.
    teacher.locator("select.gan-sort").select_option("-modes")
    modes = lambda: [int(t.split("/")[0]) for t in teacher.locator(".gan-card .outcome").all_inner_texts()]
    wait_until(lambda: len(modes()) == 7 and modes() == sorted(modes(), reverse=True), timeout=10,
               what="cards sorted by modes covered, most first")
    teacher.locator("select.gan-filter").select_option("alert")
    teacher.wait_for_timeout(500)
    assert all(t.strip() for t in teacher.locator(".gan-card .alert").all_inner_texts()), "only alerts shown"
    teacher.locator("select.gan-filter").select_option("all")
    wait_until(lambda: teacher.locator(".gan-card").count() == 7, timeout=10)

    # Hide controls for the class: the browser student's page hides them.
    until(lambda: teacher.get_by_text("Hide controls from the students").click(),
          lambda: teacher.get_by_label("G learning rate", exact=True).is_visible())
    teacher.get_by_label("G learning rate", exact=True).check()
    teacher.get_by_role("button", name="Apply to the class").click()
    wait_until(lambda: learner.get_by_label("number input for G learning rate (log10)").count() == 0, timeout=60,
               what="the hidden control gone from the student's page")
    assert learner.get_by_label("number input for D learning rate (log10)").count() == 1

    # Project one student's run: the live channel's figures, full size.
    teacher.locator(".gan-card").first.click()
    wait_until(lambda: "step" in teacher.locator(".gan-watch-status").inner_text(), timeout=30,
               what="the projected run's status line")
    wait_until(lambda: teacher.evaluate("""() => { const d = document.querySelector('#watch-samples .js-plotly-plot');
        return d && d.data && d.data.length > 1; }"""), timeout=30, what="the projected samples plot")
    teacher.screenshot(path=str(ARTIFACTS / "classview_projected_1280x720.png"))
    teacher.keyboard.press("Escape")
    for client in students:
        client.close()
