"""The one door to PyTorch's private operations, each with a public-API fallback.

The engine's hot loops use operations PyTorch does not promise to keep:
`torch._fused_adam_` (Adam for a list of tensors in one kernel, what
`torch.optim.Adam(fused=True)` runs), `aten::leaky_relu_backward` (LeakyReLU's
backward without autograd) and the `torch._foreach_*` list operations. A PyTorch
upgrade may rename, move or drop any of them; that should slow the app down,
not break it. So nothing else in the project calls them: every use goes through
a function here, and each function is bound once, at import, to either

- the private operation, if a tiny call of it runs and agrees with the
  fallback (`AVAILABLE` records which did, `FAST` which are bound now), or
- a fallback written with public operations only, computing the same values.

Setting GAN_CLASSROOM_TORCH_FALLBACK=1 in the environment before the import
forces every fallback; `use_fallback(True)` does the same from a test, and
`use_fallback(False)` goes back to what the import found. Callers look the
functions up on the module at each call (`torch_ops.fused_adam(...)`), so a
switch takes effect at once. `tests/test_torch_ops.py` checks every fallback
against its private twin, and whole engine and cohort runs on the fallbacks.

`adam_update_` is Adam's update written in public operations, in the order of
floating-point operations of PyTorch's CPU kernel
(`aten/src/ATen/native/cpu/FusedAdamKernel.cpp`), so the two agree to a rounding
(measured: most elements equal to the bit). The cohort (`serve/cohort.py`)
calls it directly, with per-run step sizes as tensors.

Not here: when to call them (`engine.py`, `handgrad.py`, `serve/cohort.py`).
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import torch

Tensor = torch.Tensor
ENV_FLAG = "GAN_CLASSROOM_TORCH_FALLBACK"


# --- public-API fallbacks ------------------------------------------------------------------

def adam_update_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *,
                 step_size: float | Tensor, bias_correction2_sqrt: float | Tensor,
                 beta1: float | Tensor, beta2: float | Tensor, eps: float | Tensor) -> None:
    """One Adam update (Kingma & Ba, 2015, Algorithm 1) of `param` in place, with t already advanced.

    `step_size` is lr / (1 − β₁ᵗ) and `bias_correction2_sqrt` is √(1 − β₂ᵗ), both computed in
    float64 by the caller as the fused kernel does. Any hyperparameter may be a tensor that
    broadcasts against `param` (one value per run of a stacked cohort).
    """
    exp_avg.lerp_(grad, 1 - beta1)  # m ← m + (1 − β₁)(g − m)
    if isinstance(beta2, Tensor):
        exp_avg_sq.mul_(beta2).addcmul_(grad * (1 - beta2), grad)  # v ← β₂v + ((1 − β₂)g)g
    else:
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(eps)
    if isinstance(step_size, Tensor):  # θ ← θ − (α̂ m) / (√v̂ + ε)
        param.addcdiv_(exp_avg * step_size, denom, value=-1)
    else:
        param.addcdiv_(exp_avg, denom, value=-step_size)


def bias_corrections(lrs: Sequence[float], betas: Sequence[tuple[float, float]],
                     steps: Sequence[float]) -> tuple[list[float], list[float]]:
    """Adam's step sizes lr / (1 − β₁ᵗ) and √(1 − β₂ᵗ), one per (lr, (β₁, β₂), t), computed in
    float64 as the fused kernel computes them."""
    step_sizes = [lr / (1 - math.pow(b1, t)) for lr, (b1, _), t in zip(lrs, betas, steps, strict=True)]
    return step_sizes, [math.sqrt(1 - math.pow(b2, t)) for (_, b2), t in zip(betas, steps, strict=True)]


@torch.no_grad()  # parameters are leaves that require grad; the fused kernel bypasses autograd too
def _public_fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay):
    foreach_add_(steps, 1)
    for p, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        if weight_decay:
            g = g + p * weight_decay
        (step_size,), (bc2_sqrt,) = bias_corrections([lr], [(beta1, beta2)], [t.item()])
        adam_update_(p, g, m, v, step_size=step_size, bias_correction2_sqrt=bc2_sqrt, beta1=beta1, beta2=beta2,
                     eps=eps)


def _public_leaky_relu_backward(grad: Tensor, act: Tensor, slope: float) -> Tensor:
    return torch.where(act > 0, grad, grad * slope)


def _public_foreach_copy_(dst: Sequence[Tensor], src: Sequence[Tensor]) -> None:
    for d, s in zip(dst, src, strict=True):
        d.copy_(s)


def _public_foreach_norm(tensors: Sequence[Tensor]) -> list[Tensor]:
    return [torch.linalg.vector_norm(t) for t in tensors]


def _public_foreach_add_(tensors: Sequence[Tensor], scalar: float) -> None:
    for t in tensors:
        t.add_(scalar)


def _public_foreach_lerp_(dst: Sequence[Tensor], end: Sequence[Tensor], weight: float) -> None:
    for d, e in zip(dst, end, strict=True):
        d.lerp_(e, weight)


# --- the private operations ------------------------------------------------------------------

def _private_fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay):
    foreach_add_(steps, 1)  # the kernel reads t for its bias corrections but does not advance it
    torch._fused_adam_(list(params), list(grads), list(exp_avgs), list(exp_avg_sqs), [], list(steps), lr=lr,
                       beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps, amsgrad=False, maximize=False)


def _private_leaky_relu_backward(grad: Tensor, act: Tensor, slope: float) -> Tensor:
    return torch.ops.aten.leaky_relu_backward(grad, act, slope, True)  # True: `act` is the output


def _private_foreach_copy_(dst, src) -> None:
    torch._foreach_copy_(list(dst), list(src))


def _private_foreach_norm(tensors) -> list[Tensor]:
    return list(torch._foreach_norm(list(tensors)))


def _private_foreach_add_(tensors, scalar: float) -> None:
    torch._foreach_add_(list(tensors), scalar)


def _private_foreach_lerp_(dst, end, weight: float) -> None:
    torch._foreach_lerp_(list(dst), list(end), weight)


# --- the choice, made once at import ----------------------------------------------------------

OPS = {  # name: (private, public fallback)
    "fused_adam": (_private_fused_adam, _public_fused_adam),
    "leaky_relu_backward": (_private_leaky_relu_backward, _public_leaky_relu_backward),
    "foreach_copy_": (_private_foreach_copy_, _public_foreach_copy_),
    "foreach_norm": (_private_foreach_norm, _public_foreach_norm),
    "foreach_add_": (_private_foreach_add_, _public_foreach_add_),
    "foreach_lerp_": (_private_foreach_lerp_, _public_foreach_lerp_),
}

# The names the project calls, rebound by `_bind` (fallbacks until the probe below has run):
fused_adam = _public_fused_adam
"""fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, *, lr, beta1, beta2, eps, weight_decay):
one Adam step of every tensor, each `steps` entry (a 0-d float tensor) advanced by one first."""
leaky_relu_backward = _public_leaky_relu_backward
"""leaky_relu_backward(grad, act, slope): ∂L/∂x of act = leaky_relu(x, slope), given ∂L/∂act."""
foreach_copy_ = _public_foreach_copy_
foreach_norm = _public_foreach_norm
"""foreach_norm(tensors): [‖t‖₂ for t in tensors], 0-d tensors."""
foreach_add_ = _public_foreach_add_
foreach_lerp_ = _public_foreach_lerp_
FAST: dict[str, bool] = dict.fromkeys(OPS, False)  # name -> whether the private operation is bound now


def _probe(name: str, impl) -> list[Tensor]:
    """`impl`'s results on a tiny input (two Adam steps for fused_adam)."""
    if name == "fused_adam":
        g = torch.Generator().manual_seed(0)
        p, grad, m, v = torch.randn(5, generator=g), torch.randn(5, generator=g), torch.zeros(5), torch.zeros(5)
        steps = [torch.zeros(())]
        for _ in range(2):
            impl([p], [grad], [m], [v], steps, lr=0.1, beta1=0.5, beta2=0.9, eps=1e-8, weight_decay=0.0)
        return [p, m, v, steps[0]]
    if name == "leaky_relu_backward":
        return [impl(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-0.2, 0.0, 3.0]), 0.2)]
    xs = [torch.tensor([1.0, -2.0]), torch.tensor([3.0])]
    ys = [torch.tensor([0.5, 4.0]), torch.tensor([-1.0])]
    if name == "foreach_norm":
        return impl(xs)
    if name == "foreach_copy_":
        impl(xs, ys)
    elif name == "foreach_add_":
        impl(xs, 1.0)
    else:
        impl(xs, ys, 0.25)
    return xs


def _private_works(name: str) -> bool:
    """Whether the private operation `name` exists, runs and agrees with its fallback on a tiny input."""
    private, public = OPS[name]
    try:
        got, want = _probe(name, private), _probe(name, public)
        return all(torch.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(got, want, strict=True))
    except Exception:  # gone (AttributeError), a changed signature (TypeError, RuntimeError), ...
        return False


def _bind(name: str, fast: bool) -> None:
    globals()[name] = OPS[name][0] if fast else OPS[name][1]
    FAST[name] = fast


def use_fallback(on: bool = True) -> None:
    """Bind every function to its public fallback (`on`), or back to what the import probe chose."""
    for name in OPS:
        _bind(name, not on and AVAILABLE[name])


# name -> whether the private operation passed the probe (and the environment did not forbid it)
AVAILABLE = {name: os.environ.get(ENV_FLAG, "") != "1" and _private_works(name) for name in OPS}
use_fallback(False)
