"""Classes: a teacher's student link and teacher key, who joined, and what the teacher set for all.

What it is: `ClassRegistry`, the server's table of open classes, and `pin`, the rule that keeps
controls a teacher hid out of a student's reach.

- A class's **code** is 128 random bits, URL-safe: the student link's `?class=<code>`. Anyone with
  it may join; it opens nothing else.
- Its **teacher key** is another 128 random bits, only in the teacher link. The server keeps its
  SHA-256, never the key, and compares with `hmac.compare_digest` (constant time; an unknown code
  is compared against a dummy hash, so a guess learns nothing from the time taken).
- A teacher page that showed the key once gets its own **view token** (128 bits): the class
  route's secret (`classview.py`), and its Gradio session becomes that class's teacher for the
  class page's actions. A student's session never does.
- A **member** is a session id (kept here, never shown) with a per-class number and an optional
  display name: plain text, at most NAME_CHARS characters, control characters removed (the class
  view writes it as text; the CSV export guards it against formulas).
- What the teacher set for everyone: controls **hidden** (enforced by `pin`: a hidden control's
  value is the server's, whatever a student's request says), the **pushed** controls, the
  **experiment** with each student's assigned value, and a **revision** that changes with each,
  so a student's page knows to refresh its controls.
- **Limits**: CLASSES_PER_CLIENT classes per client host every CREATE_WINDOW_S, MAX_CLASSES open
  at once, MAX_STUDENTS per class. A class no page of which was open for CLASS_IDLE_S (2 hours)
  closes: `sweep` returns it, and its caller (the session manager's housekeeping thread) frees
  its members' runs — never a visitor's request.

Thread-safety: one lock (`self._lock`) guards every table and every `Class` field; a `Class`
handed out is read-only to its reader (fields are replaced whole, under the lock).
Not here: runs (`sessions.py`), the class view's payload (`classview.py`), the actions
(`classbuttons.py`), the experiment's values (`experiment.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field, fields, replace
from typing import Callable

from .controls import Controls
from .experiment import Experiment

CLASS_IDLE_S = 2 * 3600.0  # a class with no page open this long closes
VIEW_IDLE_S = 600.0  # a class view not polled this long is forgotten (its token dies)
CLASSES_PER_CLIENT = 5  # classes one client host may start …
CREATE_WINDOW_S = 600.0  # … in this many seconds
MAX_CLASSES = 50
MAX_STUDENTS = 200
NAME_CHARS = 40
MAX_SECRET_CHARS = 64  # a code, key or token longer than this is not one of ours
# Controls a teacher can hide (the share link's names) → the fields they pin.
HIDE_FIELDS = {"dataset": ("dataset",), "size": ("size",), "batch": ("batch_size",), "seed": ("seed",),
               "loss": ("loss",), "g_lr": ("g_lr_log10",), "d_lr": ("d_lr_log10",), "k": ("n_critic",),
               "smoothing": ("label_smoothing",), "two_sided": ("two_sided",), "lesson": ("lesson",)}


class ClassRefused(Exception):
    """A class action that cannot be done; the message is for the person who asked."""


@dataclass(frozen=True)
class Member:
    """A student as the class sees them: a number and the name they typed."""

    number: int
    name: str = ""


@dataclass
class Class:
    """One open class (fields replaced whole under the registry's lock; see the module docstring)."""

    code: str
    key_hash: bytes
    last_seen: float
    members: dict[str, Member] = field(default_factory=dict)  # session id -> member
    next_number: int = 1
    hidden: frozenset[str] = frozenset()  # `HIDE_FIELDS` keys
    pushed: Controls | None = None  # what the teacher last pushed (or assigned on top of)
    experiment: Experiment | None = None
    assigned: dict[int, object] = field(default_factory=dict)  # member number -> value
    revision: int = 0  # changes with hidden, pushed and assigned


@dataclass
class TeacherView:
    """A teacher page that showed the key: its class, its session and what it was last sent."""

    code: str
    sid: str
    last_seen: float
    sent: dict = field(default_factory=dict)  # the class view's bookkeeping (classview.py)
    watch_sent: dict = field(default_factory=dict)  # … and of the student it projects


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "replace")).digest()


def clean_name(name) -> str:
    """A display name as the class shows it: text only, whitespace collapsed, at most NAME_CHARS."""
    if not isinstance(name, str):
        return ""
    kept = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in name[: NAME_CHARS * 4])
    return " ".join(kept.split())[:NAME_CHARS]


