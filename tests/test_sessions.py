"""Tests for gan_core/sessions.py: admission queue, idle eviction and caps,
with a fake clock and tiny real runners."""

from __future__ import annotations

import threading

import pytest
import torch

from gan_core.serve.runner import Runner
from classroom.sessions import ServerBusy, SessionManager, configure_threads, default_max_active


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def manager(no_leaked_threads, clock):
    def factory(config, csv_bytes=None, name="gan-run"):
        return Runner(config, csv_bytes=csv_bytes, name=name, chunk_s=0.005, eval_interval_s=0.05)

    mgr = SessionManager(max_active=1, max_sessions=3, idle_timeout_s=60.0, clock=clock, runner_factory=factory)
    yield mgr
    mgr.release_all()


def alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_second_visitor_queues_until_the_first_pauses(manager, tiny, wait_until):
    a = manager.create("alice-session", tiny())
    b = manager.create("bob-session", tiny(seed=1))
    assert manager.request_start("alice-session") == 0
    assert a.runner.state() == "running"
    assert manager.request_start("bob-session") == 1
    assert manager.queue_position("bob-session") == 1
    assert b.runner.state() == "idle" and not b.runner.is_alive
    assert manager.stats() == dict(sessions=2, running=1, queued=1, max_active=1)
    manager.admit()  # no free slot yet
    assert b.runner.state() == "idle"

    a.runner.pause()
    wait_until(lambda: a.runner.state() == "paused", what="alice paused")
    manager.admit()  # the UI's poll calls this
    assert b.runner.state() == "running" and manager.queue_position("bob-session") == 0
    wait_until(lambda: b.runner.snapshot().step > 0, what="bob trains")
    assert manager.request_start("bob-session") == 0  # already running: no queueing
    assert manager.request_start("alice-session") == 1  # alice now waits behind bob
    assert manager.stats()["queued"] == 1


def test_queue_is_fifo_and_cancel_start_leaves_it(manager, tiny):
    for sid in ("s1", "s2", "s3"):
        manager.create(sid, tiny())
    assert manager.request_start("s1") == 0
    assert manager.request_start("s2") == 1
    assert manager.request_start("s3") == 2
    manager.cancel_start("s2")
    assert manager.queue_position("s2") == 0 and manager.queue_position("s3") == 1
    with pytest.raises(KeyError):
        manager.request_start("nobody")


def test_idle_sessions_are_evicted_and_their_threads_stopped(manager, tiny, clock, wait_until):
    session = manager.create("idle-visitor", tiny())
    manager.request_start("idle-visitor")
    wait_until(lambda: session.runner.snapshot().step > 0, what="training")
    assert alive("gan-idle-vis")
    clock.now += 59.0
    assert manager.sweep() == []
    clock.now += 2.0
    assert manager.sweep() == ["idle-visitor"]
    assert not session.runner.is_alive and not alive("gan-idle-vis")
    assert session.runner.state() == "stopped"
    assert manager.get("idle-visitor") is None and manager.stats()["sessions"] == 0


def test_get_keeps_a_session_alive_and_sweeps_others_freeing_their_slot(manager, tiny, clock, wait_until):
    gone = manager.create("gone-tab", tiny())
    here = manager.create("here-tab", tiny())
    manager.request_start("gone-tab")
    assert manager.request_start("here-tab") == 1
    clock.now += 30.0
    assert manager.get("here-tab") is here  # seen: last_seen refreshed
    clock.now += 31.0  # gone-tab idle 61 s, here-tab 31 s
    assert manager.get("here-tab") is here  # triggers the periodic sweep
    assert manager.get("gone-tab") is None and not gone.runner.is_alive
    assert here.runner.state() == "running"  # the freed slot went to the queue
    wait_until(lambda: here.runner.snapshot().step > 0, what="queued run admitted")


