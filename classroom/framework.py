"""The one place the app reaches inside Gradio, each time with a fallback if Gradio changes.

Gradio 6.31's event queue runs two loops that wake up when there is no work: one checks for events
every millisecond (`Queue.sleep_when_free`, 0.001 s off Windows), one for progress messages every
10 ms (`Queue.progress_update_sleep_when_free`; this app sends none). Those wakeups were most of
the web server's CPU with no visitor (~5 % of a core on our 2-core server at 1 ms; 1.6 % at 10 ms,
0.7–0.9 % at 50 and 100 ms: `server_idle_cpu_percent` of `python -m benchmarks tickcost`), CPU the
trainer processes could use, and their jitter is the noise in what a poll of the live channel is
measured to cost. An event then waits at most `QUEUE_IDLE_POLL_S` longer to start — Gradio's own
value on Windows — which no one clicking a button notices. Gradio has no public setting for
either; if an attribute is gone in a later Gradio, that loop is left as Gradio made it.
"""

from __future__ import annotations

import logging

QUEUE_IDLE_POLL_S = 0.05
QUEUE_PROGRESS_POLL_S = 0.1

log = logging.getLogger(__name__)


def quieten_idle_queue(demo, poll_s: float = QUEUE_IDLE_POLL_S, progress_s: float = QUEUE_PROGRESS_POLL_S) -> bool:
    """Let `demo`'s event queue check for work every `poll_s` when it has none, and for progress
    messages every `progress_s`; False if it cannot (then nothing is changed)."""
    queue = getattr(demo, "_queue", None)
    if queue is None or not isinstance(getattr(queue, "sleep_when_free", None), (int, float)):
        log.info("Gradio's queue has no sleep_when_free: its idle polling is left as it is")
        return False
    queue.sleep_when_free = max(queue.sleep_when_free, poll_s)
    if isinstance(getattr(queue, "progress_update_sleep_when_free", None), (int, float)):
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, progress_s)
    return True
