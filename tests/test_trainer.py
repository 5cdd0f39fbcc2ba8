"""Tests for gan_core/serve/trainer.py: runs sharing trainer threads keep every control a solo
`Runner` has (pause, step, live change, rewind, save/load, NaN pause), shape changes move
a run to a matching cohort with its Adam state, and no thread outlives its runs."""

from __future__ import annotations

import threading

import pytest
import torch

from gan_core.checkpoints import capture, load_run
from gan_core.engine import Engine
from gan_core.serve.runner import Runner
from gan_core.serve.capacity import step_cost
from gan_core.serve.trainer import CohortRunner, Trainer, new_run


@pytest.fixture
def trainer():
    return Trainer(n_threads=2, chunk_s=0.01)


@pytest.fixture
def runs(trainer, tiny, no_leaked_threads):
    made = [CohortRunner(tiny(seed=i, pack=2, ema_decay=0.99), trainer=trainer, name=f"gan-t{i}",
                         eval_interval_s=0.05) for i in range(4)]
    yield made
    for r in made:
        r.stop()


def steps(run) -> int:
    return run.engine.step_count


def trainer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("gan-trainer") and t.is_alive()]


def test_runs_share_two_threads_and_all_advance(runs, trainer, wait_until):
    for r in runs:
        r.start()
    wait_until(lambda: all(steps(r) >= 50 for r in runs), what="every run trained 50 steps")
    assert len(trainer_threads()) == 2
    stats = trainer.stats()
    assert sum(w["runs"] for w in stats["workers"]) == 4
    assert sorted(n for w in stats["workers"] for n in w["cohorts"]) == [2, 2]  # balanced: 2 per thread
    wait_until(lambda: all(r.snapshot().frame is not None and r.snapshot().step > 0 for r in runs),
               what="a frame per run")
    assert all(r.state() == "running" for r in runs)


def test_pause_and_step_one_member_while_the_others_train(runs, wait_until):
    for r in runs:
        r.start()
    wait_until(lambda: steps(runs[0]) > 20)
    runs[0].pause()
    wait_until(lambda: runs[0].state() == "paused")
    frozen = steps(runs[0])
    others = [steps(r) for r in runs[1:]]
    wait_until(lambda: all(steps(r) > s + 50 for r, s in zip(runs[1:], others)), what="the others go on")
    assert steps(runs[0]) == frozen
    runs[0].step(7)
    wait_until(lambda: steps(runs[0]) == frozen + 7)
    assert runs[0].state() == "paused"


def test_live_change_and_batch_size_migration_keep_adam_state(tiny, wait_until, no_leaked_threads):
    trainer = Trainer(n_threads=1, chunk_s=0.01)
    made = [CohortRunner(tiny(seed=i, batch_size=32 if i == 3 else 16), trainer=trainer, name=f"gan-m{i}")
            for i in range(4)]
    try:
        for r in made:
            r.start()
        cohorts = lambda: sorted(trainer.stats()["workers"][0]["cohorts"])
        wait_until(lambda: cohorts() == [3] and steps(made[1]) > 30, what="three of batch 16 share, one solo")
        made[1].update(batch_size=32, g_lr=2e-3)
        wait_until(lambda: cohorts() == [2, 2], what="the changed run joins the batch-32 run")
        wait_until(lambda: steps(made[1]) > 80)
        ckpt = made[1]._call(lambda: capture(made[1].engine))
        # Adam's t counts every update since step 0: the state came along, it did not restart.
        assert {float(s["step"]) for s in ckpt.d_opt_state["state"].values()} == {float(ckpt.step)}
        assert ckpt.config.g_lr == 2e-3 and ckpt.config.batch_size == 32
        assert all(r.state() == "running" for r in made)
    finally:
        for r in made:
            r.stop()


def test_nan_pauses_only_that_run(runs, wait_until):
    for r in runs:
        r.start()
    wait_until(lambda: all(steps(r) > 10 for r in runs))

    def poison():
        with torch.no_grad():
            runs[2].engine.D.mlp.linears[0].weight.fill_(float("nan"))

    runs[2]._call(poison)
    wait_until(lambda: runs[2].state() == "paused", what="the poisoned run pauses")
    assert "NaN" in runs[2].snapshot().message
    others = [steps(r) for r in runs]
    wait_until(lambda: all(steps(r) > s + 30 for i, (r, s) in enumerate(zip(runs, others)) if i != 2))
    assert all(runs[i].state() == "running" for i in (0, 1, 3))


