"""A hostile visitor against every named API endpoint: files on the server, links out of the
upload cache, absurd values, wrong types, HTML where text goes, another visitor's identifiers.

Each gets a refusal (Gradio's own, or the app's with a message saying what to do), the server
keeps serving, and no file outside Gradio's upload cache is ever opened: the app runs in this
process with `open`/`os.open`/`os.stat` watched for the secret folder the test creates.
Raw HTTP (`/gradio_api/call/<name>`) is what a remote attacker sends: gradio_client would
upload a local path itself, so it cannot name a path on the server.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import threading

import gradio as gr
import httpx
import numpy as np
import pytest

from app_support import SETUP, req, running_app, wait_until


class OpenWatch:
    """Records every open/stat of a path under `folder` (the secret files) or of one of `also`
    (links to them), from any thread. Paths are compared as written (`abspath` touches no disk)."""

    def __init__(self, folder: str, also: tuple[str, ...] = ()) -> None:
        self.watched = (os.path.realpath(folder), os.path.abspath(folder))
        self.also = {os.path.abspath(p) for p in also}
        self.touched: list[str] = []  # opened or stat()ed
        self.opened: list[str] = []
        self._lock = threading.Lock()

    def _note(self, path, opening: bool) -> None:
        if isinstance(path, (str, bytes, os.PathLike)):
            text = os.path.abspath(os.fsdecode(os.fspath(path)))
            if text.startswith(self.watched) or text in self.also:
                with self._lock:
                    self.touched.append(text)
                    if opening:
                        self.opened.append(text)

    def install(self, monkeypatch) -> None:
        for module, name in ((builtins, "open"), (io, "open"), (os, "open"), (os, "stat"), (os, "lstat")):
            real = getattr(module, name)

            def watched(path, *args, _real=real, _name=name, **kwargs):
                self._note(path, opening=_name == "open")
                return _real(path, *args, **kwargs)

            monkeypatch.setattr(module, name, watched)


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    """A folder outside the upload cache with a numeric CSV and a .safetensors file in it."""
    folder = tmp_path_factory.mktemp("secret")
    (folder / "points.csv").write_text("x,y\n" + "\n".join(f"{i % 7},{i % 5}" for i in range(200)))
    (folder / "run.safetensors").write_bytes(b"\x00" * 2000)
    return folder


@pytest.fixture(scope="module")
def app(secret):
    with running_app(processes=0) as (url, server):
        yield url, server.manager


def call(url: str, name: str, data: list, session: str = "attacker") -> tuple[bool, str]:
    """One event through Gradio's HTTP API: (succeeded, the error message or the output's JSON)."""
    body = json.dumps({"data": data, "session_hash": session})  # NaN and Infinity as Python writes them
    response = httpx.post(f"{url}gradio_api/call/{name}", content=body, headers={"content-type": "application/json"},
                          timeout=30)
    if response.status_code != 200:
        return False, response.text
    event = response.json()["event_id"]
    kind, payload = "", ""
    with httpx.stream("GET", f"{url}gradio_api/call/{name}/{event}", timeout=60) as stream:
        for line in stream.iter_lines():  # until the event's outcome ("heartbeat"s may come first)
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in ("complete", "error"):
                payload = line[6:]
                break
    if kind == "error":
        message = (json.loads(payload) or {}).get("error") if payload.strip() not in ("", "null") else None
        return False, message or ""
    return True, payload


def serving(url: str) -> bool:
    ok, _ = call(url, "server_stats", [], session="operator")
    return ok


def file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def endpoints_taking_a_file(path: str) -> list[tuple[str, list]]:
    picture = file_data(path)
    return [("upload_csv", [file_data(path)]), ("load", [file_data(path)]),
            ("use_drawing", [{"background": None, "layers": [picture], "composite": picture}])]


def server_paths(secret) -> list[str]:
    return [str(secret / "points.csv"), str(secret / "run.safetensors"), "/proc/self/environ", "/etc/passwd",
            os.path.relpath(secret / "points.csv"), "../" * 12 + str(secret / "points.csv").lstrip("/")]


def test_no_endpoint_reads_a_path_on_the_server(app, secret, monkeypatch):
    url, manager = app
    watch = OpenWatch(str(secret))
    watch.install(monkeypatch)
    for path in server_paths(secret):
        for name, data in endpoints_taking_a_file(path):
            ok, message = call(url, name, data)
            assert not ok, f"/{name} accepted {path}"
    assert serving(url)
    assert not watch.opened, f"opened on the server: {watch.opened}"
    session = manager.get("attacker")
    assert session is None or session.runner.config.dataset != "csv", "a run started on the server's file"


def test_a_link_inside_the_upload_cache_pointing_out_is_refused(app, secret, monkeypatch):
    """Gradio passes a link inside its cache; the app refuses it before reading through it."""
    url, manager = app
    from classroom.uploads import upload_root

    folder = upload_root() / ("0" * 64)
    folder.mkdir(parents=True, exist_ok=True)
    links = {}
    for name in ("points.csv", "run.safetensors"):
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(secret / name)
        links[name] = str(link)
    watch = OpenWatch(str(secret), also=tuple(links.values()))
    watch.install(monkeypatch)
    for name, data in (("upload_csv", [file_data(links["points.csv"])]),
                       ("load", [file_data(links["run.safetensors"])])):
        ok, message = call(url, name, data)
        assert not ok, f"/{name} read through a link out of the cache"
        if message:
            assert "link" in message or "not uploaded" in message or "not a file" in message, message
    assert serving(url)
    assert not [p for p in watch.opened if p in links.values() or p.startswith(watch.watched)], \
        f"read through a link: {watch.opened}"


@pytest.mark.parametrize("value", [
    "/etc/passwd", "../../../../etc/passwd", "/proc/self/environ", "", "x" * 10_000, "a\x00b", 42, None,
    {"path": None}, ["/etc/passwd"],
])
def test_the_upload_gate_refuses_before_touching_the_disk(secret, monkeypatch, value):
    """Handlers called directly (as when the app is served without Gradio's own path check)."""
    from classroom.uploads import read_visitor_file

    watch = OpenWatch(str(secret))
    watch.install(monkeypatch)
    for target in (value, str(secret / "points.csv")):
        with pytest.raises(gr.Error) as refused:
            read_visitor_file(target, what="The CSV file", max_bytes=1000)
        assert "upload" in refused.value.message
    assert not watch.touched


def test_every_file_handler_refuses_server_paths_with_a_message(make_page, secret, monkeypatch):
    page = make_page()
    watch = OpenWatch(str(secret))
    watch.install(monkeypatch)
    csv = str(secret / "points.csv")
    buttons = page.buttons
    for act in (lambda: buttons.upload_csv(csv, request=req("a")),
                lambda: buttons.load(str(secret / "run.safetensors"), request=req("a")),
                lambda: buttons.use_drawing({"background": None, "layers": [csv], "composite": csv}, request=req("a"))):
        with pytest.raises(gr.Error, match="not uploaded to this page"):
            act()
    assert not watch.touched
    assert page.manager.get("a") is None and page.pages.get("a").points is None


def test_an_upload_over_the_size_limit_is_refused_at_the_door(app):
    url, _ = app
    from classroom.uploads import MAX_UPLOAD_BYTES

    response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.csv", b"1,2\n" * (MAX_UPLOAD_BYTES // 4 + 1))},
                          timeout=60)
    assert response.status_code >= 400 and "size" in response.text.lower()
    assert serving(url)


