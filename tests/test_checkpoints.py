"""Tests for gan_core/checkpoints.py: capture/restore continue a run bit-identically,
the ring keeps the newest checkpoints, and run files round-trip and reject bad input."""

from __future__ import annotations

import io
import json
import pickle
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from gan_core.checkpoints import (
    FORMAT_VERSION, Checkpoint, CheckpointError, CheckpointRing, capture, load_run, restore, save_run,
)
from configs import tiny_config as tiny
from gan_core.config import TrainConfig
from gan_core.data import DIGITS_FILE
from gan_core.engine import Engine

needs_digits = pytest.mark.skipif(not DIGITS_FILE.exists(), reason=f"{DIGITS_FILE} not built yet")


def tiny_digits(**overrides) -> TrainConfig:
    base = dict(dataset="digits", width=4, batch_size=8, z_dim=4, seed=0, device="cpu",
                g_lr=2e-4, d_lr=2e-4)
    base.update(overrides)
    return TrainConfig(**base)


def trajectory(e: Engine, n: int) -> list[list[torch.Tensor]]:
    """Weights, buffers and Adam moments after each of `n` steps, plus the step's stats."""
    out = []
    for _ in range(n):
        e.step()
        tensors = [t.detach().clone() for m in (e.G, e.D) for t in m.state_dict().values()]
        for opt in (e.g_opt, e.d_opt):
            tensors += [opt.state[p][k].clone() for p in opt.param_groups[0]["params"]
                        for k in ("exp_avg", "exp_avg_sq", "step")]
        tensors.append(torch.from_numpy(e.drain_stats()))
        out.append(tensors)
    return out


def assert_same_trajectory(a, b):
    assert len(a) == len(b)
    for step, (ta, tb) in enumerate(zip(a, b)):
        assert len(ta) == len(tb)
        for i, (x, y) in enumerate(zip(ta, tb)):
            assert torch.equal(x, y), f"step {step}, tensor {i} differs"


# ------------------------------------------------------------------------ capture / restore

@pytest.mark.parametrize("overrides", [
    dict(),  # hand-written 2-D step
    dict(loss="wgan-gp", n_critic=2),  # autograd step with the gradient penalty (uses the RNG too)
    dict(loss="minimax", pack=4, label_smoothing=0.1),
])
def test_restore_continues_bit_identically_and_can_be_repeated(overrides):
    e = Engine(tiny(**overrides))
    for _ in range(20):
        e.step()
    e.drain_stats()
    ckpt = capture(e)
    assert ckpt.step == 20
    first = trajectory(e, 10)
    restore(e, ckpt)
    assert e.step_count == 20
    second = trajectory(e, 10)
    assert_same_trajectory(first, second)
    # Training after the first restore must not have written into the checkpoint.
    restore(e, ckpt)
    assert_same_trajectory(first, trajectory(e, 10))


