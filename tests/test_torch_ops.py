"""Tests for gan_core/torch_ops.py: every public fallback computes what its private twin (and a
public reference) computes, the environment variable and `use_fallback` switch them, and whole
engine and cohort runs on the fallbacks match runs on the private operations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_core import torch_ops
from gan_core.engine import Engine
from gan_core.serve.cohort import Cohort, cohort_key

ROOT = Path(__file__).resolve().parent.parent


def private(name: str):
    if not torch_ops.AVAILABLE[name]:
        pytest.skip(f"this PyTorch has no working private {name}")
    return torch_ops.OPS[name][0]


def public(name: str):
    return torch_ops.OPS[name][1]


def test_use_fallback_binds_the_public_functions_and_back():
    torch_ops.use_fallback(True)
    try:
        assert not any(torch_ops.FAST.values())
        assert torch_ops.fused_adam is public("fused_adam")
        assert torch_ops.leaky_relu_backward is public("leaky_relu_backward")
    finally:
        torch_ops.use_fallback(False)
    assert torch_ops.FAST == torch_ops.AVAILABLE
    for name, (fast, slow) in torch_ops.OPS.items():
        assert getattr(torch_ops, name) is (fast if torch_ops.AVAILABLE[name] else slow)


def test_the_environment_variable_forces_every_fallback_at_import():
    code = "from gan_core import torch_ops as t; print(sorted(t.AVAILABLE.values()), sorted(t.FAST.values()))"
    env = dict(os.environ, **{torch_ops.ENV_FLAG: "1"})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[False,", "False,", "False,", "False,", "False,", "False]"] * 2


def adam_run(fused_adam, steps: int = 8, weight_decay: float = 0.0) -> list[torch.Tensor]:
    """`steps` Adam steps of two tensors, the hyperparameters changing halfway (as a live edit does)."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(7, 5, generator=g), torch.randn(37, generator=g)]  # 37: a tail past the vector width
    m, v = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    t = [torch.zeros(()) for _ in params]
    for i in range(steps):
        grads = [torch.randn(p.shape, generator=g) for p in params]
        lr, beta1, beta2 = (1e-2, 0.5, 0.999) if i < steps // 2 else (3e-3, 0.7, 0.99)
        fused_adam(params, grads, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=1e-8, weight_decay=weight_decay)
    return params + m + v + t


def torch_optim_adam_run(steps: int = 8, weight_decay: float = 0.0) -> list[torch.Tensor]:
    """The same steps with torch.optim.Adam's public single-tensor implementation (the reference)."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(7, 5, generator=g), torch.randn(37, generator=g)]
    params = [p.requires_grad_() for p in params]
    opt = torch.optim.Adam(params, weight_decay=weight_decay, foreach=False)
    for i in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        lr, betas = (1e-2, (0.5, 0.999)) if i < steps // 2 else (3e-3, (0.7, 0.99))
        opt.param_groups[0].update(lr=lr, betas=betas)
        opt.step()
    state = [opt.state[p] for p in params]
    return [p.detach() for p in params] + [s["exp_avg"] for s in state] + [s["exp_avg_sq"] for s in state] \
        + [s["step"] for s in state]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_fallback_matches_torch_optim_adam_over_steps_with_bias_correction(weight_decay):
    for got, want in zip(adam_run(public("fused_adam"), weight_decay=weight_decay),
                         torch_optim_adam_run(weight_decay=weight_decay), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_fallback_matches_the_fused_kernel(weight_decay):
    fast = adam_run(private("fused_adam"), weight_decay=weight_decay)
    for got, want in zip(adam_run(public("fused_adam"), weight_decay=weight_decay), fast, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    assert float(fast[-1]) == 8  # each call advanced t by one


def test_adam_update_with_one_step_size_per_row_matches_each_row_alone():
    """The cohort's use: rows are runs with their own lr, β and step count (tensor columns)."""
    g = torch.Generator().manual_seed(1)
    R, P = 4, 45
    lrs, betas, t0 = [1e-2, 2e-3, 1e-3, 5e-2], [(0.5, 0.999), (0.5, 0.999), (0.0, 0.9), (0.9, 0.99)], [0, 3, 10, 1]
    stacked = [torch.randn(R, P, generator=g), torch.zeros(R, P), torch.zeros(R, P)]
    rows = [[t[i].clone() for t in stacked] for i in range(R)]
    steps = [torch.tensor(float(t)) for t in t0]
    for k in range(5):
        grad = torch.randn(R, P, generator=g)
        t = [t0[i] + k + 1 for i in range(R)]
        step_sizes, roots = torch_ops.bias_corrections(lrs, betas, t)
        column = lambda values: torch.tensor(values).view(R, 1)
        torch_ops.adam_update_(*stacked[:1], grad, *stacked[1:], step_size=column(step_sizes),
                               bias_correction2_sqrt=column(roots), beta1=column([b[0] for b in betas]),
                               beta2=column([b[1] for b in betas]), eps=1e-8)
        for i in range(R):
            torch_ops.fused_adam([rows[i][0]], [grad[i]], [rows[i][1]], [rows[i][2]], [steps[i]], lr=lrs[i],
                                 beta1=betas[i][0], beta2=betas[i][1], eps=1e-8, weight_decay=0.0)
    for i in range(R):
        for s, r in zip(stacked, rows[i], strict=True):
            torch.testing.assert_close(s[i], r, rtol=1e-5, atol=1e-7)