HOSTILE = [  # (endpoint, arguments, what the refusal says)
    ("start", [*SETUP[:2], 10**9, *SETUP[3:]], "maximum"),
    ("start", [*SETUP[:3], -5, *SETUP[4:]], "minimum"),
    ("start", [*SETUP[:5], float("inf"), *SETUP[6:]], ""),
    ("start", ["<script>alert(1)</script>", *SETUP[1:]], "not in the list of choices"),
    ("start", [*SETUP[:10], "**bold** <img src=x onerror=alert(1)>"], "not in the list of choices"),
    ("start", ["ring8", "small", "sixty-four", *SETUP[3:]], ""),
    ("step", [*SETUP[:7], 10**6, *SETUP[8:]], "maximum"),
    ("step_d", [*SETUP[:8], 0.99, *SETUP[9:]], "maximum"),
    ("step_g", [*SETUP[:4], "x" * 100_000, *SETUP[5:]], "not in the list of choices"),
    ("reset", [*SETUP[:3], 2**40, *SETUP[4:]], "maximum"),
    ("set_live", ["nonsaturating", float("nan"), -3.0, 1, 0.0, False], ""),
    ("set_live", ["../../etc", -3.0, -3.0, 1, 0.0, False], "not in the list of choices"),
    ("set_speed", ["-1"], "not in the list of choices"),
    ("set_speed", [10**9], "not in the list of choices"),
    ("lesson", ["<script>x</script>"], "not in the list of choices"),
    ("rewind", [10**12], "not in the list of choices"),
    ("rewind", ["../0"], "not in the list of choices"),
    ("share_link", [*SETUP, ["g_lr", "<b>x</b>"]], "not in the list of choices"),
    ("start", list(SETUP[:10]), ""),
    ("upload_csv", ["not a file"], ""),
    ("start_compare", [*SETUP, "nonsaturating", 99.0, -3.0, 1, 0.0], "maximum"),
    # The class: a visitor who is not the class's teacher, and values no form sends.
    ("push_class", ["", "nonsaturating", -3.0, -3.0, 1, 0.0], "Only this class's teacher"),
    ("push_class", ["<script>x</script>", "nonsaturating", -3.0, -3.0, 1, 0.0], "not in the list of choices"),
    ("push_class", ["", "nonsaturating", 99.0, -3.0, 1, 0.0], "maximum"),
    ("pause_class", [], "Only this class's teacher"),
    ("resume_class", [], "Only this class's teacher"),
    ("assign", ["", "nonsaturating", -3.0, -3.0, 1, 0.0, "d_lr", 1e-4, 1e-2, []], "Only this class's teacher"),
    ("assign", ["", "nonsaturating", -3.0, -3.0, 1, 0.0, "<b>x</b>", 1e-4, 1e-2, []], "not in the list of choices"),
    ("hide_class", [["g_lr", "<b>x</b>"]], "not in the list of choices"),
    ("export_class", [], "Only this class's teacher"),
    ("open_class_view", ["x" * 10_000, "y" * 10_000], "teacher link"),
    ("open_class_view", ["../../etc/passwd", None], "teacher link"),
    ("join_class", ["<script>alert(1)</script>", "**x**"], "not open"),
]