def test_training_does_not_change_a_captured_checkpoint():
    e = Engine(tiny())
    for _ in range(5):
        e.step()
    ckpt = capture(e)
    frozen = [t.clone() for t in ckpt.g_state.values()] + \
             [s["exp_avg"].clone() for s in ckpt.d_opt_state["state"].values()]
    for _ in range(5):
        e.step()
    now = list(ckpt.g_state.values()) + [s["exp_avg"] for s in ckpt.d_opt_state["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(frozen, now))
    assert not torch.equal(frozen[0], e.G.state_dict()[next(iter(ckpt.g_state))])  # training did move on


def test_restore_keeps_parameter_and_grad_tensors_that_the_fast_step_references():
    e = Engine(tiny())
    for _ in range(3):
        e.step()
    ckpt = capture(e)
    params = [*e.G.parameters(), *e.D.parameters()]
    ids = [(id(p), p.data_ptr(), id(p.grad), p.grad.data_ptr()) for p in params]
    hand_g, hand_d = e._hand.g, e._hand.d
    for _ in range(5):
        e.step()
    restore(e, ckpt)
    assert [(id(p), p.data_ptr(), id(p.grad), p.grad.data_ptr()) for p in params] == ids
    assert all(a is b for a, b in zip(hand_g.params, e.G.parameters()))
    assert all(a is p.grad for a, p in zip(hand_d.grads, e.D.parameters()))
    # And the hand-written forward now computes with the restored weights.
    z = torch.randn(4, 3)
    assert torch.equal(hand_g.forward(z)[-1], e.G(z).detach())
    assert torch.equal(e.G.state_dict()["linears.0.weight"], ckpt.g_state["linears.0.weight"])


def test_restore_puts_back_the_checkpoint_config_and_discards_undrained_stats():
    e = Engine(tiny(d_lr=1e-3))
    e.step()
    ckpt = capture(e)
    e.apply(e.config.with_live(d_lr=5e-3, loss="lsgan", batch_size=32, label_smoothing=0.2))
    e.step()
    restore(e, ckpt)
    assert e.config == ckpt.config
    assert e.d_opt.param_groups[0]["lr"] == 1e-3 and e.loss.name == "nonsaturating"
    assert e.real_buf.shape[0] == 16
    assert len(e.drain_stats()) == 0  # the abandoned step's row is gone


def test_restore_at_step_zero_clears_adam_state():
    e = Engine(tiny())
    ckpt = capture(e)
    first = trajectory(e, 3)
    restore(e, ckpt)
    assert all(len(opt.state) == 0 for opt in (e.g_opt, e.d_opt))
    assert_same_trajectory(first, trajectory(e, 3))


def test_restore_rejects_a_checkpoint_of_another_architecture_and_leaves_the_engine_alone():
    other = capture(Engine(tiny(width=16)))
    e = Engine(tiny())
    e.step()
    before = [t.clone() for t in e.G.state_dict().values()]
    with pytest.raises(CheckpointError, match="width"):
        restore(e, other)
    # Same frozen fields but a tampered tensor shape: named in the message.
    bad = capture(e)
    bad.g_state["linears.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError, match=r"G/linears.0.weight has shape \(3, 3\)"):
        restore(e, bad)
    assert all(torch.equal(a, b) for a, b in zip(before, e.G.state_dict().values()))
    assert e.step_count == 1


@needs_digits
def test_dcgan_restore_includes_batchnorm_statistics():
    e = Engine(tiny_digits())
    for _ in range(3):
        e.step()
    e.drain_stats()
    ckpt = capture(e)
    assert "net.2.running_mean" in ckpt.g_state and "net.3.num_batches_tracked" in ckpt.d_state
    first = trajectory(e, 3)
    restore(e, ckpt)
    assert_same_trajectory(first, trajectory(e, 3))


# ------------------------------------------------------------------------ ring

def fake_ckpt(step: int, nbytes: int = 4) -> Checkpoint:
    return Checkpoint(step=step, config=tiny(), g_state={"w": torch.zeros(nbytes // 4)}, d_state={},
                      g_opt_state={"state": {}, "param_groups": []}, d_opt_state={"state": {}, "param_groups": []},
                      rng_state=torch.zeros(0, dtype=torch.uint8), rng_device="cpu", created=1e9 + step)


def test_ring_drops_the_oldest_and_keeps_stable_indices():
    ring = CheckpointRing(capacity=3)
    indices = [ring.add(fake_ckpt(s)) for s in (10, 20, 30, 40)]
    assert indices == [0, 1, 2, 3]
    infos = ring.list()
    assert [(i.index, i.step) for i in infos] == [(1, 20), (2, 30), (3, 40)]
    assert "step 40" in infos[-1].label
    assert ring.get(2).step == 30 and len(ring) == 3
    with pytest.raises(CheckpointError, match="#0 is not kept"):
        ring.get(0)
    ring.drop_after(25)
    assert [i.step for i in ring.list()] == [20]
    ring.clear()
    assert len(ring) == 0 and ring.list() == []


def test_ring_respects_its_byte_budget_but_keeps_the_newest():
    ring = CheckpointRing(capacity=10, max_bytes=100)
    for s in range(5):
        ring.add(fake_ckpt(s, nbytes=40))
    assert [i.step for i in ring.list()] == [3, 4]
    ring.add(fake_ckpt(9, nbytes=400))  # alone over budget: still kept
    assert [i.step for i in ring.list()] == [9]


def test_ring_is_consistent_under_concurrent_adds():
    ring = CheckpointRing(capacity=50)

    def worker(base):
        for s in range(100):
            ring.add(fake_ckpt(base + s))

    threads = [threading.Thread(target=worker, args=(1000 * k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    infos = ring.list()
    assert len(infos) == 50
    assert [i.index for i in infos] == list(range(350, 400))  # unique, increasing, newest kept


# ------------------------------------------------------------------------ save / load

def test_saved_run_loads_and_continues_bit_identically(tmp_path):
    e = Engine(tiny(loss="minimax", n_critic=2, label_smoothing=0.1))
    for _ in range(15):
        e.step()
    e.drain_stats()
    path = save_run(e, tmp_path)
    assert path.name == "gan-ring8-step15.safetensors" and path.exists()
    loaded = load_run(path, device="cpu")
    assert loaded.step_count == 15 and loaded.config == e.config
    assert torch.equal(loaded.eval_noise, e.eval_noise) and torch.equal(loaded.coverage_noise, e.coverage_noise)
    assert_same_trajectory(trajectory(e, 10), trajectory(loaded, 10))


def test_csv_run_round_trips_with_its_exact_points(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(40, 2))
    csv = "\n".join(f"{x},{y}" for x, y in pts).encode()
    e = Engine(tiny(dataset="csv"), csv)
    for _ in range(5):
        e.step()
    e.drain_stats()
    buf = io.BytesIO()
    assert save_run(e, buf) is None
    path = tmp_path / "run.safetensors"
    path.write_bytes(buf.getvalue())
    loaded = load_run(path, device="cpu")
    assert torch.equal(loaded.data.points, e.data.points) and torch.equal(loaded.eval_real, e.eval_real)
    assert_same_trajectory(trajectory(e, 5), trajectory(loaded, 5))


@needs_digits
def test_digit_run_started_with_wgan_gp_and_switched_live_loads_without_batchnorm(tmp_path):
    e = Engine(tiny_digits(loss="wgan-gp"))  # D built without BatchNorm
    e.step()
    e.apply(e.config.with_live(loss="hinge"))
    e.step()
    e.drain_stats()
    loaded = load_run(save_run(e, tmp_path / "d.safetensors"), device="cpu")
    assert loaded.config.loss == "hinge" and loaded.config.d_batchnorm is False
    assert_same_trajectory(trajectory(e, 2), trajectory(loaded, 2))


@needs_digits
@pytest.mark.parametrize("started_with", ["nonsaturating", "wgan-gp"])
def test_files_from_before_d_batchnorm_take_it_from_the_saved_tensors(tmp_path, started_with):
    e = Engine(tiny_digits(loss=started_with))
    e.apply(e.config.with_live(loss="hinge"))  # the saved loss no longer tells
    e.step()
    e.drain_stats()
    path = save_run(e, tmp_path / "old.safetensors")

    def drop_field(meta):
        config = json.loads(meta["config"])
        del config["d_batchnorm"]
        meta["config"] = json.dumps(config)

    loaded = load_run(rewrite(path, metadata=drop_field), device="cpu")
    assert loaded.config.d_batchnorm == (started_with != "wgan-gp")
    assert_same_trajectory(trajectory(e, 2), trajectory(loaded, 2))


def test_update_counters_are_saved_restored_and_derived_for_older_files(tmp_path):
    e = Engine(tiny(n_critic=2))
    e.step(), e.d_update(), e.g_update()
    e.drain_stats()
    assert (e.step_count, e.d_updates, e.g_updates) == (3, 3, 2)
    ckpt = capture(e)
    e.step()
    restore(e, ckpt)
    assert (e.step_count, e.d_updates, e.g_updates) == (3, 3, 2)
    path = save_run(e, tmp_path / "run.safetensors")
    loaded = load_run(path, device="cpu")
    assert (loaded.step_count, loaded.d_updates, loaded.g_updates) == (3, 3, 2)
    old = rewrite(path, metadata=lambda m: [m.pop("d_updates"), m.pop("g_updates")])
    loaded = load_run(old, device="cpu")  # older files: Adam's step counts
    assert (loaded.d_updates, loaded.g_updates) == (3, 2)
    bad = rewrite(path, metadata=lambda m: m.update(g_updates="-2"))
    with pytest.raises(CheckpointError, match="g_updates must be a whole number"):
        load_run(bad, device="cpu")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    e = Engine(tiny())
    e.step()
    path = save_run(e, tmp_path / "r.safetensors")

    def forbidden(*args, **kwargs):
        raise AssertionError("load_run must not unpickle")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    assert load_run(path, device="cpu").step_count == 1


def rewrite(path, *, tensors=None, metadata=None):
    """Re-save a run file with edited tensors/metadata."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8:8 + n])["__metadata__"]
    t = st_load(data)
    if tensors:
        tensors(t)
    if metadata:
        metadata(meta)
    path.write_bytes(st_save(t, metadata=meta))
    return path


@pytest.fixture
def run_file(tmp_path):
    e = Engine(tiny())
    for _ in range(2):
        e.step()
    return save_run(e, tmp_path / "good.safetensors")


def test_load_rejects_a_newer_format_version(run_file):
    rewrite(run_file, metadata=lambda m: m.update(format_version=str(FORMAT_VERSION + 1)))
    with pytest.raises(CheckpointError, match="format version '2' is not supported"):
        load_run(run_file, device="cpu")


def test_load_rejects_missing_tensors(run_file):
    rewrite(run_file, tensors=lambda t: t.pop("D/mlp.linears.0.bias"))
    with pytest.raises(CheckpointError, match=r"D weights do not match.*missing mlp.linears.0.bias"):
        load_run(run_file, device="cpu")


def test_load_rejects_missing_adam_moments(run_file):
    rewrite(run_file, tensors=lambda t: t.pop("g_opt/1/exp_avg_sq"))
    with pytest.raises(CheckpointError, match="g_opt/1.*missing exp_avg_sq"):
        load_run(run_file, device="cpu")


def test_load_rejects_a_shape_mismatch(run_file):
    rewrite(run_file, tensors=lambda t: t.update({"G/linears.0.weight": torch.zeros(5, 3)}))
    with pytest.raises(CheckpointError, match=r"G/linears.0.weight has shape \(5, 3\).*\(8, 3\)"):
        load_run(run_file, device="cpu")


def test_load_rejects_unexpected_tensors(run_file):
    rewrite(run_file, tensors=lambda t: t.update({"payload": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match="unexpected tensors: payload"):
        load_run(run_file, device="cpu")


def test_load_rejects_a_corrupt_rng_state_before_touching_anything(run_file):
    rewrite(run_file, tensors=lambda t: t.update({"rng": torch.zeros(7, dtype=torch.uint8)}))
    with pytest.raises(CheckpointError, match="RNG state does not fit"):
        load_run(run_file, device="cpu")
    e = Engine(tiny())
    bad = capture(e)
    object.__setattr__(bad, "rng_state", torch.zeros(7, dtype=torch.uint8))
    object.__setattr__(bad, "step", 99)
    with pytest.raises(CheckpointError, match="RNG state"):
        restore(e, bad)
    assert e.step_count == 0


def test_load_rejects_an_oversized_file(run_file):
    with pytest.raises(CheckpointError, match="over 0 MB, the limit"):
        load_run(run_file, device="cpu", max_bytes=100)


def test_load_rejects_a_malformed_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    body = b'{"__metadata__": {"format": '
    path.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(CheckpointError, match="malformed .safetensors header"):
        load_run(path)
    path.write_bytes(b"\xff" * 4)
    with pytest.raises(CheckpointError, match="too short"):
        load_run(path)
    path.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="header length is invalid"):
        load_run(path)


def test_load_rejects_malformed_metadata_json_and_bad_configs(run_file):
    rewrite(run_file, metadata=lambda m: m.update(config="{not json"))
    with pytest.raises(CheckpointError, match="'config' is malformed JSON"):
        load_run(run_file, device="cpu")
    rewrite(run_file, metadata=lambda m: m.update(config=json.dumps({**tiny().to_dict(), "g_lr": 5.0})))
    with pytest.raises(CheckpointError, match="invalid configuration: g_lr must be between"):
        load_run(run_file, device="cpu")


def test_load_rejects_other_safetensors_files(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(st_save({"w": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match="not a GAN Classroom run"):
        load_run(path)


def test_load_reports_a_missing_file_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read run file 'nope.safetensors'"):
        load_run(tmp_path / "nope.safetensors")


def test_save_refuses_a_run_too_large_to_load_again(tmp_path):
    e = Engine(tiny())
    with pytest.raises(CheckpointError, match="over the 0 MB limit"):
        save_run(e, tmp_path, max_bytes=1000)
    assert not list(tmp_path.iterdir())


def test_ema_of_g_survives_rewind_and_save_load(tmp_path):
    from gan_core.checkpoints import capture, load_run, restore, save_run
    from gan_core.config import TrainConfig
    from gan_core.engine import Engine

    engine = Engine(TrainConfig(width=8, depth=1, batch_size=16, ema_decay=0.9))
    for _ in range(10):
        engine.step()
    ckpt = capture(engine)
    ema_then = [p.clone() for p in engine.G_ema.parameters()]
    for _ in range(10):
        engine.step()
    restore(engine, ckpt)
    for a, b in zip(engine.G_ema.parameters(), ema_then):
        assert torch.equal(a, b)
    path = save_run(engine, tmp_path)
    loaded = load_run(path, device="cpu")
    for a, b in zip(loaded.G_ema.parameters(), ema_then):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------ the plots' data in a run file

def _history(step: int, n: int = 40):
    from gan_core.records import N_STATS
    from gan_core.telemetry import History

    steps = np.linspace(step / n, step, n)
    rows = np.column_stack([steps, steps / 100, np.random.default_rng(0).random((n, N_STATS))])
    coverage = np.array([[step / 2, 5, 40.0], [step, 8, 90.0]])
    return History(rows, 4, coverage, np.zeros((0, 3)), ((step // 2, "D lr 0.001→0.01"),))


def test_run_file_carries_the_plots_history_events_and_all(tmp_path):
    from gan_core.checkpoints import read_run

    e = Engine(tiny())
    for _ in range(160):
        e.step()
    history = _history(160)
    path = save_run(e, tmp_path / "run.safetensors", history=history)
    loaded, got = read_run(path, device="cpu")
    assert loaded.step_count == 160
    assert np.array_equal(got.rows, history.rows) and got.bin_size == 4
    assert np.array_equal(got.coverage, history.coverage) and got.events == history.events
    # Files saved without it still load (history None).
    assert read_run(save_run(e, tmp_path / "bare.safetensors"), device="cpu")[1] is None


@pytest.mark.parametrize("break_it, message", [
    (lambda t, m: t.update({"telemetry/history": t["telemetry/history"][:, :3].contiguous()}), "telemetry/history"),
    (lambda t, m: t.update({"telemetry/coverage": t["telemetry/coverage"] + 1e6}), "steps must rise"),
    (lambda t, m: m.update(telemetry=json.dumps({"history_bin": 4, "events": [[5, "x" * 500]]})), "events"),
    (lambda t, m: m.update(telemetry=json.dumps({"history_bin": 4, "events": [[10**9, "late"]]})), "events"),
    (lambda t, m: m.update(telemetry=json.dumps({"history_bin": 0, "events": []})), "history_bin"),
    (lambda t, m: m.update(telemetry=json.dumps({"history_bin": 1, "events": [[1, "e"]] * 10_000})), "malformed"),
])
def test_a_malformed_history_in_a_run_file_is_refused(tmp_path, break_it, message):
    from safetensors import safe_open

    e = Engine(tiny())
    for _ in range(160):
        e.step()
    good = save_run(e, tmp_path / "run.safetensors", history=_history(160))
    with safe_open(str(good), "pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    break_it(tensors, meta)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(st_save(tensors, metadata=meta))
    with pytest.raises(CheckpointError, match=message):
        load_run(bad, device="cpu")
