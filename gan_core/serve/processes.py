"""Trainer processes: a class's runs trained outside the web server's interpreter lock.

Why: every torch op releases Python's interpreter lock and must take it back, so trainer
threads beside a busy web server crawl (measured: a 15-run cohort made 497 steps/s alone and
0.3 steps/s beside one busy pure-Python thread; during a class of 30 the server's event loop
held the lock 38 % of the time). A child process has its own lock.

`TrainerProcesses` starts `n` child interpreters (`python -m gan_core.serve.processes`, one per
core by default), each running a one-thread `trainer.Trainer` for its 2-D runs and a
`runner.Runner` thread per digits run (`trainer.new_run`). New runs go to the child with the
least work; a 2-D run moves to another child with all it has (`RemoteRun._move`) when that
speeds up the slowest runs (`TrainerProcesses.balance`, every `BALANCE_S`). `RemoteRun` is
the server's handle on one run, a `handle.RunHandle` like `Runner` and `CohortRunner`:
controls are calls answered by the child, while
`state()`, `config`, `telemetry.version`, `checkpoints.list()`, `speed_limit` and
`cpu_seconds` read a small `RunView` the child sends when it changes (checked every
`VIEW_S`), so reading them never waits on a child. `snapshot()` fetches the child's snapshot
only when the view says it is newer than the one held; `view(make, …)` (a page's figures) is made
and answered in the child, so only its answer crosses (`handle.SnapshotView`).

Protocol, one socket pair per child, pickled tuples (both ends are this program):
  server → child  ("new", call, run, config, kwargs, packed engine) | ("adopt", call, run, bundle)
                  | ("call", call, run, name, args, kwargs) | ("close",)
  child → server  ("reply", call, ok, value, run, (seq, RunView) | None) | ("views", {run: (seq, RunView)})
A reply carries the run's view taken after the call, so the handle reflects the call when it
returns; views are numbered in the order the child took them and the server keeps the newest.
A child whose server goes away (end of file on its socket) stops its runs and exits.
POSIX only (the socket is inherited by `pass_fds`).

Not here: scheduling inside a child (`trainer.py`), admission (classroom/sessions.py).
"""

from __future__ import annotations

import atexit
import dataclasses
import io
import itertools
import logging
import math
import os
import pickle
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..checkpoints import CheckpointInfo, pack_engine, unpack_engine
from .cohort import solo_reason
from .handle import RunUnreachable
from ..config import TrainConfig
from ..telemetry import History, Snapshot, Telemetry
from ..timelapse import TimelapseRecorder
from .capacity import step_cost
from .trainer import CohortRunner, Trainer, new_run

if TYPE_CHECKING:
    from .handle import RunHandle, SnapshotView

log = logging.getLogger(__name__)

GONE_MESSAGE = ("The trainer process of this run stopped (the server may be short of memory): this run is "
                "lost. Press Start to begin a new one.")
VIEW_S = 0.1  # how often a child sends the views that changed
CAPACITY_S = 1.0  # how often a child sends its measured capacity (cost units/s, `capacity.py`)
START_TIMEOUT_S = 60.0  # a child calibrates (~0.3 s) before its first capacity report
BALANCE_S = 3.0  # how often the server compares its trainer processes' speeds (`balance`)
BALANCE_GAIN = 1.05  # a move must speed the slowest runs up by at least this factor
MOVE_COOLDOWN_S = 30.0  # a run moved stays at least this long (no back and forth on noisy rates)
# Trainer processes train at a lower priority than the web server: training takes every spare
# cycle, and a page's request still gets a core as soon as it arrives (`lower_priority`).
TRAINER_NICE = 10
CALL_TIMEOUT_S = 60.0  # twice the longest child-side wait (a command between two steps: 30 s)
# What a handle may ask of its run in the child (dotted: an attribute's method).
CALLS = frozenset({
    "start", "pause", "resume", "step", "step_d", "step_g", "update", "rewind", "save", "reset", "set_speed",
    "checkpoint_now", "publish_frame", "stop", "snapshot", "timelapse.frames", "open_loaded_tensors", "save_bytes",
    "close", "export", "restore", "view",
})


def processes_supported() -> bool:
    """Whether trainer processes can run here: the child inherits its socket through
    `subprocess.Popen(pass_fds=...)`, which POSIX systems have (Linux, macOS) and Windows has not."""
    return os.name == "posix"


def default_processes() -> int:
    """Trainer processes for a server: env GAN_CLASSROOM_PROCESSES, else one per core when there
    are two or more and the OS supports them (0: train in the server's own threads)."""
    env = os.environ.get("GAN_CLASSROOM_PROCESSES")
    if env:
        return max(0, int(env)) if processes_supported() else 0
    cores = os.cpu_count() or 1
    return cores if cores >= 2 and processes_supported() else 0