def test_rewind_save_and_load_between_solo_and_cohort(runs, tiny, tmp_path, wait_until, no_leaked_threads):
    for r in runs:
        r.start()
    wait_until(lambda: steps(runs[3]) > 40)
    index = runs[3].checkpoint_now()
    kept = runs[3].checkpoints.get(index)
    assert runs[3].rewind(index) == kept.step
    assert runs[3].state() == "paused" and steps(runs[3]) == kept.step
    path = runs[3].save(tmp_path / "member.safetensors")
    solo = load_run(path, device="cpu")  # a cohort member's file is a solo Engine's file
    for a, b in zip(solo.G.parameters(), kept.g_state.values()):
        assert torch.equal(a, b)
    # ... and a solo run's file continues inside a cohort.
    runner = Runner(tiny(seed=9, pack=2), name="gan-solo")
    runner.step(25)
    wait_until(lambda: runner.engine.step_count == 25)
    runner.stop()
    solo_path = runner.save(tmp_path / "solo.safetensors")
    member = CohortRunner(runner.config, trainer=runs[0].trainer, engine=load_run(solo_path, device="cpu"),
                          name="gan-loaded")
    try:
        member.start()
        wait_until(lambda: member.engine.step_count > 60)
    finally:
        member.stop()


def test_threads_end_when_every_run_stops(trainer, tiny, wait_until, no_leaked_threads):
    made = [CohortRunner(tiny(seed=i), trainer=trainer, name=f"gan-x{i}") for i in range(3)]
    for r in made:
        r.start()
    wait_until(lambda: all(steps(r) > 5 for r in made))
    for r in made:
        r.stop()
    wait_until(lambda: not trainer_threads(), what="trainer threads gone")
    assert trainer.threads_alive() == 0


def test_every_training_thread_calls_the_trainers_start_hook_first(tiny, wait_until, monkeypatch,
                                                                  no_leaked_threads):
    """A trainer process lowers the priority of its training threads only (`on_thread_start`):
    the cohort threads' and those of a run on a thread of its own (digits; here every run, with
    GAN_CLASSROOM_COHORTS=0), never the thread that made them."""
    started = []
    trainer = Trainer(n_threads=1, chunk_s=0.01, on_thread_start=lambda: started.append(threading.current_thread()))
    cohort_run = CohortRunner(tiny(seed=0), trainer=trainer)
    monkeypatch.setenv("GAN_CLASSROOM_COHORTS", "0")
    own_thread = new_run(tiny(seed=1), trainer)
    assert isinstance(own_thread, Runner)
    try:
        for run in (cohort_run, own_thread):
            run.start()
        wait_until(lambda: steps(cohort_run) > 3 and steps(own_thread) > 3)
        names = sorted(t.name for t in started)
        assert len(names) == 2 and names[0].startswith("gan-run") and names[1].startswith("gan-trainer"), names
        assert threading.current_thread() not in started
    finally:
        for run in (cohort_run, own_thread):
            run.stop()


def test_digits_stay_solo_and_cost_more(trainer, tiny):
    from gan_core.config import TrainConfig

    assert step_cost(TrainConfig(dataset="digits", device="cpu")) > 10 * step_cost(tiny())
    with pytest.raises(ValueError, match="own thread"):
        CohortRunner(TrainConfig(dataset="digits", device="cpu", width=4, batch_size=8), trainer=trainer)


def test_wgan_gp_trains_solo_inside_the_trainer(trainer, tiny, wait_until, no_leaked_threads):
    run = CohortRunner(tiny(loss="wgan-gp"), trainer=trainer, name="gan-wgan")
    assert "WGAN-GP" in run.solo_reason
    run.start()
    try:
        wait_until(lambda: steps(run) > 20)
        assert all(not w["cohorts"] for w in trainer.stats()["workers"])
    finally:
        run.stop()
    assert isinstance(run.engine, Engine)


def test_a_slowed_run_keeps_the_pace_from_its_first_step(trainer, tiny, wait_until, no_leaked_threads):
    """At 2 steps/s each step comes half a second after the one before, the first two included
    (set_speed once let a cohort-trained run take two at once). Checked on the run's own clock
    (the telemetry's wall-time column): a busy machine can only stretch the gaps."""
    run = CohortRunner(tiny(seed=2), trainer=trainer, name="gan-slow")
    try:
        run.set_speed(2.0)
        run.start()
        wait_until(lambda: run.snapshot().step >= 4, timeout=30, what="four slowed steps")
        run.pause()
        recent = run.snapshot().recent
        times = dict(zip(recent[:, 0].astype(int), recent[:, 1]))
        gaps = [times[s + 1] - times[s] for s in range(1, 4)]
        assert min(gaps) >= 0.4, f"steps came {gaps} s apart at 2 steps/s"
    finally:
        run.stop()
