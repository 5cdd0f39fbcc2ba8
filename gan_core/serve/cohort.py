"""A cohort: many 2-D runs of the same network shape trained as one stacked computation.

A classroom-size 2-D GAN step (MLP 3×32, batch 64–256) costs a few MFLOP and is
dominated by per-op overhead, so one step over R runs at once costs little
more than one step of one run. A `Cohort` stacks its members' G and D weights
along a leading run dimension, `(R, out, in)`, and runs Goodfellow et al.'s
(2014) Algorithm 1 for all of them with batched matmuls (`torch.baddbmm` /
`torch.bmm`), back-propagated by hand exactly like `handgrad.HandMLP`.

Each member stays an `Engine`, used only through its public API (`begin_step`,
`record_step`, `set_last_stats`): it keeps its own data, `torch.Generator`
(drawn in the same order as `Engine.step`, so a member reproduces a solo
run), live config, step counter and statistics buffer. Per-run choices stay
per run:
- learning rates, betas and lr decay: Adam (the same fused kernel the engine
  uses) is called once per group of members with equal hyperparameters, on
  their slices of the stacks, so each member's bias correction uses its own
  step count;
- loss and label-smoothing targets: the loss functions of `losses.py` take the
  stacked (R, batch, 1) outputs and (R, 1, 1) targets and return per-run means
  and gradients; one call per distinct loss, merged with `torch.where`;
- k (`n_critic`): the cohort runs max k D updates; a member with a smaller k
  draws no data for the extra ones and is left out of their Adam call, so its
  weights, Adam state and RNG do not move;
- the EMA of G: per member, with the engine's warm-up rule (`Engine.record_step`).

While an engine is a member its own weight tensors are stale: call
`export(engine)` before reading them (evaluation, checkpoints) and
`reload(engine)` after writing them (rewind, load). `leave()` exports.

Members never mix: every op is batched over the run dimension with no
reduction across it, so a NaN in one member cannot reach another
(`tests/test_cohort.py` checks neighbours stay bit-identical).

Not eligible (they run solo in `Engine`): digits (DCGAN), WGAN-GP's gradient
penalty and R1, which need double back-prop through each member's D.
Not here: threads, scheduling and migration between cohorts (`trainer.py`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .. import torch_ops
from ..config import TrainConfig
from ..engine import Engine


class CohortKey(NamedTuple):
    """What members must share: the shapes of the stacked tensors."""

    device: str
    z_dim: int
    width: int
    depth: int
    pack: int
    batch_size: int


def cohort_key(config: TrainConfig, device: torch.device | str) -> CohortKey:
    return CohortKey(str(device), config.z_dim, config.width, config.depth, config.pack, config.batch_size)


def solo_reason(config: TrainConfig) -> str | None:
    """Why a run with `config` cannot train in a cohort (None if it can)."""
    if config.is_image:
        return "digit runs (DCGAN) train on their own"
    if config.loss == "wgan-gp":
        return "WGAN-GP's gradient penalty needs its own backward pass"
    if config.r1_gamma > 0:
        return "the R1 penalty needs its own backward pass"
    return None


def _mlp_tensors(mlp) -> list[torch.Tensor]:
    return [t for layer in mlp.linears for t in (layer.weight, layer.bias)]


def _adam_state(opt: torch.optim.Adam, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(step, exp_avg, exp_avg_sq) of `p`, zeros for an optimiser that has not stepped yet."""
    s = opt.state.get(p)
    if not s:
        return torch.zeros((), device=p.device), torch.zeros_like(p), torch.zeros_like(p)
    return s["step"], s["exp_avg"], s["exp_avg_sq"]