@dataclass(frozen=True)
class RunView:
    """What the server reads of a run without asking its child."""

    version: int  # the telemetry's version
    state: str
    config: TrainConfig  # including changes queued for the next step
    speed_limit: float | None
    cpu_seconds: float
    checkpoints: tuple[CheckpointInfo, ...]
    timelapse_frames: int
    attached: bool  # a trainer thread owns the run (Runner/CohortRunner.is_alive)
    rate: float = 0.0  # steps/s lately
    movable: bool = False  # a run on the child's trainer thread (`CohortRunner`): it may move


def _view_of(run) -> RunView:
    tel = run.telemetry
    return RunView(tel.version, tel.state, run.config, run.speed_limit, round(run.cpu_seconds, 1),
                   tuple(run.checkpoints.list()), len(run.timelapse), run.is_alive, round(tel.rate, 1),
                   isinstance(run, CohortRunner))


def _dumps(message: tuple) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _picklable_error(exc: BaseException) -> BaseException:
    """`exc` if it survives the trip (pickle and back), else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


# A snapshot's tables of rows keyed by step in their first column: a run's history gains rows
# (its last one, a bin in progress, changes), `recent` slides, a rewind cuts them back.
TABLES = ("history", "recent", "coverage", "digit_scores")
FRAMES = ("frame", "previous_frame")


@dataclass(frozen=True)
class SnapshotPatch:
    """A snapshot as the difference from an older one of the same run (`base`, its version):
    `snap` without its tables and frames; each table as (start, stop, tail): `base`'s rows
    [start:stop] then `tail`; each frame as the name of `base`'s field holding the same object,
    or the frame itself."""

    base: int
    snap: Snapshot
    tables: dict
    frames: dict


def snapshot_patch(old: Snapshot, new: Snapshot) -> SnapshotPatch:
    """What turns `old` into `new` (`apply_patch`): the rows of each table `old` has, located by
    the step of `new`'s first row and checked equal byte for byte (so any change — a rewind, a
    history whose bins merged — just sends more), and the frames by identity."""
    tables = {}
    for name in TABLES:
        before, after = getattr(old, name), getattr(new, name)
        start = kept = 0
        if len(before) and len(after) and before.shape[1:] == after.shape[1:] and before.dtype == after.dtype:
            start = int(min(np.searchsorted(before[:, 0], after[0, 0]), len(before)))
            n = min(len(before) - start, len(after))
            if n:  # none when `new` begins after `old`'s last row (its rows all slid out)
                # Byte for byte: exact (a NaN row equals itself, -0.0 is not 0.0).
                rows = lambda a: np.ascontiguousarray(a).view(np.uint8).reshape(n, -1)
                same = (rows(before[start:start + n]) == rows(after[:n])).all(axis=1)
                kept = n if same.all() else int(np.argmin(same))
        tables[name] = (start, start + kept, after[kept:])
    frames = {}
    for name in FRAMES:
        frame = getattr(new, name)
        frames[name] = next((held for held in FRAMES if frame is not None and getattr(old, held) is frame), frame)
    return SnapshotPatch(old.version, dataclasses.replace(new, **{t: after[:0] for t, (_, _, after) in tables.items()},
                                                          frame=None, previous_frame=None), tables, frames)


def apply_patch(base: Snapshot, patch: SnapshotPatch) -> Snapshot:
    """The snapshot `patch` describes, from `base` (the snapshot of version `patch.base`)."""
    tables = {}
    for name, (start, stop, tail) in patch.tables.items():
        rows = np.concatenate([getattr(base, name)[start:stop], tail]) if stop > start else tail
        rows.flags.writeable = False  # as every snapshot's arrays (read-only)
        tables[name] = rows
    frames = {name: getattr(base, held) if isinstance(held, str) else held for name, held in patch.frames.items()}
    return dataclasses.replace(patch.snap, **tables, **frames)


# --- the server side --------------------------------------------------------------------------


class _Child:
    """One trainer process and the server's end of its socket."""

    def __init__(self, pool: "TrainerProcesses", index: int, chunk_s: float) -> None:
        self.pool = pool
        self.index = index
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gan_core.serve.processes", str(theirs.fileno()), str(chunk_s), str(index)],
            pass_fds=[theirs.fileno()], env=env)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.send_lock = threading.Lock()
        self.runs: dict[int, RemoteRun] = {}  # guarded by pool.lock
        self.alive = True
        self.capacity = 0.0  # cost units/s the child last reported (reader thread writes)
        self.capacity_measured = False
        self.ready = threading.Event()  # its first capacity report arrived
        self.reader = threading.Thread(target=self._read, name=f"trainer-process-{index}-reader", daemon=True)
        self.reader.start()

    def shut_down(self, timeout: float) -> None:
        """Wait for the process to exit (after "close"), killing it if it does not; close the socket."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout)
        self.conn.close()

    def send(self, message: tuple) -> None:
        data = _dumps(message)
        with self.send_lock:
            if not self.alive:
                raise RuntimeError("the trainer process has stopped")
            self.conn.send_bytes(data)

    def _read(self) -> None:
        pool = self.pool
        try:
            while True:
                message = pickle.loads(self.conn.recv_bytes())
                if message[0] == "reply":
                    _, call, ok, value, run_id, seq_view = message
                    if seq_view is not None:
                        self._set_view(run_id, *seq_view)
                    pool._answer(call, ok, value)
                elif message[0] == "capacity":
                    self.capacity, self.capacity_measured = message[1], message[2]
                    self.ready.set()
                else:
                    for run_id, (seq, view) in message[1].items():
                        self._set_view(run_id, seq, view)
        except (EOFError, OSError):
            pass
        except Exception:  # a message this side cannot read: treat the child as gone
            log.exception("reading from trainer process %d failed", self.index)
            self.process.kill()
        with self.send_lock:
            self.alive = False
        self.ready.set()
        pool._child_gone(self)
        try:
            self.process.wait(10)  # reaped here; close() waits too
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()

    def _set_view(self, run_id: int, seq: int, view: RunView) -> None:
        """Keep the newest view of a run from the process it is in (reader thread only)."""
        with self.pool.lock:
            run = self.runs.get(run_id)
            if run is not None and run.child is self and seq > run._view_seq:
                run._view_seq, run._view = seq, view

    def load(self) -> float:  # caller holds pool.lock
        return sum(step_cost(r._view.config) for r in self.runs.values())


class TrainerProcesses:
    """The server's trainer processes, started at the first run (or `start()`). Thread-safe."""

    def __init__(self, n: int | None = None, chunk_s: float = 0.05, balance_s: float | None = BALANCE_S) -> None:
        self.n = n or default_processes() or 1
        self.chunk_s = chunk_s
        self.balance_s = balance_s  # None: runs stay where they were created
        self.lock = threading.Lock()  # guards the children list, runs' tables and waiting calls
        self._starting = threading.Lock()  # one thread spawns processes at a time (outside `lock`)
        self._children: list[_Child] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list, _Child]] = {}  # call id -> (done, [ok, value], child)
        self._closed = False
        self._stop_balancing = threading.Event()
        self._balancer: threading.Thread | None = None
        self.moves = 0  # runs moved between processes by `balance`

    def start(self) -> None:
        """Start the children now (a server does so at launch, so the first visitor does not wait).
        Processes are spawned outside `lock` (a spawn takes tens of milliseconds); one caller
        spawns, others wait for it."""
        with self._starting:
            with self.lock:
                if self._closed:
                    raise RuntimeError("the trainer processes were closed")
                if self._children:
                    return
            children = [_Child(self, i, self.chunk_s) for i in range(self.n)]
            with self.lock:
                closed = self._closed
                if not closed:
                    self._children = children
            if closed:
                for child in children:
                    child.shut_down(1.0)
                raise RuntimeError("the trainer processes were closed")
            atexit.register(self.close)
            for child in children:
                child.ready.wait(START_TIMEOUT_S)
            if self.n > 1 and self.balance_s:
                self._balancer = threading.Thread(target=self._balance_loop, name="trainer-processes-balancer",
                                                  daemon=True)
                self._balancer.start()

    def _replace_dead(self) -> None:
        """A child that died (killed, out of memory) is replaced by a fresh one, spawned outside `lock`."""
        with self._starting:
            with self.lock:
                dead = [(i, c.index) for i, c in enumerate(self._children) if not c.alive]
            fresh = {i: _Child(self, index, self.chunk_s) for i, index in dead}
            with self.lock:
                for i, child in fresh.items():
                    self._children[i] = child

    def close(self, timeout: float = 10.0) -> None:
        """Stop every run and child (at exit, or when a test is done)."""
        with self.lock:
            children, self._children, self._closed = self._children, [], True
        self._stop_balancing.set()
        if self._balancer is not None:
            self._balancer.join(timeout)
        for child in children:
            try:
                child.send(("close",))
            except (RuntimeError, OSError):
                pass
        deadline = time.monotonic() + timeout
        for child in children:
            child.shut_down(max(0.1, deadline - time.monotonic()))
        atexit.unregister(self.close)

    def create(self, config: TrainConfig, *, csv_bytes: bytes | None = None, name: str = "gan-run",
               engine=None) -> "RemoteRun":
        """A new run in the child with the least work; raises what building the run raises
        (ConfigError, DataError, …) and nothing is left behind."""
        self.start()
        self._replace_dead()
        packed = None
        if engine is not None:  # a loaded run file
            packed = pack_engine(engine)
            config = engine.config
        with self.lock:
            if self._closed:
                raise RuntimeError("the trainer processes were closed")
            child = min(self._children, key=lambda c: (c.load(), len(c.runs), c.index))
            run = RemoteRun(self, child, next(self._ids), name, config)
            child.runs[run.id] = run
        try:
            self._request(child, "new", run.id, config, dict(csv_bytes=csv_bytes, name=name), packed)
        except BaseException:
            with self.lock:
                child.runs.pop(run.id, None)
            raise
        return run

    def _request(self, child: _Child, kind: str, *fields, timeout: float = CALL_TIMEOUT_S):
        call = next(self._ids)
        done, box = threading.Event(), []
        with self.lock:
            self._waiting[call] = (done, box, child)
        try:
            child.send((kind, call, *fields))
            if not done.wait(timeout):
                raise TimeoutError(f"the trainer process did not answer within {timeout:.0f} s")
        finally:
            with self.lock:
                self._waiting.pop(call, None)
        ok, value = box
        if not ok:
            raise value
        return value

    def _answer(self, call: int, ok: bool, value: Any) -> None:
        with self.lock:
            waiting = self._waiting.get(call)
        if waiting is not None:
            waiting[1].extend((ok, value))
            waiting[0].set()

    def _child_gone(self, child: _Child) -> None:
        """A child exited (closed, or crashed): its runs say so, and calls waiting on it fail."""
        with self.lock:
            closing = self._closed
            for run in child.runs.values():
                if run.child is child:  # (a run moving out already belongs to its target)
                    run._view = RunView(run._view.version + 1, "error" if not closing else "stopped",
                                        run._view.config, None, run._view.cpu_seconds, (), 0, False)
        if not closing:
            log.error("trainer process %d exited with %s", child.index, child.process.poll())
        with self.lock:
            pending = [(done, box) for done, box, owner in self._waiting.values() if owner is child]
        for done, box in pending:
            if not done.is_set():
                box.extend((False, RuntimeError("the trainer process of this run has stopped")))
                done.set()

    def _forget(self, run: "RemoteRun") -> None:
        with self.lock:
            run.child.runs.pop(run.id, None)

    # --- fair shares across processes ----------------------------------------------------

    def _balance_loop(self) -> None:
        while not self._stop_balancing.wait(self.balance_s):
            try:
                if self.balance():
                    self._stop_balancing.wait(self.balance_s)  # let the speeds settle before the next look
            except Exception:  # the run stays or went back where it was (`RemoteRun._move`)
                log.exception("moving a run between trainer processes failed")

    def balance(self) -> bool:
        """Move one training 2-D run from the process whose runs train slowest to the process
        where, afterwards, the slowest runs of all train fastest — if that speeds the slowest up
        by at least BALANCE_GAIN. Returns whether a run moved.

        Speeds are what the processes measured: a process's runs share its rounds, so its
        capacity is their steps/s × their cost (`capacity.step_cost`); one with no training run
        is taken to be as fast as the fastest. Slowed-down (lecture pace) and digits runs stay, a
        process training digits (a core of its own) takes no runs, and a run moves at most once
        every MOVE_COOLDOWN_S.
        """
        now = time.monotonic()
        with self.lock:
            children = [c for c in self._children if c.alive]
            busy = {id(c) for c in children
                    if any(r._view.state == "running" and r._view.config.is_image for r in c.runs.values())}
            groups = [(c, [r for r in c.runs.values() if r.child is c and r._view.state == "running"
                           and r._view.speed_limit is None and r._view.movable and not r._closed])
                      for c in children]
        if len(groups) < 2:
            return False
        procs = []  # [child, runs, cost units training, their median steps/s or None]
        for child, runs in groups:
            rates = [r._view.rate for r in runs if r._view.rate > 0]
            procs.append([child, runs, sum(step_cost(r._view.config) for r in runs),
                          statistics.median(rates) if rates else None])
        capacity = {id(p): p[2] * p[3] for p in procs if p[3]}
        if not capacity:
            return False
        for p in procs:
            capacity.setdefault(id(p), max(capacity.values()))
        slow = min((p for p in procs if p[3]), key=lambda p: p[3])
        ready = [r for r in slow[1] if now - r._moved_at >= MOVE_COOLDOWN_S]
        if not ready:
            return False
        run = min(ready, key=lambda r: step_cost(r._view.config))
        cost = step_cost(run._view.config)
        best, target = slow[3], None
        for p in procs:
            if p is slow or id(p[0]) in busy:
                continue
            after = [capacity[id(slow)] / (slow[2] - cost) if slow[2] > cost else float("inf"),
                     capacity[id(p)] / (p[2] + cost)]
            after += [q[3] for q in procs if q is not slow and q is not p and q[3]]
            if min(after) > best:
                best, target = min(after), p[0]
        if target is None or best < slow[3] * BALANCE_GAIN:
            return False
        run._move(target)
        self.moves += 1
        return True

    # --- what the server reports --------------------------------------------------------

    def capacity(self) -> dict:
        """Cost units per second the live children give (their own measurement, `capacity.py`),
        and whether every one has measured it while training (not only calibrated)."""
        with self.lock:
            children = [c for c in self._children if c.alive]
        return dict(units_per_s=sum(c.capacity for c in children),
                    measured=bool(children) and all(c.capacity_measured for c in children))

    def runs_alive(self) -> int:
        """Runs the children hold (0 once every visitor has left)."""
        with self.lock:
            return sum(len(c.runs) for c in self._children)

    def threads_alive(self) -> int:
        """Runs a trainer thread owns now, over all children (0 once every run stopped)."""
        with self.lock:
            views = [r._view for c in self._children for r in c.runs.values()]
        return sum(1 for v in views if v.attached)

    def stats(self) -> dict[str, Any]:
        """Per child: its process id, whether it lives, its runs and how many train now."""
        with self.lock:
            children = [(c, list(c.runs.values())) for c in self._children]
        workers = []
        for child, runs in children:
            views = [r._view for r in runs]
            workers.append(dict(pid=child.process.pid, alive=child.alive, runs=len(runs),
                                training=sum(1 for v in views if v.state == "running")))
        return dict(processes=self.n, workers=workers, runs_moved=self.moves)


