"""Tests for classroom/sessions.py: admission by a measured budget, the queue, turns, idle
eviction and caps, with a fake clock and tiny real runners; and the live channel's pace."""

from __future__ import annotations

import threading

import pytest
import torch

from gan_core.serve.runner import Runner
from classroom.sessions import MIN_RATE, TRAINING_SHARE, ServerBusy, SessionManager, configure_threads


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

    # No housekeeping thread: these tests call admit() and sweep() themselves, when they mean to.
    mgr = SessionManager(max_active=1, max_sessions=3, idle_timeout_s=60.0, clock=clock, runner_factory=factory,
                         housekeeping=False)
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
    manager.admit()  # the housekeeping thread's work
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


def test_get_keeps_a_session_alive_and_a_sweep_frees_the_others_slot(manager, tiny, clock, wait_until):
    gone = manager.create("gone-tab", tiny())
    here = manager.create("here-tab", tiny())
    manager.request_start("gone-tab")
    assert manager.request_start("here-tab") == 1
    clock.now += 30.0
    assert manager.get("here-tab") is here  # seen: last_seen refreshed
    clock.now += 31.0  # gone-tab idle 61 s, here-tab 31 s
    assert manager.get("here-tab") is here and "gone-tab" in manager.sessions(), "a visit sweeps nothing"
    assert manager.sweep() == ["gone-tab"]  # the housekeeping thread's work, not a visitor's
    assert manager.get("gone-tab") is None and not gone.runner.is_alive
    manager.admit()
    assert here.runner.state() == "running"  # the freed slot went to the queue
    wait_until(lambda: here.runner.snapshot().step > 0, what="queued run admitted")


def test_a_visitors_start_never_admits_or_pauses_another_visitors_run(manager, tiny, clock):
    """Admitting someone else (and turns) is the housekeeping thread's job, not a request's."""
    manager.turn_s = 30.0
    manager.create("a", tiny())
    manager.create("b", tiny())
    manager.create("c", tiny())
    assert manager.request_start("a") == 0
    assert manager.request_start("b") == 1
    clock.now += 100.0  # a's turn is long over
    assert manager.request_start("c") == 2, "c queues; a is not paused by c's request"
    assert manager.get("a").runner.state() == "running" and manager.get("b").runner.state() == "idle"


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


def test_a_run_replaced_while_it_starts_is_not_left_training(manager, tiny, wait_until):
    """admit() resumes a queued run outside its lock; a teacher's push can replace that run in
    the meantime (release closes it). The resume must not bring the closed run back to life,
    training on with no session to stop it."""
    old = manager.create("student", tiny()).runner
    resume = old.resume

    def replaced_while_starting():
        manager.create("student", tiny(seed=2))  # the push: releases (closes) the old run first
        resume()

    old.resume = replaced_while_starting
    manager.request_start("student")
    wait_until(lambda: not old.is_alive and old.state() != "running", what="the replaced run to stop")
    assert manager.get("student").runner is not old


def test_create_with_a_bad_config_raises_and_adds_nothing(manager, tiny):
    from gan_core.data import DataError

    with pytest.raises(DataError):
        manager.create("csv-visitor", tiny(dataset="csv"))
    assert manager.stats()["sessions"] == 0


def test_budget_and_threads_from_the_environment(monkeypatch):
    monkeypatch.setenv("GAN_CLASSROOM_MAX_RUNS", "3")
    assert SessionManager(processes=0, housekeeping=False).max_active == 3
    monkeypatch.setenv("GAN_CLASSROOM_MAX_RUNS", "0")
    with pytest.raises(ValueError, match="at least one"):
        SessionManager(processes=0, housekeeping=False)
    monkeypatch.delenv("GAN_CLASSROOM_MAX_RUNS")
    monkeypatch.setenv("GAN_CLASSROOM_STEP_BUDGET", "400")  # cost units per second per core
    manager = SessionManager(processes=0, min_rate=50, housekeeping=False)
    assert manager.max_active == pytest.approx(400 * manager.training_cores() * TRAINING_SHARE / 50)
    monkeypatch.setenv("GAN_CLASSROOM_TORCH_THREADS", "1")
    assert configure_threads() == 1 == torch.get_num_threads()