def pin(values, reference, hidden: frozenset[str]) -> tuple:
    """(`values` with every hidden field taken from `reference`, the hidden keys that differed):
    a `Controls` or a `LiveControls` as a student sent it, made to keep the teacher's values."""
    names = {f.name for f in fields(values)}
    pinned = {name: getattr(reference, name) for key in hidden for name in HIDE_FIELDS.get(key, ())
              if name in names}
    changed = sorted(key for key in hidden if any(
        name in pinned and getattr(values, name) != pinned[name] for name in HIDE_FIELDS.get(key, ())))
    return replace(values, **pinned), changed


class ClassRegistry:
    """Open classes, their members and their teachers' views (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._classes: dict[str, Class] = {}  # code -> class
        self._member_of: dict[str, str] = {}  # student session id -> code
        self._views: dict[str, TeacherView] = {}  # view token -> view
        self._created: dict[str, deque] = {}  # client host -> times it started a class
        self._dummy = hash_key(secrets.token_urlsafe(16))

    # --- a teacher ---------------------------------------------------------------------------------

    def create(self, client: str) -> tuple[Class, str]:
        """A new class and its teacher key (returned once: only its hash is kept)."""
        now = self._clock()
        with self._lock:
            times = self._created.setdefault(str(client)[:200], deque())
            while times and now - times[0] > CREATE_WINDOW_S:
                times.popleft()
            if len(times) >= CLASSES_PER_CLIENT:
                wait = CREATE_WINDOW_S - (now - times[0])
                raise ClassRefused(f"You started {len(times)} classes in the last {CREATE_WINDOW_S / 60:.0f} "
                                   f"minutes: try again in {max(1, round(wait / 60))} min, or use a class "
                                   "you already started.")
            if len(self._classes) >= MAX_CLASSES:
                raise ClassRefused(f"This server has {MAX_CLASSES} classes open: try again later.")
            times.append(now)
            key = secrets.token_urlsafe(16)  # 128 bits
            cls = Class(code=secrets.token_urlsafe(16), key_hash=hash_key(key), last_seen=now)
            self._classes[cls.code] = cls
            self._forget_quiet_clients(now)
            return cls, key

    def open_view(self, code, key, sid: str) -> str:
        """Check the teacher key of class `code` (once) and give this teacher page its view token;
        `sid`'s session becomes the class's teacher. ClassRefused for anything else."""
        code = code if isinstance(code, str) and len(code) <= MAX_SECRET_CHARS else ""
        key = key if isinstance(key, str) and len(key) <= MAX_SECRET_CHARS else ""
        with self._lock:
            cls = self._classes.get(code)
            expected = cls.key_hash if cls is not None else self._dummy
            good = hmac.compare_digest(hash_key(key), expected) and cls is not None and bool(key)
            if not good:
                raise ClassRefused("This class view needs its teacher link: the link's class or teacher key is "
                                   "missing or wrong (or the class has closed). Open the teacher link you got from "
                                   "'Start a class', or start a new class on the main page.")
            for token in [t for t, view in self._views.items() if view.sid == sid]:
                del self._views[token]  # one view per page
            token = secrets.token_urlsafe(16)
            now = self._clock()
            self._views[token] = TeacherView(code, sid, now)
            cls.last_seen = now
            return token

    def view(self, token) -> tuple[Class, TeacherView] | None:
        """(class, view) of a view token, seen now; None for any other string."""
        if not isinstance(token, str) or len(token) > MAX_SECRET_CHARS:
            return None
        with self._lock:
            view = self._views.get(token)
            cls = self._classes.get(view.code) if view is not None else None
            if cls is None:
                return None
            view.last_seen = cls.last_seen = self._clock()
            return cls, view

    def teacher_class(self, sid: str) -> Class | None:
        """The class whose teacher `sid`'s session is (it opened the class view with the key)."""
        with self._lock:
            for view in self._views.values():
                if view.sid == sid and view.code in self._classes:
                    return self._classes[view.code]
        return None

    def close_views(self, sid: str) -> None:
        """A teacher page closed: its view token dies."""
        with self._lock:
            for token in [t for t, view in self._views.items() if view.sid == sid]:
                del self._views[token]

    # --- what the teacher sets -------------------------------------------------------------------

    def set_hidden(self, code: str, hidden: frozenset[str]) -> None:
        with self._lock:
            cls = self._classes[code]
            cls.hidden = frozenset(hidden) & set(HIDE_FIELDS)
            cls.revision += 1

    def set_pushed(self, code: str, controls: Controls, experiment: Experiment | None = None,
                   assigned: dict[int, object] | None = None) -> None:
        """The controls every student now runs, and the experiment's values if one was assigned."""
        with self._lock:
            cls = self._classes[code]
            cls.pushed, cls.experiment, cls.assigned = controls, experiment, dict(assigned or {})
            cls.revision += 1

    # --- a student -------------------------------------------------------------------------------

    def join(self, code, sid: str, name: str | None = None) -> Member:
        """Put `sid` in class `code` (leaving any other) with a display name; its number is kept
        if it was in already (and its name, when `name` is None). ClassRefused for an unknown code or a full class."""
        code = code if isinstance(code, str) and len(code) <= MAX_SECRET_CHARS else ""
        with self._lock:
            cls = self._classes.get(code)
            if cls is None:
                raise ClassRefused("This class link is not open (the class may have closed): ask your teacher "
                                   "for the current link. You can still use the page on your own.")
            old = self._member_of.get(sid)
            if old is not None and old != code and old in self._classes:
                self._classes[old].members.pop(sid, None)
            member = cls.members.get(sid)
            if member is None:
                if len(cls.members) >= MAX_STUDENTS:
                    raise ClassRefused(f"This class is full ({MAX_STUDENTS} students).")
                member = Member(cls.next_number)
                cls.next_number += 1
            member = replace(member, name=clean_name(name) if name is not None else member.name)
            cls.members = {**cls.members, sid: member}
            self._member_of[sid] = code
            cls.last_seen = self._clock()
            return member

    def leave(self, sid: str) -> None:
        with self._lock:
            code = self._member_of.pop(sid, None)
            cls = self._classes.get(code) if code else None
            if cls is not None and sid in cls.members:
                cls.members = {k: v for k, v in cls.members.items() if k != sid}

    def class_of(self, sid: str) -> Class | None:
        """The class `sid` is a student of."""
        with self._lock:
            code = self._member_of.get(sid)
            return self._classes.get(code) if code else None

    def hidden_of(self, sid: str) -> frozenset[str]:
        """The controls `sid`'s teacher hid (none outside a class)."""
        cls = self.class_of(sid)
        return cls.hidden if cls is not None else frozenset()

    def members(self, code: str) -> list[tuple[str, Member]]:
        """(session id, member) of class `code`, by number."""
        with self._lock:
            cls = self._classes.get(code)
            items = list(cls.members.items()) if cls is not None else []
        return sorted(items, key=lambda item: item[1].number)

    def member_sid(self, code: str, number) -> str | None:
        """The session id of student `number` of class `code` (None if there is none)."""
        with self._lock:
            cls = self._classes.get(code)
            if cls is None or isinstance(number, bool) or not isinstance(number, int):
                return None
            return next((sid for sid, m in cls.members.items() if m.number == number), None)

    # --- housekeeping ------------------------------------------------------------------------------

    def touch(self, code: str) -> None:
        """A page of class `code` is open (a student's, seen by the caller)."""
        with self._lock:
            if code in self._classes:
                self._classes[code].last_seen = self._clock()

    def classes(self) -> list[Class]:
        with self._lock:
            return list(self._classes.values())

    def sweep(self) -> list[Class]:
        """Close classes with no page open for CLASS_IDLE_S and forget views not polled for
        VIEW_IDLE_S; returns the closed classes (their members' runs are the caller's to free)."""
        now = self._clock()
        with self._lock:
            closed = [cls for cls in self._classes.values() if now - cls.last_seen > CLASS_IDLE_S]
            for cls in closed:
                del self._classes[cls.code]
                for sid in cls.members:
                    if self._member_of.get(sid) == cls.code:
                        del self._member_of[sid]
            for token in [t for t, view in self._views.items()
                          if now - view.last_seen > VIEW_IDLE_S or view.code not in self._classes]:
                del self._views[token]
            self._forget_quiet_clients(now)
        return closed

    def _forget_quiet_clients(self, now: float) -> None:
        """Drop rate-limit entries older than the window (the caller holds the lock)."""
        for client in [c for c, times in self._created.items() if not times or now - times[-1] > CREATE_WINDOW_S]:
            del self._created[client]

