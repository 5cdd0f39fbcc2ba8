"""Bad input sent straight through the HTTP API (as a script or attacker would):
every call gets a clear error and the visitor's run is left as it was."""

from __future__ import annotations

import pytest

from app_support import running_app, wait_until

GOOD = ["ring8", "small", 64, 0, "nonsaturating", -3.0, -3.0, 1, 0.0, False, ""]


@pytest.fixture(scope="module")
def api():
    from gradio_client import Client

    with running_app() as (url, server):
        manager = server.manager
        client = Client(url, verbose=False)
        client.predict(*GOOD, api_name="/start")
        session = wait_until(lambda: manager.get(client.session_hash))
        client.predict(api_name="/pause")
        wait_until(lambda: session.runner.state() == "paused")
        yield client, session


def choice(value: str) -> str:
    """Gradio's own message for a value outside a dropdown's or radio's choices."""
    return f"{value}'? .*is not in the list of choices"


def _with(index: int, value) -> list:
    args = list(GOOD)
    args[index] = value
    return args


@pytest.mark.parametrize("args, message", [
    (_with(0, "imagenet"), choice("imagenet")),
    (_with(1, "huge"), choice("huge")),
    (_with(2, 5000), "maximum"),
    (_with(2, 3), "minimum"),
    (["grid25", *_with(2, 17)[1:]], "multiple of pack"),
    (_with(3, -1), "minimum"),
    (_with(4, "no-such-loss"), choice("no-such-loss")),
    (_with(5, 3.0), "maximum"),
    (_with(7, 99), "maximum"),
    (_with(8, 0.9), "maximum"),
    (_with(10, "no-such-lesson"), choice("no-such-lesson")),
])
def test_bad_start_values_are_rejected_and_the_run_survives(api, args, message):
    client, session = api
    runner, step = session.runner, session.runner.snapshot().step
    with pytest.raises(Exception, match=f"(?i){message}"):
        client.predict(*args, api_name="/start")
    assert session.runner is runner and runner.snapshot().step == step and runner.state() == "paused"


@pytest.mark.parametrize("args, message", [
    (["nonsaturating", -3.0, -3.0, 0, 0.0, False], "minimum"),
    (["nonsaturating", -30.0, -3.0, 1, 0.0, False], "minimum"),
    (["made-up", -3.0, -3.0, 1, 0.0, False], choice("made-up")),
    (["nonsaturating", -3.0, -3.0, 1, -0.1, False], "minimum"),
])
def test_bad_live_values_are_rejected(api, args, message):
    client, session = api
    before = session.runner.config
    with pytest.raises(Exception, match=f"(?i){message}"):
        client.predict(*args, api_name="/set_live")
    assert session.runner.config == before


def test_bad_files_and_indices_are_rejected(api, tmp_path):
    from gradio_client import handle_file

    client, session = api
    runner = session.runner
    csv = tmp_path / "points.csv"
    csv.write_text("x,y\n1,2\n3,nan\n")
    with pytest.raises(Exception, match="(?i)finite"):
        client.predict(handle_file(str(csv)), api_name="/upload_csv")
    junk = tmp_path / "run.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(Exception, match="(?i)cannot load"):
        client.predict(handle_file(str(junk)), api_name="/load")
    with pytest.raises(Exception, match=choice("123456")):
        client.predict(123456, api_name="/rewind")
    assert session.runner is runner
