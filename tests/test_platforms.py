"""Teachers run the app on macOS and Windows too: trainer processes where the OS can run them,
pinned to a core only where it lets a process choose, threads where it cannot spawn them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gan_core.config import default_config
from gan_core.serve import processes

ROOT = Path(__file__).resolve().parent.parent


def test_pinning_needs_sched_getaffinity_and_is_skipped_without_it(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    assert processes.pin_to_one_core(0) is None


def test_lower_priority_falls_back_to_nice_without_sched_idle(monkeypatch):
    """macOS has no SCHED_IDLE: a trainer process is niced instead."""
    niced = []
    monkeypatch.delattr(os, "SCHED_IDLE", raising=False)
    monkeypatch.setattr(os, "nice", niced.append, raising=False)
    assert processes.lower_priority() == f"nice {processes.TRAINER_NICE}"
    assert niced == [processes.TRAINER_NICE]


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux only")
def test_trainer_processes_yield_to_the_web_server_on_linux(wait_until):
    """Training yields to everything (SCHED_IDLE); the trainer process's threads that answer the
    server do not, so a page's snapshot does not queue behind a training chunk."""
    pool = processes.TrainerProcesses(1, balance_s=None)
    try:
        run = pool.create(default_config("ring8", width=8, batch_size=16))
        run.start()
        wait_until(lambda: run.snapshot().step > 10)  # the child answered while training
        (pid,) = [w["pid"] for w in pool.stats()["workers"]]
        policies = {int(tid): os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")}
        assert policies.pop(pid) != os.SCHED_IDLE, "the process's main thread answers the server"
        assert list(policies.values()).count(os.SCHED_IDLE) == 1, "only the training thread yields"
        assert os.sched_getscheduler(0) != os.SCHED_IDLE, "the server itself keeps its priority"
    finally:
        pool.close()


def test_no_trainer_processes_where_pass_fds_is_missing(monkeypatch):
    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.delenv("GAN_CLASSROOM_PROCESSES", raising=False)
    assert not processes.processes_supported()
    assert processes.default_processes() == 0
    monkeypatch.setenv("GAN_CLASSROOM_PROCESSES", "2")
    assert processes.default_processes() == 0, "asking for processes cannot make Windows spawn them"


@pytest.mark.skipif(os.name != "posix", reason="spawns trainer processes")
def test_a_run_trains_in_trainer_processes_on_an_os_without_affinity(tmp_path):
    """macOS has no os.sched_getaffinity: with it removed from every interpreter (server and trainer
    processes, through sitecustomize), runs still train in trainer processes."""
    (tmp_path / "sitecustomize.py").write_text(
        "import os\nfor name in ('sched_getaffinity', 'sched_setaffinity', 'sched_setscheduler', 'SCHED_IDLE'):\n"
        "    os.__dict__.pop(name, None)\n")
    script = textwrap.dedent("""
        import os, time
        assert not hasattr(os, "sched_getaffinity")
        from gan_core.config import default_config
        from gan_core.serve.processes import TrainerProcesses
        pool = TrainerProcesses(2, chunk_s=0.01, balance_s=None)
        try:
            runs = [pool.create(default_config("ring8", width=8, batch_size=16, seed=i)) for i in range(2)]
            for run in runs:
                run.step(20)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(r.snapshot().step < 20 for r in runs):
                time.sleep(0.05)
            print("steps", [r.snapshot().step for r in runs], "states", [r.state() for r in runs])
        finally:
            pool.close()
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "steps [20, 20]" in out.stdout and "error" not in out.stdout, out.stdout + out.stderr[-2000:]