@pytest.mark.parametrize("name, data, message", HOSTILE, ids=[f"{h[0]}-{i}" for i, h in enumerate(HOSTILE)])
def test_absurd_values_are_refused_and_the_server_keeps_serving(app, name, data, message):
    url, manager = app
    ok, error = call(url, name, data, session="absurd")
    assert not ok, f"/{name} accepted {data}"
    if message:
        assert message in (error or ""), error
    assert serving(url)


def test_another_visitors_checkpoint_or_run_is_out_of_reach(app):
    """Visitor B names A's checkpoint index and sends A's snapshot request: nothing of A's moves."""
    url, manager = app
    assert call(url, "start", list(SETUP), session="victim")[0]
    victim = wait_until(lambda: manager.get("victim"))
    wait_until(lambda: victim.runner.snapshot().step > 50)
    call(url, "pause", [], session="victim")
    wait_until(lambda: victim.runner.state() == "paused")
    index = victim.runner.checkpoint_now()
    step = victim.runner.snapshot().step
    ok, error = call(url, "rewind", [index], session="intruder")
    assert not ok and "not in the list of choices" in error
    for name in ("resume", "save", "timelapse", "apply_fix", "stop_compare"):
        call(url, name, [], session="intruder")
    try:
        assert victim.runner.snapshot().step == step and victim.runner.state() == "paused"
        assert manager.get("intruder") is None or manager.get("intruder").runner is not victim.runner
    finally:
        manager.release("victim")
        manager.release("intruder")