def lrelu_case():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 9, generator=g)
    x[0, :3] = 0.0  # the kink: LeakyReLU's gradient there is the slope
    return x, torch.randn(6, 9, generator=g)


@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_leaky_relu_backward_fallback_matches_autograd_and_the_private_op(slope):
    x, grad = lrelu_case()
    act = F.leaky_relu(x, slope)
    x_ = x.clone().requires_grad_()
    (want,) = torch.autograd.grad(F.leaky_relu(x_, slope), x_, grad)
    got = public("leaky_relu_backward")(grad, act, slope)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got, private("leaky_relu_backward")(grad, act, slope), rtol=0, atol=0)


def foreach_case():
    g = torch.Generator().manual_seed(3)
    return [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)], \
        [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]


FOREACH = {  # name: (call it on (xs, ys) and return what it computed, the same in plain public ops)
    "foreach_copy_": (lambda op, xs, ys: op(xs, ys) or xs, lambda xs, ys: [y.clone() for y in ys]),
    "foreach_norm": (lambda op, xs, ys: op(xs), lambda xs, ys: [x.pow(2).sum().sqrt() for x in xs]),
    "foreach_add_": (lambda op, xs, ys: op(xs, 1.5) or xs, lambda xs, ys: [x + 1.5 for x in xs]),
    "foreach_lerp_": (lambda op, xs, ys: op(xs, ys, 0.3) or xs,
                      lambda xs, ys: [x + 0.3 * (y - x) for x, y in zip(xs, ys)]),
}


@pytest.mark.parametrize("name", list(FOREACH))
def test_foreach_fallbacks_match_a_reference_and_the_private_ops(name):
    call, reference = FOREACH[name]
    got = call(public(name), *foreach_case())
    for a, b in zip(got, reference(*foreach_case()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(got, call(private(name), *foreach_case()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def engine_run(config, steps: int) -> tuple[np.ndarray, list[torch.Tensor]]:
    engine = Engine(config)
    for _ in range(steps):
        engine.step()
    tensors = [*engine.G.parameters(), *engine.D.parameters(), *engine.shown_generator.parameters()]
    return engine.drain_stats(), [t.detach().clone() for t in tensors]


@pytest.mark.parametrize("overrides", [dict(ema_decay=0.99, lr_decay_steps=200), dict(loss="wgan-gp"),
                                       dict(r1_gamma=1.0, pack=2)])
def test_a_whole_engine_run_on_the_fallbacks_matches_the_fast_path(tiny, overrides):
    config = tiny(**overrides)
    fast_stats, fast_weights = engine_run(config, 300)
    torch_ops.use_fallback(True)
    try:
        stats, weights = engine_run(config, 300)
    finally:
        torch_ops.use_fallback(False)
    np.testing.assert_allclose(stats, fast_stats, rtol=1e-3, atol=1e-4)
    for a, b in zip(weights, fast_weights, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def cohort_run(configs, steps: int) -> list[np.ndarray]:
    engines = [Engine(c) for c in configs]
    cohort = Cohort(cohort_key(configs[0], "cpu"))
    for e in engines:
        cohort.join(e)
    for _ in range(steps):
        cohort.step()
    return [e.drain_stats() for e in engines]


def test_a_cohort_steps_on_the_fallbacks_as_on_the_fast_path(tiny):
    configs = [tiny(seed=0, ema_decay=0.99), tiny(seed=1, loss="hinge", n_critic=2)]
    fast = cohort_run(configs, 50)
    torch_ops.use_fallback(True)
    try:
        slow = cohort_run(configs, 50)
    finally:
        torch_ops.use_fallback(False)
    for a, b in zip(slow, fast, strict=True):
        assert a.shape == (50, 7)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
