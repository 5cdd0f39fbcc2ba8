"""One run handle, three implementations: `Runner`, `CohortRunner` and `RemoteRun` each have
every member of `RunHandle` with the protocol's signature, and the behaviour they share
(`RunControls`) acts the same on a run alone and on a run stepped by a trainer thread."""

from __future__ import annotations

import inspect

import pytest
import torch

from gan_core.serve.handle import RunHandle
from gan_core.serve.processes import RemoteRun
from gan_core.serve.runner import Runner
from gan_core.serve.trainer import CohortRunner, Trainer

def protocol_members() -> dict[str, object]:
    members = {}
    for name, value in vars(RunHandle).items():
        if name.startswith("_"):
            continue
        members[name] = value
    members.update({name: None for name in RunHandle.__annotations__})  # attributes (`name`)
    return members


def test_the_protocol_lists_what_the_page_uses():
    assert {"start", "pause", "resume", "step", "step_d", "step_g", "update", "set_speed", "rewind", "save",
            "reset", "checkpoint_now", "publish_frame", "open_loaded", "stop", "close", "state", "snapshot",
            "config", "speed_limit", "cpu_seconds", "is_alive", "telemetry", "checkpoints", "timelapse", "view",
            "name"} <= set(protocol_members())


@pytest.fixture
def instances(tiny, no_leaked_threads):
    """One of each handle, built but never started (a RemoteRun needs no process to exist)."""
    made = [Runner(tiny(), name="gan-h0"), CohortRunner(tiny(), trainer=Trainer(n_threads=1), name="gan-h1"),
            RemoteRun(None, None, 1, "gan-h2", tiny())]
    yield made
    made[0].stop()
    made[1].stop()


def test_every_member_of_the_protocol_with_its_signature(instances):
    strip = lambda sig: [(p.name, p.kind, p.default) for p in sig.parameters.values()]
    for handle in instances:
        kind = type(handle).__name__
        assert isinstance(handle, RunHandle), kind
        for name, spec in protocol_members().items():
            assert hasattr(handle, name), f"{kind} lacks {name}"
            if inspect.isfunction(spec):
                mine, theirs = inspect.signature(getattr(type(handle), name)), inspect.signature(spec)
                assert strip(mine) == strip(theirs), f"{kind}.{name}{mine} differs from RunHandle.{name}{theirs}"
        for part, members in (("telemetry", ("version", "state", "snapshot")), ("checkpoints", ("list", "__len__")),
                              ("timelapse", ("frames", "__len__"))):
            assert all(hasattr(getattr(handle, part), m) for m in members), f"{kind}.{part}"


@pytest.fixture(params=["runner", "cohort"])
def handle(request, tiny, no_leaked_threads):
    """A tiny run on its own thread, and one stepped by a trainer thread among others."""
    trainer = Trainer(n_threads=1, chunk_s=0.01)
    others = []
    if request.param == "runner":
        made = Runner(tiny(), name="gan-h", chunk_s=0.005, eval_interval_s=0.05)
    else:
        made = CohortRunner(tiny(), trainer=trainer, name="gan-h", eval_interval_s=0.05)
        others = [CohortRunner(tiny(seed=i), trainer=trainer, name=f"gan-o{i}") for i in range(2)]
    yield made, others
    for run in (made, *others):
        run.stop()


def test_nan_weights_pause_with_the_one_message(handle, wait_until):
    """Weights set to NaN before training: both kinds of handle pause at once with the same text."""
    run, others = handle
    with torch.no_grad():
        next(run.engine.G.parameters()).fill_(float("nan"))
    for other in others:
        other.start()
    run.start()
    wait_until(lambda: run.state() == "paused" and "NaN" in run.snapshot().message, what="a NaN pause")
    assert run.snapshot().message.startswith("Paused at step ") and "Lower the learning rates" in run.snapshot().message


def test_slow_motion_publishes_a_frame_for_every_step(handle, wait_until):
    """At 10 steps/s or slower every step is drawn, on its own thread or on a trainer's: each frame's
    previous frame is the step before it (however late the frames are looked at)."""
    run, others = handle
    for other in others:
        other.start()
    run.set_speed(10)
    run.start()
    wait_until(lambda: run.snapshot().step >= 3, timeout=20)
    pairs = {}

    def look() -> bool:
        snap = run.snapshot()
        if snap.frame is not None and snap.previous_frame is not None:
            pairs[snap.frame.step] = snap.previous_frame.step
        return len(pairs) >= 6

    wait_until(look, timeout=20, interval=0.01)
    skipped = {step: before for step, before in pairs.items() if before != step - 1}
    assert not skipped, f"frames skipped steps (frame step: the frame before it): {skipped}"
