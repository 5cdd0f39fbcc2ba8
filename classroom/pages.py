"""What the server remembers of each open page: one small dataclass per visitor.

What it is: `PageState` (the setup the visitor's run was built from, their notice, speed, the
points they uploaded or drew, their checkpoint pick, their live-channel token, what their page
was last sent) and `Pages`, the registry keyed by Gradio's `session_hash`, forgotten when the
tab closes. What it is not: the runs themselves (`sessions.py`) or what is drawn (`live.py`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

COMPARE_SUFFIX = "/B"  # session id of a visitor's second (B) run


@dataclass
class Points:
    """2-D points a visitor handed over (a CSV upload or a drawing), checked and kept as bytes."""

    name: str
    csv_bytes: bytes
    count: int


@dataclass
class PageState:
    """One visitor's page. Fields are written by that visitor's events and read by the live
    channel; `Pages.lock` guards the registry, and each write replaces a whole value."""

    token: str  # the live channel's secret for this page (never the session hash)
    setup: dict | None = None  # `controls.setup_of` of the run shown, None before the first run
    notice: str = ""  # what the last action did ("New run: …"), shown under the status line
    speed: float | None = None  # the speed limit chosen (steps/s, None = full), kept across runs
    points: Points | None = None  # the visitor's own 2-D points, used by a "csv" run
    checkpoint_pick: int | None = None  # the rewind menu's choice, kept while that checkpoint is
    pushed: int = 0  # bumped when a teacher changes this page's controls (a push, hidden controls)
    # What the page was last sent (the live channel's and the sync event's bookkeeping):
    sent: dict = field(default_factory=dict)  # part name -> key of what the page shows
    sync_key: tuple | None = None  # alerts, fix, menu and A/B box as the page shows them
    last_seen: float = field(default_factory=time.monotonic)


class Pages:
    """Open pages by session id, and their tokens. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._pages: dict[str, PageState] = {}
        self._by_token: dict[str, str] = {}

    def get(self, sid: str) -> PageState:
        """`sid`'s page state, made on first use."""
        with self.lock:
            page = self._pages.get(sid)
            if page is None:
                page = self._pages[sid] = PageState(token=secrets.token_urlsafe(16))  # 128 bits
                self._by_token[page.token] = sid
            page.last_seen = time.monotonic()
            return page

    def peek(self, sid: str) -> PageState | None:
        """`sid`'s page state if its page is open, without counting this as the page being seen
        (a teacher's action on the class, the class view)."""
        with self.lock:
            return self._pages.get(sid)

    def by_token(self, token: str) -> tuple[str, PageState] | None:
        """(session id, page) of the page a token belongs to; None for any other string."""
        if not isinstance(token, str) or len(token) > 64:
            return None
        with self.lock:
            sid = self._by_token.get(token)
            if sid is None:
                return None
            page = self._pages[sid]
            page.last_seen = time.monotonic()
            return sid, page

    def forget(self, sid: str) -> None:
        with self.lock:
            page = self._pages.pop(sid, None)
            if page is not None:
                self._by_token.pop(page.token, None)

    def open_ids(self, within_s: float) -> list[str]:
        """Session ids of pages seen within the last `within_s` seconds."""
        now = time.monotonic()
        with self.lock:
            return [sid for sid, page in self._pages.items() if now - page.last_seen <= within_s]

    def sweep(self, idle_s: float) -> list[str]:
        """Forget pages not seen for `idle_s` seconds (a tab that vanished without unload)."""
        now = time.monotonic()
        with self.lock:
            stale = [sid for sid, page in self._pages.items() if now - page.last_seen > idle_s]
        for sid in stale:
            self.forget(sid)
        return stale
