"""Measure the page in a real browser: Debian's headless Chromium driven by Playwright.

What it is: the launch flags, and one `sample()` of the page's memory and CPU
(JS heap after a forced garbage collection, DOM counters, renderer RSS and CPU
time from /proc), shared by the browser benchmark and the browser tests.
What it is not: a test or a benchmark itself; it never downloads a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import asdict, dataclass

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 # Exact (not bucketed) performance.memory figures, so small growth is visible.
                 "--enable-precise-memory-info"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright, **kw):
    """Headless Chromium with the flags this project needs (no sandbox, no GPU, no network chatter)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True, **kw)


@dataclass(frozen=True)
class Sample:
    t_s: float
    heap_mb: float  # JS heap in use, as the page sees it
    heap_after_gc_mb: float  # what is still reachable after a forced GC: the leak indicator
    dom_nodes: int
    js_event_listeners: int
    renderer_rss_mb: float  # the page's renderer process (the largest renderer)
    renderer_cpu_s: float  # its user+system CPU time so far
    gpu_cpu_s: float  # the GPU process (software WebGL/compositing here: --disable-gpu)
    chromium_rss_mb: float  # every Chromium process (browser, GPU, utility, renderers)
    chromium_cpu_s: float

    def as_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


class PageProbe:
    """Samples one Playwright page; `t0` is when the probe was made."""

    def __init__(self, page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Performance.enable")
        self.t0 = time.monotonic()

    def collect_garbage(self) -> None:
        self.cdp.send("HeapProfiler.collectGarbage")

    def heap_mb(self) -> float:
        return self.cdp.send("Runtime.getHeapUsage")["usedSize"] / 2**20

    def sample(self) -> Sample:
        heap = self.heap_mb()
        self.collect_garbage()
        heap_gc = self.heap_mb()
        counters = self.cdp.send("Memory.getDOMCounters")
        procs = chromium_processes()
        renderer = max((p for p in procs if p.kind == "renderer"), key=lambda p: p.rss_mb,
                       default=Proc(0, "renderer", 0.0, 0.0))
        return Sample(t_s=time.monotonic() - self.t0, heap_mb=heap, heap_after_gc_mb=heap_gc,
                      dom_nodes=counters["nodes"], js_event_listeners=counters["jsEventListeners"],
                      renderer_rss_mb=renderer.rss_mb, renderer_cpu_s=renderer.cpu_s,
                      gpu_cpu_s=sum(p.cpu_s for p in procs if p.kind == "gpu-process"),
                      chromium_rss_mb=sum(p.rss_mb for p in procs), chromium_cpu_s=sum(p.cpu_s for p in procs))


@dataclass(frozen=True)
class Proc:
    pid: int
    kind: str  # "renderer", "gpu-process", "utility", "zygote", "browser"
    rss_mb: float
    cpu_s: float


def chromium_processes(root: int | None = None) -> list[Proc]:
    """Chromium processes descended from `root` (default: this Python process, which
    started Playwright's driver, which started the browser)."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    out = []
    for pid in parents:
        p, seen = pid, 0
        while p in parents and p != root and seen < 64:
            p, seen = parents[p], seen + 1
        if p != root or pid == root:
            continue
        proc = _read_proc(pid)
        if proc is not None:
            out.append(proc)
    return out


def _read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()  # child processes rewrite theirs as one space-separated string
        if b"chrom" not in os.path.basename(cmdline.split(b"\0")[0].split(b" ")[0]):
            return None
        kind = m.group(1).decode() if (m := re.search(rb"--type=([\w-]+)", cmdline)) else "browser"
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
        rss_mb = 0.0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_mb = int(line.split()[1]) / 1024
        return Proc(pid, kind, rss_mb, cpu_s)
    except (OSError, IndexError, ValueError):
        return None