class _StackedNet:
    """One network (G or D's MLP) of every member: weights, grads and Adam state stacked.

    `params[j]` is (R, *shape of parameter j); `steps` is (R, P), Adam's t per
    member and parameter (the fused kernel reads one per tensor).
    """

    def __init__(self, modules: list, opts: list[torch.optim.Adam], leak: float) -> None:
        per_member = [_mlp_tensors(m) for m in modules]
        n_params = len(per_member[0])
        self.n_layers = n_params // 2
        self.leak = leak
        self.params = [torch.stack([ps[j].detach() for ps in per_member]) for j in range(n_params)]
        self.grads = [torch.zeros_like(p) for p in self.params]
        states = [[_adam_state(opt, p) for p in ps] for opt, ps in zip(opts, per_member)]
        self.steps = torch.stack([torch.stack([s[0].float() for s in row]) for row in states])
        self.exp_avg = [torch.stack([row[j][1] for row in states]) for j in range(n_params)]
        self.exp_avg_sq = [torch.stack([row[j][2] for row in states]) for j in range(n_params)]
        # Per-member views, built once: the Adam call only concatenates lists.
        self.views = [self._member_views(i) for i in range(len(modules))]
        self.n_members = len(modules)

    def _member_views(self, i: int) -> tuple[list, ...]:
        pick = lambda ts: [t[i] for t in ts]
        return (pick(self.params), pick(self.grads), pick(self.exp_avg), pick(self.exp_avg_sq),
                list(self.steps[i].unbind()))  # 0-d views: the kernel reads t per tensor

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # (R, N, in) -> acts, last (R, N, out)
        acts = [x]
        for l in range(self.n_layers):
            h = torch.baddbmm(self.params[2 * l + 1].unsqueeze(1), acts[-1], self.params[2 * l].transpose(1, 2))
            if l < self.n_layers - 1:
                h = torch.nn.functional.leaky_relu(h, self.leak)
            acts.append(h)
        return acts

    def backward(self, acts: list[torch.Tensor], g: torch.Tensor, *, param_grads: bool) -> torch.Tensor:
        """Back-propagate g = ∂L/∂output (R, N, out); returns ∂L/∂input (as `HandMLP.backward`)."""
        for l in reversed(range(self.n_layers)):
            if param_grads:
                torch.bmm(g.transpose(1, 2), acts[l], out=self.grads[2 * l])
                torch.sum(g, 1, out=self.grads[2 * l + 1])
            g = torch.bmm(g, self.params[2 * l])
            if l > 0:
                g = torch_ops.leaky_relu_backward(g, acts[l], self.leak)
        return g

    def grad_norms(self) -> torch.Tensor:  # (R,)
        return torch.stack([g.flatten(1).pow(2).sum(1) for g in self.grads]).sum(0).sqrt()

    def adam(self, members: list[int], opts: list[torch.optim.Adam]) -> None:
        """One Adam step for `members`, grouped by equal hyperparameters (`engine.adam_step`'s kernel)."""
        groups: dict[tuple, list[int]] = {}
        for i in members:
            g = opts[i].param_groups[0]
            groups.setdefault((g["lr"], *g["betas"], g["eps"], g["weight_decay"]), []).append(i)
        for (lr, beta1, beta2, eps, weight_decay), idx in groups.items():
            lists = [[t for i in idx for t in self.views[i][k]] for k in range(5)]
            params, grads, exp_avg, exp_avg_sq, steps = lists
            torch_ops.fused_adam(params, grads, exp_avg, exp_avg_sq, steps, lr=lr, beta1=beta1, beta2=beta2,
                                 eps=eps, weight_decay=weight_decay)

    def export(self, i: int, module, opt: torch.optim.Adam, grads: bool = True) -> None:
        """Copy member i's slice (weights, Adam state and, with `grads`, its last gradients) into
        its own module and optimiser."""
        with torch.no_grad():
            for j, p in enumerate(_mlp_tensors(module)):
                p.copy_(self.params[j][i])
                if grads and p.grad is None:
                    p.grad = self.grads[j][i].clone()
                elif grads:
                    p.grad.copy_(self.grads[j][i])
                step = self.steps[i, j].clone()
                s = opt.state.get(p)
                if s:
                    s["step"].copy_(step)
                    s["exp_avg"].copy_(self.exp_avg[j][i])
                    s["exp_avg_sq"].copy_(self.exp_avg_sq[j][i])
                elif step > 0:
                    opt.state[p] = dict(step=step, exp_avg=self.exp_avg[j][i].clone(),
                                        exp_avg_sq=self.exp_avg_sq[j][i].clone())

    def reload(self, i: int, module, opt: torch.optim.Adam) -> None:
        """Copy member i's module and optimiser state into its slice."""
        with torch.no_grad():
            for j, p in enumerate(_mlp_tensors(module)):
                step, m, v = _adam_state(opt, p)
                self.params[j][i].copy_(p)
                self.steps[i, j] = step
                self.exp_avg[j][i].copy_(m)
                self.exp_avg_sq[j][i].copy_(v)


