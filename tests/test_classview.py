"""A class, end to end on the server: the teacher's class view, pushing, pausing, hiding, the class
experiment, projecting one student; then over HTTP (gradio_client and plain requests), what a
student with only the student link can and cannot reach."""

from __future__ import annotations

import csv
import json
import re

import gradio as gr
import httpx
import pytest

from app_support import SETUP, controls, frame, req, running_app, wait_until
from classroom import classview, live
from classroom.classbuttons import NOT_TEACHER
from classroom.classes import CLASS_IDLE_S, ClassRegistry
from classroom.controls import Controls
from classroom.presets import PRESETS

LIVE = ["nonsaturating", -3.0, -3.0, 1, 0.0, False]
FORM = ["", "nonsaturating", -3.0, -3.0, 1, 0.0]  # the push form: lesson, loss, G lr, D lr, k, smoothing


def links(text: str) -> tuple[str, str]:
    """(class code, teacher key) from Start a class's links."""
    return re.search(r"\?class=([\w-]+)`", text)[1], re.search(r"#key=([\w-]+)`", text)[1]


def a_class(page, students=("s1", "s2", "s3"), start=True) -> tuple[str, str, str]:
    """A class on `page` with a teacher page open ("teacher") and `students` joined (and training):
    (code, key, the teacher page's view token)."""
    code, key = links(page.class_buttons.start_class(request=req("creator")))
    token, _ = page.class_buttons.open_view(code, key, request=req("teacher"))
    for i, sid in enumerate(students):
        page.pages.get(sid)  # the student's page is open
        page.class_buttons.join(code, f"Student {i}", request=req(sid))
        if start:
            page.buttons.start(controls(seed=i), request=req(sid))
    return code, key, token


def poll(page, token, since=""):
    status, body, interval = page.class_view.poll(token, since)
    return status, (json.loads(body) if body else None), interval


def test_the_class_view_shows_every_student_with_a_thumbnail_drawn_once_per_version(make_page, monkeypatch):
    page = make_page(max_active=3)
    drawn = []
    real = live.thumbnail_png  # drawn where the run trains: here, on threads (make_page's default)
    monkeypatch.setattr(live, "thumbnail_png", lambda *a, **k: drawn.append(1) or real(*a, **k))
    code, key, token = a_class(page)
    wait_until(lambda: all(page.manager.get(s).runner.snapshot().step > 20 for s in ("s1", "s2", "s3")))
    page.class_buttons.pause_all(request=req("teacher"))
    wait_until(lambda: all(page.manager.get(s).runner.state() == "paused" for s in ("s1", "s2", "s3")))
    status, first, interval = poll(page, token)
    assert status == 200 and interval <= 2.0, "the class view refreshes at least every 2 s"
    students = first["students"]
    assert [s["n"] for s in students] == [1, 2, 3] and [s["name"] for s in students] == ["Student 0", "Student 1",
                                                                                        "Student 2"]
    assert all(s["state"] == "paused" and s["step"] > 20 and s["loss"] == "nonsaturating" for s in students)
    assert all(s["n_modes"] == 8 and 0 <= s["modes"] <= 8 and s["d_lr"] == 1e-3 and s["k"] == 1 for s in students)
    assert {f"thumb:{n}" for n in (1, 2, 3)} <= set(first["parts"])
    assert all(first["parts"][f"thumb:{n}"].startswith("data:image/png;base64,") for n in (1, 2, 3))
    assert "3 students" in first["parts"]["summary"] and "3 paused" in first["parts"]["summary"]
    shown = json.dumps([first["students"], first["parts"]["summary"]])
    assert not any(sid in shown for sid in ("s1", "s2", "s3", "teacher")), "no session id is shown"
    count = len(drawn)
    assert poll(page, token, first["key"])[0] == 204, "nothing new: nothing built, nothing sent"
    second, _ = page.class_buttons.open_view(code, key, request=req("teacher-2"))
    for view in (token, token, second):  # a page that reloads, and a second teacher page, get the same thumbnails
        again = poll(page, view)[1]
        assert again["parts"]["thumb:1"] == first["parts"]["thumb:1"]
    assert len(drawn) == count == 3, "each thumbnail drawn once per run version, shared by every viewer"


