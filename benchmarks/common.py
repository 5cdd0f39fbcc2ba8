"""What every benchmark shares: the machine it ran on, the app in a subprocess, and the
memory and CPU of a process tree read from /proc (Linux; the benchmarks are run there).

Not here: any measurement (the other modules of this package).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent  # the repository: where `python app.py` runs


def env() -> dict:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other work on a shared machine
    return dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                load_average_1min=None if load is None else round(load, 1),
                cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                python=platform.python_version())



def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def launched_app(**env):
    """`python app.py` in a subprocess on a free port (extra environment `env`): yields
    (process, url); the server is stopped on exit."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", **env)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield server, f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(10)


def connect(url: str, timeout: float = 60.0):
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(url, verbose=False)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def tree_rss_mb(pid: int) -> float:
    """RSS of process `pid` and its descendants (the server with its trainer processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {pid}, [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(rss_mb(p) for p in tree)


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


SCHED_IDLE = 5  # Linux's policy number: a trainer process's training thread (`processes.lower_priority`)


def trainer_answer_cpu_s(pid: int) -> float | None:
    """CPU seconds the trainer processes of server `pid` spent outside training (answering the
    server: the pages' figures, snapshots, their runs' messages) so far: the run time of their
    threads that train at neither SCHED_IDLE nor a positive nice value (`processes.lower_priority`
    lowers only the training threads on Linux), from Linux's per-thread `schedstat`, in
    nanoseconds. Threads that exited are not counted (a child's answering threads stay). None
    where there is no `/proc` (not Linux)."""
    total = 0
    try:
        children = set()
        for task in os.listdir(f"/proc/{pid}/task"):  # a child spawned by any thread of the server
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    children.update(f.read().split())
            except OSError:
                continue
    except OSError:
        return None
    for child in children:
        try:
            tids = os.listdir(f"/proc/{child}/task")
        except OSError:  # the child exited meanwhile
            continue
        for tid in tids:
            try:
                with open(f"/proc/{child}/task/{tid}/sched") as f:
                    policy = next(int(line.split(":")[1]) for line in f if line.startswith("policy"))
                with open(f"/proc/{child}/task/{tid}/stat") as f:
                    nice = int(f.read().rsplit(")", 1)[1].split()[16])
                with open(f"/proc/{child}/task/{tid}/schedstat") as f:
                    run_ns = int(f.read().split()[0])
            except (OSError, StopIteration, ValueError, IndexError):  # the thread ended meanwhile
                continue
            if policy != SCHED_IDLE and nice <= 0:
                total += run_ns
    return total / 1e9


def server_and_trainer_cpu_s(pid: int) -> tuple[float, float]:
    """(server `pid`'s CPU seconds (`cpu_s`), its trainer processes' outside training
    (`trainer_answer_cpu_s`; NaN where that is not measurable)) so far."""
    answer = trainer_answer_cpu_s(pid)
    return cpu_s(pid), math.nan if answer is None else answer


def cpu_s(pid: int) -> float:
    """CPU seconds process `pid` has run so far, all its threads (exited ones too), to the
    nanosecond: Linux's CPU-time clock of the process (`clock_getcpuclockid`'s id, built as the
    kernel does: `(~pid << 3) | 2`). Elsewhere, or if that clock is refused: the user + system
    time of `/proc/<pid>/stat`, counted in clock ticks (10 ms) by sampling — too coarse to tell
    25 polls of 3 ms from 25 of 2.5 ms in a window of 10 s."""
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except (OSError, ValueError, OverflowError):
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