def test_html_in_a_share_link_reaches_the_page_as_text(make_page):
    """A crafted share link (?dataset=<img …>) is refused with an escaped message, never markup."""
    page = make_page()
    request = gr.Request(session_hash="a")
    request.query_params = {"dataset": "<img src=x onerror=alert(1)>", "batch": "<b>64</b>"}
    with pytest.warns(UserWarning) as warned:
        out = page.open(request)
    text = " ".join(str(w.message) for w in warned)
    assert "<img" not in text and "<b>" not in text and "&lt;" in text
    assert out[0]["value"] == "ring8", "the link's setup was ignored, the defaults kept"


def test_a_refusal_is_plain_text_and_bounded():
    from classroom.uploads import MAX_MESSAGE_CHARS, refusal

    error = refusal("<script>alert(1)</script> **bold** " + "x" * 5000)
    assert error.message.startswith("&lt;script&gt;") and len(error.message) <= MAX_MESSAGE_CHARS + 40
    assert np.char.count(error.message, "<") == 0


@pytest.mark.parametrize("token", ["", "victim", "x" * 10_000, "../../etc/passwd", "%00", "' OR 1=1 --"])
def test_the_live_channel_answers_only_a_pages_own_token(app, token):
    """Another visitor's session id, a guessed or absurd token: 404 and nothing else."""
    url, manager = app
    assert call(url, "start", list(SETUP), session="victim")[0]
    try:
        response = httpx.get(f"{url}gan/live/{token}", timeout=10)
        assert response.status_code == 404 or (token == "" and response.status_code in (404, 405))
        assert "step" not in response.text and "Running" not in response.text
    finally:
        manager.release("victim")


@pytest.fixture(scope="module")
def class_code(app):
    """A class on the app (its teacher never opens the view here): the student link's code."""
    ok, links = call(app[0], "start_class", [], session="creator")
    assert ok, links
    return json.loads(links)[0].split("?class=")[1].split("`")[0]


@pytest.mark.parametrize("guess", ["", "victim", "x" * 10_000, "../../etc/passwd", "%00", "live", "code"])
def test_the_class_view_answers_only_a_teachers_view_token(app, class_code, guess):
    """A student's session id or live token, the class code, a guessed or absurd token: 404 and
    nothing else, for the class and for a student's projected run."""
    url, manager = app
    code = class_code
    assert call(url, "join_class", [code, "victim"], session="victim")[0]
    assert call(url, "start", list(SETUP), session="victim")[0]
    ok, opened = call(url, "open_page", [], session="victim")
    guess = {"live": json.loads(opened)[-1], "code": code}.get(guess, guess)
    try:
        for path in (f"gan/class/{guess}", f"gan/class/{guess}/watch/1"):
            response = httpx.get(f"{url}{path}", timeout=10)
            assert response.status_code in (404, 405) if not guess else response.status_code == 404, path
            assert "step" not in response.text and "victim" not in response.text
    finally:
        manager.release("victim")


def test_a_page_gets_its_own_run_and_another_token_gets_nothing(make_page):
    from classroom.controls import Controls

    page = make_page(max_active=2)
    page.buttons.start(Controls(*SETUP), request=req("a"))
    page.buttons.start(Controls(*SETUP[:3], 7, *SETUP[4:]), request=req("b"))
    token_a, token_b = page.pages.get("a").token, page.pages.get("b").token
    assert token_a != token_b and len(token_a) >= 20 and "a" != token_a
    status, body, _ = page.live.poll(token_a, "")
    assert status == 200 and json.loads(body)["parts"]["status"]
    assert page.live.poll("a", "")[0] == 404, "a session id is not a token"
    assert page.live.poll(token_a[:-1], "")[0] == 404
    page.unload(req("a"))
    assert page.live.poll(token_a, "")[0] == 404, "a closed page's token is dead"
    assert page.live.poll(token_b, "")[0] == 200
