"""classroom/framework.py: the one reach inside Gradio, and its fallback when Gradio changes."""

from __future__ import annotations

from classroom.framework import QUEUE_IDLE_POLL_S, QUEUE_PROGRESS_POLL_S, quieten_idle_queue


def test_the_idle_queue_polls_less_often_on_the_real_demo():
    import app

    demo = app.build_demo()
    assert quieten_idle_queue(demo)
    assert demo._queue.sleep_when_free == QUEUE_IDLE_POLL_S
    assert demo._queue.progress_update_sleep_when_free == QUEUE_PROGRESS_POLL_S


def test_a_gradio_without_the_progress_loop_setting_still_gets_the_idle_one():
    class Queue:
        sleep_when_free = 0.001

    class Demo:
        _queue = Queue()

    assert quieten_idle_queue(Demo()) and Demo._queue.sleep_when_free == QUEUE_IDLE_POLL_S
    assert not hasattr(Demo._queue, "progress_update_sleep_when_free")


def test_a_gradio_without_the_setting_is_left_alone():
    class Queue:
        pass

    class Demo:
        _queue = Queue()

    assert not quieten_idle_queue(Demo()) and not hasattr(Demo._queue, "sleep_when_free")
    assert not quieten_idle_queue(object())