class _RemoteTelemetry:
    """The parts of `Telemetry` the server uses, for a run in a child."""

    def __init__(self, run: "RemoteRun") -> None:
        self._run = run

    @property
    def version(self) -> int:
        return self._run._view.version

    @property
    def state(self) -> str:
        return self._run._view.state

    @property
    def rate(self) -> float:
        return self._run._view.rate

    def snapshot(self) -> Snapshot:
        return self._run.snapshot()


class _RemoteCheckpoints:
    def __init__(self, run: "RemoteRun") -> None:
        self._run = run

    def list(self) -> list[CheckpointInfo]:
        return list(self._run._view.checkpoints)

    def __len__(self) -> int:
        return len(self._run._view.checkpoints)


class _RemoteTimelapse:
    def __init__(self, run: "RemoteRun") -> None:
        self._run = run

    def frames(self):
        return self._run._call("timelapse.frames")

    def __len__(self) -> int:
        return self._run._view.timelapse_frames


class RemoteRun:
    """The server's handle on a run trained in a trainer process (a `RunHandle`). Thread-safe:
    the child answers calls on a few threads of its own, and each run's controls take its lock
    there as they do here."""

    def __init__(self, pool: TrainerProcesses, child: _Child, run_id: int, name: str, config: TrainConfig) -> None:
        self.pool = pool
        self.child = child
        self.id = run_id
        self.name = name
        self._view = RunView(0, "idle", config, None, 0.0, (), 0, False)  # replaced by the child's
        self._view_seq = 0  # views numbered by `child`; guarded by pool.lock
        self._snap: Snapshot | None = None
        self._closed = False
        self._gate = threading.Condition()  # calls wait while the run moves to another process
        self._calls = 0  # calls under way (guarded by _gate)
        self._moving = False
        self._moved_at = -math.inf  # time.monotonic() of the last move
        self.telemetry = _RemoteTelemetry(self)
        self.checkpoints = _RemoteCheckpoints(self)
        self.timelapse = _RemoteTimelapse(self)

    def _call(self, name: str, *args, timeout: float = CALL_TIMEOUT_S, **kwargs):
        if self._closed:
            raise RuntimeError("this run was closed (its visitor left or started another)")
        return self._request(name, args, kwargs, timeout)

    def _request(self, name: str, args: tuple = (), kwargs: dict | None = None, timeout: float = CALL_TIMEOUT_S):
        with self._gate:
            while self._moving:
                self._gate.wait()
            self._calls += 1
            child, run_id = self.child, self.id
        try:
            return self.pool._request(child, "call", run_id, name, args, kwargs or {}, timeout=timeout)
        finally:
            with self._gate:
                self._calls -= 1
                self._gate.notify_all()

    def _move(self, target: "_Child") -> None:
        """Carry the run to `target`'s process between two of its steps: weights, Adam state, RNG,
        telemetry, checkpoints, time-lapse and settings go along, and it trains on there if it was
        training. On failure it is put back where it was."""
        with self._gate:
            while self._moving:
                self._gate.wait()
            self._moving = True
            while self._calls:
                self._gate.wait()
        try:
            if self._closed:
                return
            self._moved_at = time.monotonic()
            source, old_id = self.child, self.id
            try:  # the source keeps the stopped run until it hears how the move went
                bundle = self.pool._request(source, "call", old_id, "export", (), {})
            except BaseException:
                self._tell(source, old_id, "restore")
                raise
            new_id = next(self.pool._ids)
            with self.pool.lock:
                target.runs[new_id] = self
                self.child, self.id, self._view_seq = target, new_id, 0
            try:
                self.pool._request(target, "adopt", new_id, bundle)
            except BaseException:
                with self.pool.lock:
                    target.runs.pop(new_id, None)
                    self.child, self.id, self._view_seq = source, old_id, 0
                self._tell(target, new_id, "close")  # no copy left behind in the target
                self._tell(source, old_id, "restore")
                raise
            with self.pool.lock:
                source.runs.pop(old_id, None)
            self._tell(source, old_id, "close")
        finally:
            with self._gate:
                self._moving = False
                self._gate.notify_all()

    # --- read from the view (no call) -------------------------------------------------

    @property
    def config(self) -> TrainConfig:
        return self._view.config

    def state(self) -> str:
        return self._view.state

    @property
    def speed_limit(self) -> float | None:
        return self._view.speed_limit

    @property
    def cpu_seconds(self) -> float:
        return self._view.cpu_seconds

    @property
    def is_alive(self) -> bool:
        return self._view.attached

    @property
    def solo_reason(self) -> str | None:
        return solo_reason(self.config)

    def snapshot(self) -> Snapshot:
        """The run's snapshot, fetched from the child only when its view is newer."""
        snap, version = self._snap, self._view.version
        if self._closed:
            return dataclasses.replace(snap or Telemetry().snapshot(), state="stopped", steps_per_s=0.0)
        if self._moving and snap is not None:  # a page does not wait for a move (~0.1 s)
            return snap
        if snap is None or snap.version < version:
            if not self.child.alive:  # the last one held, saying what happened
                return dataclasses.replace(snap or Telemetry().snapshot(), version=version, state="error",
                                           message=GONE_MESSAGE, steps_per_s=0.0, config=self.config)
            answer = self._call("snapshot", snap.version if snap is not None else -1)
            fresh = apply_patch(snap, answer) if isinstance(answer, SnapshotPatch) else answer
            with self._gate:  # two readers at once: the newer stays
                if self._snap is None or self._snap.version < fresh.version:
                    self._snap = fresh
            snap = fresh
        return snap

    def view(self, make: Callable[[], SnapshotView], *args: Any) -> Any:
        """Made and answered in the child (`RunControls.view` there; the module of `make` is
        imported there at its first call); waits while the run moves (~0.1 s). A run closed, or
        whose child has gone, raises `RunUnreachable`: what it answered before is all there is."""
        try:
            if not self._closed and self.child.alive:
                return self._call("view", make, *args)
        except RuntimeError:
            if not self._closed and self.child.alive:
                raise
        if self._closed:
            raise RunUnreachable("stopped")
        raise RunUnreachable("error", GONE_MESSAGE)

    # --- controls (answered by the child) ------------------------------------------------

    def start(self, paused: bool = False) -> None:
        self._call("start", paused)

    def pause(self, message: str | None = None) -> None:
        self._call("pause", message)

    def resume(self) -> None:
        self._call("resume")

    def step(self, n: int = 1) -> None:
        self._call("step", n)

    def step_d(self) -> int:
        return self._call("step_d")

    def step_g(self) -> int:
        return self._call("step_g")

    def update(self, **changes: Any) -> TrainConfig:
        return self._call("update", **changes)

    def rewind(self, index: int) -> int:
        return self._call("rewind", index)

    def save(self, target) -> object:
        if hasattr(target, "write"):  # a file object stays here: the child sends the bytes
            data = self._call("save_bytes")
            target.write(data)
            return None
        return self._call("save", os.fspath(Path(target).resolve()))

    def reset(self, config: TrainConfig | None = None, csv_bytes: bytes | None = None) -> None:
        self._call("reset", config, csv_bytes)
        self._snap = None

    def set_speed(self, steps_per_s: float | None) -> None:
        self._call("set_speed", steps_per_s)

    def checkpoint_now(self) -> int:
        return self._call("checkpoint_now")

    def publish_frame(self) -> None:
        self._call("publish_frame")

    def open_loaded(self, history: History | None, timelapse: TimelapseRecorder, message: str) -> None:
        self._call("open_loaded_tensors", history, timelapse.to_tensors(), message)

    def stop(self, timeout: float = 10.0) -> None:
        if self.child.alive:
            self._call("stop", timeout, timeout=timeout + CALL_TIMEOUT_S)

    def _tell(self, child: "_Child", run_id: int, call: str) -> None:
        """Settle a move in one process, best effort: a process that cannot be told ("restore",
        "close") keeps the stopped copy until it exits, and the failure is logged."""
        try:
            self.pool._request(child, "call", run_id, call, (), {})
        except Exception:
            log.exception("run %s: %r in trainer process %d failed during a move", self.name, call, child.index)

    def close(self) -> None:
        """Stop the run and drop it from its child (the visitor left); later calls raise."""
        if self._closed:
            return
        self._closed = True  # from now on a snapshot reads "stopped" without asking the child
        try:
            if self.child.alive:
                self._request("close")
        finally:
            self.pool._forget(self)