class FakeTrainer:
    """A trainer that measured `units_per_s` on its box (a slow one or a fast one)."""

    def __init__(self, units_per_s: float) -> None:
        self.units_per_s = units_per_s
        self.n_threads = 2

    def capacity(self) -> dict:
        return dict(units_per_s=self.units_per_s, measured=True)

    def stats(self) -> dict:
        return {}


@pytest.mark.parametrize("units_per_s", [2_000.0, 4_000.0], ids=["slow box", "fast box"])
def test_admission_follows_the_capacity_measured_on_this_box(units_per_s, tiny):
    """Every admitted student gets at least the promised rate, on a slow box and a fast one:
    the budget is the measured capacity, not a constant from another machine."""
    from gan_core.serve.capacity import step_cost
    from gan_core.serve.runner import Runner

    made = []

    def factory(config, csv_bytes=None, name="gan-run"):
        made.append(Runner(config, name=name, chunk_s=0.005))
        return made[-1]

    manager = SessionManager(trainer=FakeTrainer(units_per_s), runner_factory=factory, housekeeping=False, turn_s=0)
    manager._trainer = FakeTrainer(units_per_s)
    config = tiny(batch_size=256, width=32)  # 4 cost units each
    cost = step_cost(config)
    try:
        positions = []
        for i in range(40):
            manager.create(f"s{i}", config)
            positions.append(manager.request_start(f"s{i}"))
        admitted = sum(1 for p in positions if p == 0)
        assert admitted == int(units_per_s * TRAINING_SHARE / MIN_RATE // cost) < 40
        assert admitted * cost * MIN_RATE <= units_per_s * TRAINING_SHARE, "the promise holds for everyone admitted"
        waiting = next(f"s{i}" for i, p in enumerate(positions) if p)
        assert f"{MIN_RATE:.0f} steps/s or more" in manager.wait_message(waiting)
    finally:
        for run in made:
            run.stop()


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
                         trainer=Trainer(n_threads=1, chunk_s=0.01), housekeeping=False)
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
    assert cap["budget_units"] == 4 and cap["budget_units_used"] == 4 and cap["runs_training"] == 4


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


def test_pages_poll_slower_when_their_work_takes_more_than_their_share_of_a_core():
    from classroom.live import PACE_WINDOW_S, SERVER_SHARE, POLL_MAX_S, POLL_S, PagePace

    now, cpu = [0.0], [0.0]
    pace = PagePace(cpu=lambda: cpu[0], clock=lambda: now[0])
    assert pace.poll() == POLL_S
    for _ in range(10):  # a class: the pages' work takes 3× their share
        now[0] += PACE_WINDOW_S
        cpu[0] += 3 * SERVER_SHARE * PACE_WINDOW_S
        slower = pace.poll()
    assert slower == POLL_MAX_S
    for _ in range(10):  # the class left: hardly any work
        now[0] += PACE_WINDOW_S
        cpu[0] += 0.1 * SERVER_SHARE * PACE_WINDOW_S
        faster = pace.poll()
    assert faster == POLL_S


def test_training_threads_in_this_process_do_not_slow_the_pages():
    """CPU that trainer threads here spent is not the pages' work."""
    from classroom.live import PACE_WINDOW_S, POLL_S, PagePace

    now, cpu, training = [0.0], [0.0], [0.0]
    pace = PagePace(cpu=lambda: cpu[0], cpu_elsewhere=lambda: training[0], clock=lambda: now[0])
    for _ in range(5):
        now[0] += PACE_WINDOW_S
        cpu[0] += 2 * PACE_WINDOW_S  # two busy cores ...
        training[0] += 2 * PACE_WINDOW_S  # ... both training
        assert pace.poll() == POLL_S