def test_a_card_older_than_its_run_is_sent_again_not_answered_204(make_page, monkeypatch):
    """Cards of training runs are rebuilt at most every CARD_S: one built just before its run paused
    shows "running" until rebuilt, so the view is not told "nothing new" meanwhile."""
    page = make_page(max_active=1)
    monkeypatch.setattr(classview, "CARD_S", 3600.0)
    code, key, token = a_class(page, students=("s1",))
    wait_until(lambda: page.manager.get("s1").runner.snapshot().step > 20)
    status, first, _ = poll(page, token)
    assert first["students"][0]["state"] == "running"
    page.class_buttons.pause_all(request=req("teacher"))
    wait_until(lambda: page.manager.get("s1").runner.state() == "paused")
    key_now = poll(page, token, first["key"])[1]["key"]  # the card is still the running one
    assert poll(page, token, key_now)[0] == 200, "the old card is not hidden behind a 204"


def test_push_restarts_every_student_on_the_lesson_and_their_page_follows(make_page):
    page = make_page(max_active=3)
    code, key, token = a_class(page)
    old = {sid: page.manager.get(sid).runner for sid in ("s1", "s2", "s3")}
    preset = PRESETS["mode_collapse"]
    lesson = Controls.for_lesson("mode_collapse")
    said = page.class_buttons.push("mode_collapse", lesson.loss, lesson.g_lr_log10, lesson.d_lr_log10,
                                   lesson.n_critic, lesson.label_smoothing, request=req("teacher"))
    assert "3 students" in said
    for sid in ("s1", "s2", "s3"):
        runner = page.manager.get(sid).runner
        assert runner is not old[sid] and runner.config == preset.config, "a fresh run on the lesson"
        assert page.pages.get(sid).setup["lesson"] == "mode_collapse"
        payload = frame(page, sid)
        assert "Your teacher pushed" in payload["parts"]["status"] and payload["sync"], "the page is told to sync"
        out = page.sync(req(sid))
        values = [u["value"] for u in out[4:15]]
        assert Controls(*values) == Controls.of(preset.config, "mode_collapse"), "the controls show the lesson"
        assert preset.watch in out[15]["value"], "and its text"
        assert page.sync(req(sid))[4] == gr.skip(), "once"
    started = lambda sid: page.manager.get(sid).runner.state() == "running" or page.manager.queue_position(sid) > 0
    # A run shows "running" once its first chunk of steps is done, on its trainer's thread.
    wait_until(lambda: all(started(sid) for sid in ("s1", "s2", "s3")), what="each started (or waits for a free slot)")
    page.class_buttons.pause_all(request=req("teacher"))


def test_pause_all_and_resume_all(make_page):
    page = make_page(max_active=3)
    code, key, token = a_class(page)
    page.class_buttons.pause_all(request=req("teacher"))
    wait_until(lambda: all(page.manager.get(s).runner.state() == "paused" for s in ("s1", "s2", "s3")))
    assert "Your teacher paused the class" in frame(page, "s2")["parts"]["status"]
    page.class_buttons.resume_all(request=req("teacher"))
    wait_until(lambda: all(page.manager.get(s).runner.state() == "running" for s in ("s1", "s2", "s3")))
    page.class_buttons.pause_all(request=req("teacher"))


def test_hidden_controls_are_enforced_on_the_server(make_page):
    page = make_page(max_active=1)
    code, key, token = a_class(page, students=("s1",))
    page.class_buttons.hide(["g_lr", "d_lr", "lesson", "dataset"], request=req("teacher"))
    runner = page.manager.get("s1").runner
    out = page.sync(req("s1"))
    visible = {key: u["visible"] for key, u in zip(("dataset", "size", "batch", "seed", "loss", "g_lr", "d_lr", "k",
                                                     "smoothing", "two_sided", "lesson"), out[4:15])}
    assert not visible["g_lr"] and not visible["d_lr"] and not visible["dataset"] and visible["k"]
    live = page.with_live(page.buttons.live_change)
    with pytest.warns(UserWarning, match="your change to it was not applied"):
        live("nonsaturating", -3.0, -1.5, 3, 0.1, False, req("s1"))
    config = page.manager.get("s1").runner.config
    assert config.d_lr == 1e-3 and config.n_critic == 3 and config.label_smoothing == 0.1, "only visible ones moved"
    start = page.with_controls(page.buttons.start)
    with pytest.warns(UserWarning):
        start("grid25", "small", 64, 0, "nonsaturating", -2.0, -2.0, 1, 0.0, False, "mode_collapse", req("s1"))
    assert page.manager.get("s1").runner.config.dataset == "ring8" and page.manager.get("s1").runner.config.g_lr == 1e-3
    with pytest.raises(gr.Error, match="Your teacher set the lesson"):
        page.buttons.choose_lesson("strong_d", request=req("s1"))
    compare = page.compare_handler()
    with pytest.warns(UserWarning):
        compare(*SETUP[:5], -2.0, *SETUP[6:], "hinge", -1.5, -1.5, 2, 0.0, req("s1"))
    b = page.manager.get("s1" + "/B").runner.config
    assert b.g_lr == 1e-3 and b.d_lr == 1e-3 and b.loss == "hinge", "B keeps the hidden values too"
    page.class_buttons.hide([], request=req("teacher"))
    live("nonsaturating", -3.0, -2.0, 1, 0.0, False, req("s1"))
    assert page.manager.get("s1").runner.config.d_lr == 1e-2, "shown again: the student's own"
    assert runner is not None


