"""The one place the app reaches inside Gradio, each time with a fallback if Gradio changes.

Gradio 6.31's event queue checks for work every millisecond when it has none
(`Queue.sleep_when_free`, 0.001 s off Windows): about 5 % of a core on our 2-core server with no
visitor at all (`python -m benchmarks tickcost`, server_idle_cpu_percent), CPU the trainer
processes could use. An event then waits at most `QUEUE_IDLE_POLL_S` longer to start, which no
one clicking a button notices. Gradio has no public setting for it; if the attribute is gone in a
later Gradio, nothing is changed and the app runs as Gradio made it.
"""

from __future__ import annotations

import logging

QUEUE_IDLE_POLL_S = 0.01

log = logging.getLogger(__name__)


def quieten_idle_queue(demo, poll_s: float = QUEUE_IDLE_POLL_S) -> bool:
    """Let `demo`'s event queue check for work every `poll_s` when idle; False if it cannot."""
    queue = getattr(demo, "_queue", None)
    if queue is None or not isinstance(getattr(queue, "sleep_when_free", None), (int, float)):
        log.info("Gradio's queue has no sleep_when_free: its idle polling is left as it is")
        return False
    queue.sleep_when_free = max(queue.sleep_when_free, poll_s)
    return True
