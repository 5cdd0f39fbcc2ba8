"""The class registry and the class experiment, as modules: codes and keys, the key's hash and its
constant-time check, the rate limit and the two-hour expiry on a fake clock, members and their
names, hidden controls, and values spread over a range."""

from __future__ import annotations

import base64
import hmac
import math

import numpy as np
import pytest

from classroom import classes as classes_module
from classroom.classes import (
    CLASS_IDLE_S, CLASSES_PER_CLIENT, CREATE_WINDOW_S, NAME_CHARS, ClassRefused, ClassRegistry, clean_name, pin,
)
from classroom.controls import Controls
from classroom.experiment import Experiment, ExperimentError, outcome_of, table_csv


@pytest.fixture
def clock():
    """A fake clock: `clock.now` is what the registry reads; a test moves it on."""
    return type("FakeClock", (), {"now": 1000.0})()


@pytest.fixture
def registry(clock):
    return ClassRegistry(clock=lambda: clock.now)


def bits(secret: str) -> int:
    return 8 * len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)))


def test_a_class_has_a_128_bit_url_safe_code_and_a_separate_key_kept_only_as_a_hash(registry):
    cls, key = registry.create("10.0.0.1")
    other, other_key = registry.create("10.0.0.1")
    assert bits(cls.code) == bits(key) == 128
    assert all(ch.isalnum() or ch in "-_" for ch in cls.code + key)
    assert len({cls.code, key, other.code, other_key}) == 4
    assert key not in cls.code and cls.code not in key
    stored = [v for v in vars(cls).values()] + [v for c in registry.classes() for v in vars(c).values()]
    assert key not in {str(v) for v in stored} and key.encode() not in {v for v in stored if isinstance(v, bytes)}
    assert cls.key_hash == classes_module.hash_key(key) and len(cls.key_hash) == 32


def test_the_teacher_key_is_checked_in_constant_time_and_only_the_right_one_opens_the_view(registry, monkeypatch):
    cls, key = registry.create("a")
    other, other_key = registry.create("a")
    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(classes_module.hmac, "compare_digest", lambda x, y: compared.append((x, y)) or real(x, y))
    for code, wrong in ((cls.code, other_key), (cls.code, ""), (cls.code, key[:-1]), ("", key), ("nope", key),
                        (other.code, key), (cls.code, None), (cls.code, "x" * 10_000), (None, key)):
        with pytest.raises(ClassRefused, match="teacher link"):
            registry.open_view(code, wrong, "teacher")
    assert len(compared) >= 7, "every check goes through hmac.compare_digest, an unknown code included"
    assert registry.teacher_class("teacher") is None
    token = registry.open_view(cls.code, key, "teacher")
    assert bits(token) == 128 and token not in (cls.code, key)
    assert registry.teacher_class("teacher").code == cls.code
    assert registry.view(token)[0].code == cls.code
    for guess in (cls.code, key, "teacher", token[:-1], "x" * 100, None):
        assert registry.view(guess) is None
    again = registry.open_view(cls.code, key, "teacher")
    assert registry.view(token) is None and registry.view(again) is not None, "one view token per teacher page"
    registry.close_views("teacher")
    assert registry.view(again) is None and registry.teacher_class("teacher") is None


def test_class_creation_is_rate_limited_per_client(registry, clock):
    for _ in range(CLASSES_PER_CLIENT):
        registry.create("10.0.0.1")
    with pytest.raises(ClassRefused, match="try again in"):
        registry.create("10.0.0.1")
    registry.create("10.0.0.2")  # another client is not held up
    clock.now += CREATE_WINDOW_S + 1
    registry.create("10.0.0.1")


def test_a_class_with_no_page_open_for_two_hours_closes(registry, clock):
    cls, key = registry.create("a")
    quiet, _ = registry.create("a")
    registry.join(cls.code, "s1", "Ada")
    registry.join(quiet.code, "s2")
    token = registry.open_view(cls.code, key, "teacher")
    clock.now += CLASS_IDLE_S - 60
    registry.touch(cls.code)  # a student's page is still open
    clock.now += 120
    closed = registry.sweep()
    assert [c.code for c in closed] == [quiet.code] and "s2" in closed[0].members
    assert registry.class_of("s2") is None and registry.class_of("s1").code == cls.code
    assert registry.view(token) is None, "a view not polled for VIEW_IDLE_S is forgotten"
    clock.now += CLASS_IDLE_S + 1
    assert [c.code for c in registry.sweep()] == [cls.code]
    assert registry.classes() == [] and registry.class_of("s1") is None
    with pytest.raises(ClassRefused, match="not open"):
        registry.join(cls.code, "s3")