def test_assign_gives_each_student_a_value_and_the_outcome_plot_a_point_each(make_page):
    page = make_page(max_active=3)
    code, key, token = a_class(page)
    said = page.class_buttons.assign(*FORM, "d_lr", 1e-4, 1e-2, [], request=req("teacher"))
    assert "3 students" in said and "D learning rate" in said
    lrs = [page.manager.get(sid).runner.config.d_lr for sid in ("s1", "s2", "s3")]
    assert lrs == [1e-4, 1e-3, 1e-2]
    assert "assigned you D learning rate = 1.0e-3" in frame(page, "s2")["parts"]["status"]
    wait_until(lambda: all(s.get("modes") is not None for s in poll(page, token)[1]["students"]))
    payload = poll(page, token)[1]
    assert [s["value"] for s in payload["students"]] == ["1.0e-4", "1.0e-3", "1.0e-2"]
    outcome = payload["parts"]["outcome"]
    modes = outcome["data"][0]
    assert sorted(modes["x"]) == lrs and len(modes["y"]) == 3 and modes["text"] == ["#1", "#2", "#3"]
    assert outcome["layout"]["xaxis"]["type"] == "log" and len(outcome["data"]) == 4
    with pytest.raises(gr.Error, match="within"):
        page.class_buttons.assign(*FORM, "n_critic", 0, 50, [], request=req("teacher"))
    page.class_buttons.assign(*FORM, "loss", 0, 0, ["minimax", "hinge"], request=req("teacher"))
    assert [page.manager.get(s).runner.config.loss for s in ("s1", "s2", "s3")] == ["minimax", "hinge", "minimax"]
    path = page.class_buttons.export_csv(request=req("teacher"))["value"]
    rows = list(csv.DictReader(open(path)))
    assert [r["student"] for r in rows] == ["1", "2", "3"] and rows[1]["value"] == "hinge"
    assert rows[0]["name"] == "Student 0" and rows[0]["parameter"] == "loss"
    page.class_buttons.pause_all(request=req("teacher"))


def test_a_teacher_watches_only_students_of_their_own_class(make_page):
    page = make_page(max_active=2)
    code, key, token = a_class(page, students=("s1",))
    other_code, other_key = links(page.class_buttons.start_class(request=req("creator-2")))
    other_token, _ = page.class_buttons.open_view(other_code, other_key, request=req("teacher-2"))
    page.pages.get("s2")
    page.class_buttons.join(other_code, "", request=req("s2"))
    page.buttons.start(controls(), request=req("s2"))
    status, body, _ = page.class_view.watch(token, 1)
    parts = json.loads(body)["parts"]
    assert status == 200 and {"samples", "d_hist", "losses", "coverage", "status"} <= set(parts)
    assert page.class_view.watch(other_token, 1)[0] == 200  # their own student #1 (s2)
    assert page.class_view.watch(token, 2)[0] == 404 and page.class_view.watch(token, -1)[0] == 404
    assert page.class_view.watch(page.pages.get("s1").token, 1)[0] == 404, "a student's live token is not a view"
    with pytest.raises(gr.Error, match="Only this class's teacher"):
        page.class_buttons.push(*FORM, request=req("s1"))
    page.class_buttons.pause_all(request=req("teacher-2"))
    assert page.manager.get("s1").runner.state() == "running", "the other teacher's Pause all left this class alone"
    page.class_buttons.pause_all(request=req("teacher"))


def test_a_class_idle_for_two_hours_closes_and_frees_its_runs(make_page):
    from classroom.page import Page

    now = [0.0]
    page = make_page(max_active=2)
    page = Page(page.manager, classes=ClassRegistry(clock=lambda: now[0]))
    code, key, token = a_class(page, students=("s1", "s2"), start=False)
    page.buttons.start(controls(), request=req("s1"))
    page.pages.forget("s2")  # a page gone without its unload event: that student leaves the class
    page.sweep_classes()
    assert page.manager.get("s1") is not None and [m.number for _, m in page.classes.members(code)] == [1]
    page.pages.peek("s1").last_seen -= 600  # still known, but not polled for a while
    now[0] += CLASS_IDLE_S + 1
    page.sweep_classes()
    assert page.manager.get("s1") is None, "the class's runs are freed"
    assert page.classes.classes() == [] and poll(page, token)[0] == 404