class Cohort:
    """Engines of one `CohortKey` trained together. Not thread-safe: one owner thread."""

    def __init__(self, key: CohortKey) -> None:
        self.key = key
        self.members: list[Engine] = []
        self._G: _StackedNet | None = None
        self._D: _StackedNet | None = None
        self._hyper: _Hyper | None = None
        self._last_rows: torch.Tensor | None = None  # (R, N_STATS) of the last step
        self._stepped: list[bool] = []

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, engine: Engine) -> bool:
        return any(e is engine for e in self.members)

    # --- membership -------------------------------------------------------------------

    def join(self, engine: Engine) -> None:
        """Add `engine` (its weights, Adam state and RNG carry on)."""
        reason = solo_reason(engine.config)
        if reason:
            raise ValueError(f"cannot join a cohort: {reason}")
        key = cohort_key(engine.config, engine.device)
        if key != self.key:
            raise ValueError(f"engine shape {key} does not match cohort {self.key}")
        if engine in self:
            return
        self._export_all()
        self.members.append(engine)
        self._stack()

    def leave(self, engine: Engine) -> None:
        """Remove `engine`, writing its current state back into it."""
        self._export_all()
        self.members = [e for e in self.members if e is not engine]
        self._stack()

    def _index(self, engine: Engine) -> int:
        for i, e in enumerate(self.members):
            if e is engine:
                return i
        raise KeyError("engine is not a member of this cohort")

    def export(self, engine: Engine) -> None:
        """Bring `engine`'s own tensors up to date (before evaluate / capture / save)."""
        i = self._index(engine)
        # Gradients and the last stats row only if the cohort stepped it since the last export or
        # reload: a lone D or G update in between (a command) made newer ones in the engine.
        stepped = self._stepped[i]
        self._G.export(i, engine.G, engine.g_opt, grads=stepped)
        self._D.export(i, engine.D.mlp, engine.d_opt, grads=stepped)
        if stepped:  # `_advance` set both
            # What Engine keeps for a later lone D or G update's stats row (STAT_FIELDS order).
            row = self._last_rows[i]
            engine.set_last_stats(row)
        self._stepped[i] = False
        if engine.G_ema is not None:
            with torch.no_grad():
                for p, s in zip(_mlp_tensors(engine.G_ema), self._ema[i]):
                    p.copy_(s)

    def reload(self, engine: Engine) -> None:
        """Take `engine`'s own tensors into the stacks (after restore / load)."""
        i = self._index(engine)
        self._G.reload(i, engine.G, engine.g_opt)
        self._D.reload(i, engine.D.mlp, engine.d_opt)
        self._stepped[i] = False
        if engine.G_ema is not None:
            with torch.no_grad():
                for p, s in zip(_mlp_tensors(engine.G_ema), self._ema[i]):
                    s.copy_(p)

    def _export_all(self) -> None:
        for e in self.members:
            self.export(e)

    def _stack(self) -> None:
        if not self.members:
            self._G = self._D = None
            return
        ms = self.members
        self._G = _StackedNet([e.G for e in ms], [e.g_opt for e in ms], ms[0].G.leak)
        self._D = _StackedNet([e.D.mlp for e in ms], [e.d_opt for e in ms], ms[0].D.mlp.leak)
        # EMA of G: per member (views of one stack), None for members without one.
        ema_src = [_mlp_tensors(e.G_ema if e.G_ema is not None else e.G) for e in ms]
        self._ema_stack = [torch.stack([ps[j].detach() for ps in ema_src]) for j in range(len(ema_src[0]))]
        self._ema = [[t[i] for t in self._ema_stack] for i in range(len(ms))]
        k, B, z_dim = len(ms), self.key.batch_size, self.key.z_dim
        device = ms[0].device
        self._both = torch.empty(k, 2 * B, 2, device=device)  # [real; fake] per member
        self._z = torch.empty(k, B, z_dim, device=device)
        self._hyper = None
        self._last_rows = None  # rows of the old stacking (members were exported before it)
        self._stepped = [False] * k  # stepped by the cohort since its last export or reload

    # --- the step ---------------------------------------------------------------------

    def _hyperparameters(self) -> "_Hyper":
        """Per-member loss choices and targets as tensors; rebuilt only when a config changed."""
        configs = tuple(e.config for e in self.members)
        if self._hyper is not None and all(a is b for a, b in zip(self._hyper.configs, configs)) \
                and len(configs) == len(self._hyper.configs):
            return self._hyper
        ms, device = self.members, self._both.device
        names = [c.loss for c in configs]
        losses = {}
        for name, e in zip(names, ms):
            if name not in losses:
                fns = {f: getattr(e.loss, f) for f in ("d_grad", "d_loss", "g_grad", "g_loss")}
                mask = torch.tensor([m == name for m in names], device=device)
                losses[name] = (fns, mask)
        probability = [e.loss.is_probability for e in ms]
        self._hyper = _Hyper(
            configs=configs,
            losses=list(losses.values()),
            real_target=torch.tensor([e.real_target for e in ms], device=device).view(-1, 1, 1),
            fake_target=torch.tensor([e.fake_target for e in ms], device=device).view(-1, 1, 1),
            is_probability=None if len(set(probability)) == 1 else torch.tensor(probability, device=device),
            all_probability=all(probability),
            ks=[c.n_critic for c in configs],
        )
        return self._hyper

    def _per_loss(self, hyper: "_Hyper", fn: str, *args: torch.Tensor):
        """`loss.<fn>` per member (on the (R, batch, 1) stack its means are per run), each its own loss."""
        result = None
        for fns, mask in hyper.losses:
            out = fns[fn](*args)
            if result is None:
                result = out
            elif isinstance(out, tuple):
                result = tuple(torch.where(mask.view(-1, *[1] * (o.ndim - 1)), o, r) for o, r in zip(out, result))
            else:
                result = torch.where(mask.view(-1, *[1] * (out.ndim - 1)), out, result)
        return result

    def _display(self, hyper: "_Hyper", out: torch.Tensor) -> torch.Tensor:
        """`GANLoss.display` per member: P(real) for cross-entropy losses, raw otherwise."""
        if hyper.is_probability is None:
            return torch.sigmoid(out) if hyper.all_probability else out
        return torch.where(hyper.is_probability.view(-1, 1, 1), torch.sigmoid(out), out)

    def step(self) -> None:
        """One training step of every member (k_i D updates, then one G update)."""
        if not self.members:
            return
        targets = [e.begin_step() for e in self.members]  # the engine's checks and lr decay; its stats row
        hyper = self._hyperparameters()
        with torch.no_grad():
            d_stats = None
            for it in range(max(hyper.ks)):
                d_stats = self._d_update(hyper, it, d_stats)
            g_stats = self._g_update(hyper)
            rows = torch.stack([d_stats[0], g_stats[0], d_stats[1], d_stats[2], g_stats[1], g_stats[2],
                                d_stats[3]], 1)  # (R, N_STATS) in STAT_FIELDS order
        self._advance(rows, targets)

    def _d_update(self, hyper: "_Hyper", it: int, previous: tuple | None) -> tuple:
        """The it-th D update of every member with k > it (as `Engine.step`'s D loop).

        Returns (d_loss, D(x) shown, D(G(z)) shown, ‖∇D‖) per member, from its own last D update.
        """
        ms, G, D = self.members, self._G, self._D
        B, pack, R = self.key.batch_size, self.key.pack, len(self.members)
        active = [i for i in range(R) if hyper.ks[i] > it]
        for i in active:  # members with a smaller k draw nothing: their RNG stays in step with a solo run
            e = ms[i]
            e.data.sample(B, e.rng, out=self._both[i, :B])
            self._z[i].normal_(generator=e.rng)
        self._both[:, B:] = G.forward(self._z)[-1]
        acts = D.forward(self._both.view(R, 2 * B // pack, 2 * pack))
        out = acts[-1]
        r, f = out[:, : B // pack], out[:, B // pack:]
        g_r, g_f = self._per_loss(hyper, "d_grad", r, f, hyper.real_target, hyper.fake_target)
        resting = [i for i in range(R) if hyper.ks[i] <= it]
        kept = [g[resting].clone() for g in D.grads] if resting else None
        D.backward(acts, torch.cat([g_r, g_f], 1), param_grads=True)
        if kept is not None:  # a member past its k keeps the gradient of its own last D update
            for g, old in zip(D.grads, kept):
                g[resting] = old
        D.adam(active, [e.d_opt for e in ms])
        shown = self._display(hyper, out)
        stats = (self._per_loss(hyper, "d_loss", r, f, hyper.real_target, hyper.fake_target),
                 shown[:, : B // pack].mean((1, 2)), shown[:, B // pack:].mean((1, 2)), D.grad_norms())
        if previous is None:
            return stats
        last = torch.tensor([k - 1 == it for k in hyper.ks], device=out.device)
        return tuple(torch.where(last, new, old) for new, old in zip(stats, previous))

    def _g_update(self, hyper: "_Hyper") -> tuple:
        """One G update of every member; returns (g_loss, D(G(z)) shown, ‖∇G‖) per member."""
        ms, G, D = self.members, self._G, self._D
        B, pack, R = self.key.batch_size, self.key.pack, len(self.members)
        for e, z in zip(ms, self._z):
            z.normal_(generator=e.rng)
        g_acts = G.forward(self._z)
        d_acts = D.forward(g_acts[-1].view(R, B // pack, 2 * pack))
        f_g = d_acts[-1]
        g_x = D.backward(d_acts, self._per_loss(hyper, "g_grad", f_g), param_grads=False)
        G.backward(g_acts, g_x.view(R, B, 2), param_grads=True)
        G.adam(list(range(R)), [e.g_opt for e in ms])
        return self._per_loss(hyper, "g_loss", f_g), self._display(hyper, f_g).mean((1, 2)), G.grad_norms()

    def _advance(self, rows: torch.Tensor, targets: list[torch.Tensor]) -> None:
        """Hand each member its statistics row, count the step, update its EMA of G."""
        torch_ops.foreach_copy_(targets, rows.unbind(0))
        # Weight 0 (no EMA) leaves a member's stack alone.
        ema_weight = [e.record_step(e.config.n_critic, 1) for e in self.members]
        self._stepped = [True] * len(self.members)
        self._last_rows = rows  # `export` hands a member its last row for a later lone D or G update
        if any(ema_weight):
            weight = torch.tensor(ema_weight, device=rows.device)
            for ema, param in zip(self._ema_stack, self._G.params):
                ema.lerp_(param, weight.view(-1, *[1] * (param.ndim - 1)))


class _Hyper(NamedTuple):
    configs: tuple
    losses: list  # [(loss functions by name, member mask)] per distinct loss
    real_target: torch.Tensor  # (R, 1, 1)
    fake_target: torch.Tensor
    is_probability: torch.Tensor | None  # (R,) bool; None when all members agree
    all_probability: bool
    ks: list[int]
