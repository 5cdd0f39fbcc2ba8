"""Tests for gan_core/serve/cohort.py: a member reproduces a solo `Engine`, members never
touch each other (live changes, NaN), and join/leave keep weights and Adam state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gan_core.serve.cohort import Cohort, cohort_key, solo_reason
from gan_core.config import TrainConfig
from gan_core.engine import Engine


def tiny(**overrides) -> TrainConfig:
    base = dict(dataset="ring8", width=8, depth=2, batch_size=16, z_dim=3, pack=2, seed=0, device="cpu",
                ema_decay=0.99)
    base.update(overrides)
    return TrainConfig(**base)


# Five different students: learning rates, losses, k, one- and two-sided smoothing, lr decay, no EMA.
CLASS = [
    tiny(seed=0),
    tiny(seed=1, loss="lsgan", g_lr=3e-4, lr_decay_steps=40),
    tiny(seed=2, n_critic=3, label_smoothing=0.1, d_lr=2e-3),
    tiny(seed=3, loss="hinge", beta1=0.0, beta2=0.9, ema_decay=0.0),
    tiny(seed=4, loss="minimax", label_smoothing=0.2, two_sided_smoothing=True, n_critic=2, dataset="grid25"),
]


def state(e: Engine) -> list[torch.Tensor]:
    tensors = [*e.G.parameters(), *e.D.parameters(), *(e.G_ema.parameters() if e.G_ema is not None else [])]
    for opt in (e.g_opt, e.d_opt):
        tensors += [t for s in opt.state.values() for t in (s["step"], s["exp_avg"], s["exp_avg_sq"])]
    return [t.detach().clone() for t in tensors]


def make_cohort(configs) -> tuple[Cohort, list[Engine]]:
    engines = [Engine(c) for c in configs]
    cohort = Cohort(cohort_key(configs[0], "cpu"))
    for e in engines:
        cohort.join(e)
    return cohort, engines


def train(cohort: Cohort, n: int) -> None:
    for _ in range(n):
        cohort.step()


def exported(cohort: Cohort, engines) -> list[list[torch.Tensor]]:
    for e in engines:
        cohort.export(e)
    return [state(e) for e in engines]


@pytest.mark.parametrize("member", range(len(CLASS)))
def test_member_reproduces_its_solo_run(member):
    solo = Engine(CLASS[member])
    for _ in range(30):
        solo.step()
    cohort, engines = make_cohort(CLASS)
    train(cohort, 30)
    mine = engines[member]
    cohort.export(mine)
    assert mine.step_count == solo.step_count == 30
    assert torch.equal(mine.rng.get_state(), solo.rng.get_state())  # same draws, same order
    for a, b in zip(state(mine), state(solo), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mine.drain_stats(), solo.drain_stats(), rtol=1e-3, atol=1e-4)
    # After the cohort's steps, lone updates repeat the other network's last statistics (and
    # gradient norm) in their rows, as the solo engine's do: G first (D's row and gradients come
    # from the cohort, also for a member whose k is below the cohort's largest), then D, then G
    # again the way the trainer runs a command (export, update, reload, export when leaving).
    for e in (mine, solo):
        e.g_update()
    np.testing.assert_allclose(mine.drain_stats(), solo.drain_stats(), rtol=1e-3, atol=1e-4)
    cohort.reload(mine)
    for e in (mine, solo):
        e.d_update()
    cohort.reload(mine)
    cohort.export(mine)
    for e in (mine, solo):
        e.g_update()
    np.testing.assert_allclose(mine.drain_stats(), solo.drain_stats(), rtol=1e-3, atol=1e-4)


def test_a_lone_update_between_cohort_steps_keeps_the_member_on_its_solo_run():
    """A lone D update (a command) counts a step but no G update: the EMA's warm-up, which
    follows the G updates, must not run ahead when the member trains on in the cohort."""
    solo = Engine(CLASS[0])  # with an EMA of G
    cohort, (mine, _) = make_cohort([CLASS[0], CLASS[3]])
    for _ in range(5):
        solo.step()
    train(cohort, 5)
    cohort.export(mine)
    for e in (mine, solo):
        e.d_update()
    cohort.reload(mine)
    for _ in range(10):
        solo.step()
    train(cohort, 10)
    cohort.export(mine)
    assert (mine.step_count, mine.g_updates) == (solo.step_count, solo.g_updates) == (16, 15)
    for a, b in zip(state(mine), state(solo), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_live_change_moves_only_that_member():
    cohort_a, engines_a = make_cohort(CLASS)
    cohort_b, engines_b = make_cohort(CLASS)
    train(cohort_a, 5)
    train(cohort_b, 5)
    engines_b[1].apply(engines_b[1].config.with_live(g_lr=5e-3, n_critic=4, loss="hinge"))
    train(cohort_a, 10)
    train(cohort_b, 10)
    a, b = exported(cohort_a, engines_a), exported(cohort_b, engines_b)
    for i in range(len(CLASS)):
        same = all(torch.equal(x, y) for x, y in zip(a[i], b[i], strict=True))
        assert same == (i != 1), f"member {i}"


def test_nan_in_one_member_stays_there():
    cohort_a, engines_a = make_cohort(CLASS)
    cohort_b, engines_b = make_cohort(CLASS)
    train(cohort_a, 3)
    train(cohort_b, 3)
    poisoned = engines_b[2]
    cohort_b.export(poisoned)
    with torch.no_grad():
        poisoned.D.mlp.linears[0].weight[0, 0] = float("nan")
        poisoned.G.linears[-1].bias[0] = float("inf")
    cohort_b.reload(poisoned)
    train(cohort_a, 8)
    train(cohort_b, 8)
    assert not np.isfinite(poisoned.drain_stats()).all()
    a, b = exported(cohort_a, engines_a), exported(cohort_b, engines_b)
    for i in (0, 1, 3, 4):
        assert all(torch.equal(x, y) for x, y in zip(a[i], b[i], strict=True)), f"member {i}"
        assert np.isfinite(engines_b[i].drain_stats()).all()


def test_join_and_leave_keep_weights_adam_state_and_rng():
    config = CLASS[2]
    alone = Engine(config)
    for _ in range(30):
        alone.step()
    traveller = Engine(config)
    for _ in range(10):
        traveller.step()  # solo, hand-written fast step
    cohort, others = make_cohort([CLASS[0], CLASS[3]])
    cohort.join(traveller)
    train(cohort, 10)
    cohort.leave(traveller)
    assert traveller not in cohort and len(cohort) == 2
    for _ in range(10):
        traveller.step()
    for a, b in zip(state(traveller), state(alone), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert torch.equal(traveller.rng.get_state(), alone.rng.get_state())


def test_leaving_does_not_disturb_the_others():
    cohort_a, engines_a = make_cohort(CLASS)
    cohort_b, engines_b = make_cohort(CLASS)
    train(cohort_a, 4)
    train(cohort_b, 4)
    cohort_b.leave(engines_b[1])
    train(cohort_a, 6)
    train(cohort_b, 6)
    a, b = exported(cohort_a, engines_a), exported(cohort_b, [e for i, e in enumerate(engines_b) if i != 1])
    for x, y in zip([a[i] for i in (0, 2, 3, 4)], b, strict=True):
        for s, t in zip(x, y, strict=True):
            torch.testing.assert_close(s, t, rtol=1e-5, atol=1e-6)


def test_who_trains_solo_and_shape_mismatch():
    assert solo_reason(tiny()) is None
    assert "WGAN-GP" in solo_reason(tiny(loss="wgan-gp"))
    assert "R1" in solo_reason(tiny(r1_gamma=1.0))
    assert "digit" in solo_reason(TrainConfig(dataset="digits", device="cpu"))
    cohort = Cohort(cohort_key(tiny(), "cpu"))
    with pytest.raises(ValueError, match="does not match"):
        cohort.join(Engine(tiny(batch_size=32)))
    with pytest.raises(ValueError, match="WGAN-GP"):
        cohort.join(Engine(tiny(loss="wgan-gp")))