# --- over HTTP: a student with only the student link ---------------------------------------------


@pytest.fixture(scope="module")
def app():
    with running_app(max_active=3, processes=0) as (url, server):
        yield url, server


def test_a_student_cannot_reach_the_class_view_or_act_on_the_class(app):
    from gradio_client import Client

    url, server = app
    teacher, student, other = (Client(url, verbose=False) for _ in range(3))
    code, key = links(teacher.predict(api_name="/start_class"))
    token, student_link = teacher.predict(code, key, api_name="/open_class_view")
    assert student_link.endswith(f"?class={code}") and key not in student_link
    tokens = {}
    for name, client in (("student", student), ("other", other)):
        tokens[name] = client.predict(api_name="/open_page")[-1]
        client.predict(code, name, api_name="/join_class")
        client.predict(*SETUP, api_name="/start")
    victim = wait_until(lambda: server.manager.get(other.session_hash))
    config = victim.runner.config
    for code_, key_ in ((code, ""), (code, key[:-1] + "x"), ("", key), (code, code), ("x" * 5000, key)):
        with pytest.raises(Exception, match="teacher link"):
            student.predict(code_, key_, api_name="/open_class_view")
    for api, args in (("/push_class", FORM), ("/pause_class", []), ("/resume_class", []),
                      ("/assign", [*FORM, "d_lr", 1e-4, 1e-2, []]), ("/hide_class", [["g_lr"]]),
                      ("/export_class", [])):
        with pytest.raises(Exception, match=re.escape(NOT_TEACHER[:40])):
            student.predict(*args, api_name=api)
    for guess in (tokens["student"], tokens["other"], code, key, student.session_hash, token[:-1]):
        assert httpx.get(f"{url}gan/class/{guess}", timeout=10).status_code == 404
        assert httpx.get(f"{url}gan/class/{guess}/watch/1", timeout=10).status_code == 404
    assert victim.runner is server.manager.get(other.session_hash).runner and victim.runner.config == config
    assert victim.runner.state() == "running", "nothing a student sent touched another student's run"
    view = httpx.get(f"{url}gan/class/{token}", timeout=10).json()
    assert [s["name"] for s in view["students"]] == ["student", "other"]
    assert httpx.get(f"{url}gan/class/{token}/watch/2", timeout=10).status_code == 200
    for number in ("²", "٣", "9999999", "0x2", "-1"):  # not a student's number: refused, not a server error
        assert httpx.get(f"{url}gan/class/{token}/watch/{number}", timeout=10).status_code == 404
    # The teacher's own refusals are clear too.
    with pytest.raises(Exception, match="low to a higher"):
        teacher.predict(*FORM, "d_lr", 1e-2, 1e-4, [], api_name="/assign")
    for client in (teacher, student, other):
        client.close()
    server.manager.release_all()


def test_a_display_name_reaches_the_teacher_as_plain_text(app):
    from gradio_client import Client

    url, server = app
    teacher, student = Client(url, verbose=False), Client(url, verbose=False)
    code, key = links(teacher.predict(api_name="/start_class"))
    token, _ = teacher.predict(code, key, api_name="/open_class_view")
    student.predict(api_name="/open_page")
    name = "<script>alert(1)</script> **bold** [x](javascript:alert(1))"
    note = student.predict(code, name, api_name="/join_class")
    assert "<script" not in note and "**bold**" not in note, "the student's own note does not echo the name"
    view = httpx.get(f"{url}gan/class/{token}", timeout=10).json()
    assert view["students"][0]["name"] == name[:40], "kept as text (the page writes it with textContent)"
    student.predict(*SETUP, api_name="/start")
    teacher.predict(*FORM, "d_lr", 1e-4, 1e-2, [], api_name="/assign")
    outcome = wait_until(lambda: httpx.get(f"{url}gan/class/{token}", timeout=10).json()["parts"]["outcome"])
    hover = " ".join(t for trace in outcome["data"] for t in trace.get("hovertext", []))
    assert "<script" not in hover and "&lt;script&gt;" in hover, "plotly's text is escaped"
    for client in (teacher, student):
        client.close()
    server.manager.release_all()