def test_students_join_with_a_number_and_a_plain_name(registry):
    cls, _ = registry.create("a")
    first = registry.join(cls.code, "s1", "  Ada\n\tLovelace\x00  ")
    second = registry.join(cls.code, "s2", "<script>alert(1)</script>" + "x" * 100)
    assert (first.number, first.name) == (1, "Ada Lovelace")
    assert second.number == 2 and len(second.name) == NAME_CHARS and second.name.startswith("<script>")
    assert registry.join(cls.code, "s1").name == "Ada Lovelace", "joining again keeps the number and name"
    assert registry.join(cls.code, "s1", "Ada L").number == 1
    assert registry.member_sid(cls.code, 2) == "s2" and registry.member_sid(cls.code, 9) is None
    assert registry.member_sid(cls.code, True) is None and registry.member_sid("other", 1) is None
    assert [m.number for _, m in registry.members(cls.code)] == [1, 2]
    other, _ = registry.create("a")
    assert registry.join(other.code, "s1").number == 1
    assert [sid for sid, _ in registry.members(cls.code)] == ["s2"], "a student is in one class at a time"
    registry.leave("s2")
    assert registry.members(cls.code) == [] and registry.class_of("s2") is None
    for bad in ("", "nope", None, 42, "x" * 1000):
        with pytest.raises(ClassRefused):
            registry.join(bad, "s9")


@pytest.mark.parametrize("raw, shown", [("**bold** _it_", "**bold** _it_"), ("a\u202eb", "a b"), (None, ""),
                                        (42, ""), ("\n\n", ""), ("é" * 50, "é" * NAME_CHARS)])
def test_clean_name_keeps_text_and_drops_control_characters(raw, shown):
    assert clean_name(raw) == shown


def test_hidden_controls_keep_the_reference_values():
    sent = Controls("grid25", "large", 512, 7, "hinge", -2.0, -1.5, 5, 0.3, True, "")
    reference = Controls.start()
    pinned, changed = pin(sent, reference, frozenset({"g_lr", "d_lr", "dataset"}))
    assert (pinned.g_lr_log10, pinned.d_lr_log10, pinned.dataset) == \
        (reference.g_lr_log10, reference.d_lr_log10, reference.dataset)
    assert (pinned.loss, pinned.n_critic, pinned.batch_size) == ("hinge", 5, 512), "visible controls are the student's"
    assert changed == ["d_lr", "dataset", "g_lr"]
    assert pin(reference, reference, frozenset({"g_lr"})) == (reference, [])
    live, changed = pin(sent.live, reference.live, frozenset({"k", "dataset"}))
    assert live.n_critic == reference.n_critic and changed == ["k"]


def test_an_experiment_spreads_values_over_its_range():
    lrs = Experiment("d_lr", 1e-4, 1e-2).values(5)
    assert lrs == [1e-4, 3.2e-4, 1e-3, 3.2e-3, 1e-2]
    assert np.allclose(np.diff(np.log10(lrs)), 0.5, atol=0.01), "log-spaced"
    thirty = Experiment("g_lr", 1e-4, 1e-2).values(30)
    assert len(set(thirty)) == 30 and thirty == sorted(thirty)
    assert Experiment("n_critic", 1, 5).values(5) == [1, 2, 3, 4, 5]
    assert Experiment("n_critic", 1, 5).values(9) == [1, 2, 2, 2, 3, 4, 4, 4, 5]
    assert Experiment("label_smoothing", 0, 0.3).values(4) == [0.0, 0.1, 0.2, 0.3]
    assert Experiment("loss", losses=("minimax", "hinge")).values(5) == ["minimax", "hinge", "minimax", "hinge",
                                                                         "minimax"]
    assert Experiment("d_lr", 1e-4, 1e-2).values(1) == [1e-3] and Experiment("d_lr", 1e-4, 1e-2).values(0) == []


@pytest.mark.parametrize("args, message", [
    (("lr", 1e-4, 1e-2), "one of"),
    (("d_lr", 1e-2, 1e-4), "low to a higher"),
    (("d_lr", 0.0, 1e-2), "within"),
    (("n_critic", 1, 50), "within"),
    (("label_smoothing", 0, math.nan), "number"),
    (("label_smoothing", 0, True), "number"),
    (("loss", 0, 0, ()), "at least one loss"),
    (("loss", 0, 0, ("minimax", "<b>x</b>")), "at least one loss"),
])
def test_a_bad_experiment_says_what_to_change(args, message):
    with pytest.raises(ExperimentError, match=message):
        Experiment(*args)


def test_the_outcome_of_a_run_and_its_table_as_csv(make_runner, tiny, wait_until):
    runner = make_runner(tiny())
    runner.step(30)
    wait_until(lambda: runner.snapshot().step >= 30 and runner.snapshot().frame is not None)
    outcome = outcome_of(runner.snapshot())
    assert outcome["n_modes"] == 8 and 0 <= outcome["modes"] <= 8 and 0 <= outcome["hq"] <= 100
    assert 0 <= outcome["d_fake"] <= 1 and outcome["inception"] is None
    assert outcome["steps_to_all"] is None or outcome["steps_to_all"] <= 30
    text = table_csv([dict(student=1, name="=HYPERLINK(\"x\")", value=0.001),
                      dict(student=2, name="@SUM(A1)", value=None), dict(student=3, name="Ada, L.", value=-1.0)],
                     ("student", "name", "value"))
    lines = text.splitlines()
    assert lines[0] == "student,name,value"
    assert lines[1].startswith("1,\"'=HYPERLINK") and lines[2] == "2,'@SUM(A1)," and lines[3] == '3,"Ada, L.",-1.0'