def test_max_sessions_raises_server_busy(manager, tiny):
    for sid in ("a", "b", "c"):
        manager.create(sid, tiny())
    with pytest.raises(ServerBusy, match="server is full"):
        manager.create("d", tiny())
    assert manager.stats()["sessions"] == 3
    manager.create("a", tiny(seed=4))  # replacing an existing run is always allowed
    assert manager.get("a").runner.config.seed == 4
    manager.release("b")
    manager.create("d", tiny())


def test_release_stops_the_thread_and_forgets_the_session(manager, tiny, wait_until):
    session = manager.create("leaving", tiny())
    manager.request_start("leaving")
    wait_until(lambda: session.runner.snapshot().step > 0, what="training")
    manager.release("leaving")
    assert not session.runner.is_alive and not alive("gan-leaving")
    assert manager.get("leaving") is None
    manager.release("leaving")  # releasing twice is harmless


def test_release_removes_a_queued_session_and_create_replaces_a_run(manager, tiny):
    manager.create("first", tiny())
    manager.create("second", tiny())
    manager.request_start("first")
    manager.request_start("second")
    manager.release("second")
    assert manager.stats()["queued"] == 0
    old = manager.get("first").runner
    new = manager.create("first", tiny(seed=2)).runner
    assert new is not old and not old.is_alive and new.state() == "idle"


def test_create_with_a_bad_config_raises_and_adds_nothing(manager, tiny):
    from gan_core.data import DataError

    with pytest.raises(DataError):
        manager.create("csv-visitor", tiny(dataset="csv"))
    assert manager.stats()["sessions"] == 0


def test_default_max_active_and_threads_from_environment(monkeypatch):
    monkeypatch.setenv("GAN_CLASSROOM_MAX_RUNS", "3")
    assert default_max_active() == 3
    monkeypatch.setenv("GAN_CLASSROOM_MAX_RUNS", "0")
    with pytest.raises(ValueError, match="GAN_CLASSROOM_MAX_RUNS"):
        default_max_active()
    monkeypatch.delenv("GAN_CLASSROOM_MAX_RUNS")
    assert default_max_active() >= 1
    monkeypatch.setenv("GAN_CLASSROOM_TORCH_THREADS", "1")
    assert configure_threads() == 1 == torch.get_num_threads()


def test_waiting_visitors_get_a_turn_after_turn_s(manager, tiny, clock, wait_until):
    manager.turn_s = 30.0
    manager.create("a", tiny())
    manager.create("b", tiny())
    assert manager.request_start("a") == 0
    assert manager.request_start("b") == 1
    clock.now += 29.0
    manager.admit()
    assert manager.get("a").runner.state() == "running", "not yet: a's turn lasts 30 s"
    clock.now += 2.0
    manager.admit()  # a has had its turn: it is paused and queued behind b
    wait_until(lambda: manager.get("a").runner.state() == "paused")
    assert "turn" in manager.get("a").runner.snapshot().message
    manager.admit()
    wait_until(lambda: manager.get("b").runner.state() == "running")
    assert manager.queue_position("a") == 1
    clock.now += 31.0
    manager.admit()
    wait_until(lambda: manager.get("b").runner.state() == "paused")
    manager.admit()
    wait_until(lambda: manager.get("a").runner.state() == "running")  # round robin


def test_no_turns_when_nobody_waits(manager, tiny, clock):
    manager.turn_s = 30.0
    manager.create("a", tiny())
    manager.request_start("a")
    clock.now += 1000.0
    manager.admit()
    assert manager.get("a").runner.state() == "running"


# --- the step budget (issue 12): 2-D runs share trainer threads ---------------------------------

@pytest.fixture
def class_manager(no_leaked_threads, clock):
    from gan_core.serve.trainer import Trainer

    mgr = SessionManager(max_active=4, max_sessions=128, idle_timeout_s=600.0, clock=clock,
                         trainer=Trainer(n_threads=1, chunk_s=0.01))
    yield mgr
    mgr.release_all()