# --- the child side ------------------------------------------------------------------------------


class _Host:
    """A child's runs, answering the server's calls on a few threads."""

    def __init__(self, conn: Connection, chunk_s: float) -> None:
        self.conn = conn
        self.trainer = Trainer(n_threads=1, chunk_s=chunk_s,
                               on_thread_start=lower_priority if PER_THREAD_PRIORITY else None)
        self.runs: dict[int, Any] = {}
        self.sent: dict[int, RunView] = {}  # the last view sent of each run
        self.exported: dict[int, dict] = {}  # runs stopped for a move: their controls before it
        self.snaps: dict[int, Snapshot] = {}  # the last snapshot sent of each run (`snapshot_patch`)
        self._seq = itertools.count(1)
        self.lock = threading.Lock()  # guards runs, sent, exported, snaps and the numbering
        self.send_lock = threading.Lock()  # one message at a time on the socket (never held with `lock`)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="gan-trainer-call")

    def serve(self) -> None:
        views_at = capacity_at = 0.0
        try:
            self.trainer.meter()  # calibrated before the first run arrives (see capacity.py)
            while True:
                if time.monotonic() - capacity_at >= CAPACITY_S:
                    capacity = self.trainer.capacity()
                    self._send(("capacity", capacity["units_per_s"], capacity["measured"]))
                    capacity_at = time.monotonic()
                if self.conn.poll(VIEW_S):
                    message = pickle.loads(self.conn.recv_bytes())
                    if message[0] == "close":
                        break
                    self.pool.submit(self._answer, message)
                if time.monotonic() - views_at >= VIEW_S:
                    self._send_views()
                    views_at = time.monotonic()
        except (EOFError, OSError):
            pass  # the server went away
        finally:
            self._close_all()

    def _close_all(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
        for run in runs:
            try:
                run.stop()
            except Exception:
                log.exception("run %s did not stop", run.name)

    def _view(self, run_id: int) -> tuple[int, RunView] | None:
        """(number, view) of a run, numbered before it is read; None once the run is gone.
        Marked as sent: the caller sends it."""
        with self.lock:
            run = self.runs.get(run_id)
            seq = next(self._seq)
        if run is None:
            return None
        view = _view_of(run)
        with self.lock:
            if run_id not in self.runs:
                return None
            self.sent[run_id] = view
        return seq, view

    def _send_views(self) -> None:
        with self.lock:
            ids = [i for i in self.runs if i not in self.exported]
        views = {}
        for run_id in ids:
            with self.lock:
                last = self.sent.get(run_id)
            numbered = self._view(run_id)
            if numbered is not None and numbered[1] != last:
                views[run_id] = numbered
        if views:
            self._send(("views", views))

    def _send(self, message: tuple) -> None:
        data = _dumps(message)
        with self.send_lock:
            self.conn.send_bytes(data)

    def _answer(self, message: tuple) -> None:
        kind, call, run_id = message[:3]
        try:
            if kind == "new":
                ok, value = True, self._new(run_id, *message[3:])
            elif kind == "adopt":
                ok, value = True, self._adopt(run_id, *message[3:])
            else:
                ok, value = True, self._run_call(run_id, *message[3:])
        except Exception as exc:
            ok, value = False, _picklable_error(exc)
        try:
            try:
                moving = kind == "call" and message[3] == "export"  # its "stopped" is not news
                numbered = None if moving else self._view(run_id)
                data = _dumps(("reply", call, ok, value, run_id, numbered))
            except Exception as exc:  # an answer that cannot travel still gets one
                log.exception("call %s could not be answered", message[3] if kind == "call" else kind)
                data = _dumps(("reply", call, False, RuntimeError(f"the trainer process could not answer: {exc}"),
                               run_id, None))
            with self.send_lock:
                self.conn.send_bytes(data)
        except (OSError, EOFError):
            pass  # the server went away; serve() ends too

    def _new(self, run_id: int, config: TrainConfig, kwargs: dict, packed) -> None:
        if packed is not None:
            kwargs = dict(kwargs, engine=unpack_engine(packed))
        run = new_run(config, self.trainer, **kwargs)
        with self.lock:
            self.runs[run_id] = run

    def _export(self, run_id: int, run) -> dict:
        """A 2-D run's everything, for another process (`_adopt` there): `CohortRunner.to_bundle`.
        The run is stopped and stays here until the server says "close" (moved) or "restore"
        (the move failed: it goes on as it was)."""
        if not isinstance(run, CohortRunner):
            raise RuntimeError("only a 2-D run moves to another trainer process")
        with self.lock:  # before the stop: its "stopped" view is not news (`_send_views`)
            self.exported[run_id] = run.controls()
        return run.to_bundle()

    def _adopt(self, run_id: int, bundle: dict) -> None:
        """Go on training a run `_export`ed by another process."""
        run = CohortRunner.from_bundle(bundle, self.trainer)
        with self.lock:
            self.runs[run_id] = run

    def _run_call(self, run_id: int, name: str, args: tuple, kwargs: dict):
        if name not in CALLS:
            raise ValueError(f"unknown call {name!r}")
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            raise RuntimeError("this run is gone from its trainer process")
        if name == "close":  # forgotten first, so a stop that fails leaves nothing behind
            with self.lock:
                self.runs.pop(run_id, None)
                self.sent.pop(run_id, None)
                self.snaps.pop(run_id, None)
                self.exported.pop(run_id, None)
            run.stop()
            return None
        if name == "export":
            return self._export(run_id, run)
        if name == "restore":  # a move that failed: go on here as before
            run.continue_as(self.exported.pop(run_id))
            return None
        if name == "snapshot":  # against the one the server holds (its version), when it was ours
            (held,) = args
            snap = run.snapshot()
            with self.lock:
                old = self.snaps.get(run_id)
                if old is None or old.version < snap.version:
                    self.snaps[run_id] = snap
            return snapshot_patch(old, snap) if old is not None and old.version == held else snap
        if name == "save_bytes":
            buffer = io.BytesIO()
            run.save(buffer)
            return buffer.getvalue()
        if name == "open_loaded_tensors":  # the time-lapse crosses as tensors (no pickled recorder)
            history, tensors, message = args
            return run.open_loaded(history, TimelapseRecorder.from_tensors(tensors, run.engine.step_count), message)
        target = run
        for part in name.split("."):
            target = getattr(target, part)
        return target(*args, **kwargs)


def pin_to_one_core(index: int) -> int | None:
    """Keep this process on one core (the `index`-th it may use), so that the kernel never stacks
    two trainer processes on one core; returns that core. Only Linux lets a process choose
    (`os.sched_setaffinity`): elsewhere (macOS) the scheduler spreads them and this returns None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    core = cores[index % len(cores)]
    os.sched_setaffinity(0, {core})
    return core


# Linux schedules threads one by one (`sched_setscheduler(0, …)` and `nice` act on the calling
# thread): there only a trainer process's training thread is lowered, so its threads that answer
# the server (a page's snapshot) preempt training at once instead of queueing behind it. Elsewhere
# (macOS) the priority is the process's.
PER_THREAD_PRIORITY = sys.platform.startswith("linux")


def lower_priority() -> str:
    """Let every ordinary thread run before this one (Linux: this thread; elsewhere: this process);
    returns how. SCHED_IDLE where there is one, so a page's request preempts a training chunk at
    once (at nice 10 a class's poll round trips had a p95 ~6x a lone page's); else nice 10."""
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return "SCHED_IDLE"
        except OSError:  # a sandbox may forbid it
            pass
    os.nice(TRAINER_NICE)
    return f"nice {TRAINER_NICE}"


def _child_main(argv: list[str]) -> None:
    import torch

    if not PER_THREAD_PRIORITY:
        lower_priority()  # the whole process, before any thread starts
    torch.set_num_threads(int(os.environ.get("GAN_CLASSROOM_TORCH_THREADS", "1")))
    fd, chunk_s, index = int(argv[0]), float(argv[1]), int(argv[2])
    pin_to_one_core(index)
    conn = Connection(socket.socket(fileno=fd).detach())
    _Host(conn, chunk_s).serve()


if TYPE_CHECKING:  # checked by a type checker: a RemoteRun is a RunHandle
    def _is_a_handle(run: RemoteRun) -> RunHandle:
        return run


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s trainer process: %(message)s")
    # Through the package's module, so the classes pickled to the server are gan_core.processes'
    # (not __main__'s copies).
    from gan_core.serve.processes import _child_main as main

    main(sys.argv[1:])