def test_budget_admits_by_cost_and_tells_the_rest_why(class_manager, tiny, wait_until):
    from gan_core.serve.trainer import CohortRunner

    for i in range(5):
        class_manager.create(f"s{i}", tiny(seed=i))
    class_manager.create("big", tiny(width=64, batch_size=128))  # 2 × 4 = 8 budget units
    positions = [class_manager.request_start(f"s{i}") for i in range(5)] + [class_manager.request_start("big")]
    assert positions == [0, 0, 0, 0, 1, 2]
    assert isinstance(class_manager.get("s0").runner, CohortRunner)
    message = class_manager.wait_message("s4")
    assert "class is full" in message and "position 1" in message and "steps/s" in message
    assert class_manager.wait_message("s0") == ""
    wait_until(lambda: all(class_manager.get(f"s{i}").runner.snapshot().step > 20 for i in range(4)))
    class_manager.get("s0").runner.pause()
    wait_until(lambda: class_manager.get("s0").runner.state() == "paused")
    class_manager.admit()  # one unit free: s4 fits, the big run still waits
    assert class_manager.get("s4").runner.state() == "running"
    assert class_manager.queue_position("big") == 1
    cap = class_manager.capacity()
    assert cap["students_at_once"] == 4 and cap["budget_units_used"] == 4


def test_a_hundred_students_get_the_budget_and_a_clear_message(class_manager, tiny, wait_until):
    class_manager.max_active = 10
    for i in range(100):
        class_manager.create(f"student-{i}", tiny(seed=i))
        class_manager.request_start(f"student-{i}")
    stats = class_manager.stats()
    assert stats["running"] == 10 and stats["queued"] == 90 and stats["sessions"] == 100
    assert "position 90" in class_manager.wait_message("student-99")
    wait_until(lambda: all(class_manager.get(f"student-{i}").runner.snapshot().step > 10 for i in range(10)))
    assert all(class_manager.get(f"student-{i}").runner.snapshot().step == 0 for i in range(10, 100))
    with pytest.raises(ServerBusy, match="full"):
        for i in range(100, 130):
            class_manager.create(f"student-{i}", tiny())
    class_manager.release_all()
    wait_until(lambda: class_manager.trainer.threads_alive() == 0, what="trainer threads gone")


def test_pages_tick_slower_as_a_class_opens_the_link_and_faster_when_it_leaves():
    from classroom.sessions import TICK_COST_S, TICK_MAX_S, TICK_S, TICK_SHARE, PageTicks

    now = [0.0]
    ticks = PageTicks(clock=lambda: now[0], forget_s=10.0)
    assert ticks.tick("teacher") is None and ticks.interval() == TICK_S  # alone: the page's own pace
    for i in range(30):
        ticks.tick(f"student-{i}")
    slow = round(31 * TICK_COST_S / TICK_SHARE, 1)
    assert TICK_S < slow == ticks.interval() <= TICK_MAX_S
    assert ticks.tick("teacher") == slow  # told once ...
    assert ticks.tick("teacher") is None  # ... then it keeps that pace
    for i in range(200):
        ticks.tick(f"visitor-{i}")
    assert ticks.interval() == TICK_MAX_S
    now[0] = 11.0  # everyone else closed their tab (or stopped ticking) 11 s ago
    assert ticks.tick("teacher") == TICK_S and ticks.interval() == TICK_S
    ticks.forget("teacher")
    assert ticks.interval() == TICK_S and ticks.tick("teacher") is None


def test_tick_tells_the_page_its_pace(handlers):
    import gradio as gr

    from app_support import req
    from classroom.handlers import TICK_OUTPUTS

    for i in range(60):
        handlers.ticks.tick(f"other-{i}")
    out = handlers.tick(request=req("a"))  # no run yet: the pace still applies
    timer = out[TICK_OUTPUTS.index("timer")]
    assert timer["__type__"] == "update" and timer["value"] > 0.4
    assert handlers.tick(request=req("a"))[TICK_OUTPUTS.index("timer")] == gr.skip()
    handlers.unload(req("a"))
    assert "a" not in handlers.ticks._seen
