"""A cohort: many 2-D runs of the same network shape trained as one stacked computation.

A classroom-size 2-D GAN step (MLP 3×32, batch 64–256) costs a few MFLOP and is
dominated by per-op overhead, so one step over R runs at once costs little
more than one step of one run. A `Cohort` stacks its members' G and D weights
along a leading run dimension and runs Goodfellow et al.'s (2014) Algorithm 1
for all of them with batched matmuls (`torch.baddbmm` / `torch.bmm`),
back-propagated by hand like `handgrad.HandMLP`.

How the stacks are laid out, and why (`python -m benchmarks cohort` measures it):
- a network's weights, gradients and Adam moments are each one (R, P) tensor
  (P: the network's parameter count) and the layers' weights are views into
  it, so Adam, the gradient norms and the EMA of G are a few ops for all members;
- activations are feature-major, (R, features, N): every batched product then
  writes rows of N or of a layer's width, never of 1, 2 or 4 values, which MKL's
  batched GEMM was measured to do 2–5× slower (the last layer's output, the first
  layer's weight gradient). For the same reason a layer narrower at its input
  than its output (the first) keeps its weight transposed, (in, out);
- a step's random draws come first: each member draws its data indices, noise
  and z with its own `torch.Generator`, in the order of a solo run's step
  (`Engine.step`: per D update the data then z, then the G update's z), so a
  member reproduces a solo run. Then one gather builds every member's real
  batches and one G forward pass makes the fakes of all D updates (G does not
  change until the G update, whose own forward pass runs just before its
  backward pass, while the activations are still in cache: measured faster).

Each member stays an `Engine`, used only through its public API: `begin_step`
(room for the stats row, lr decay), `record_step` (counters, the EMA's weight),
`set_last_stats`, its networks, optimisers, data and generator. Per-run choices
stay per run:
- learning rates, betas and lr decay: Adam is `torch_ops.adam_update_` on the
  stacks, with each member's step size and bias correction as an (R, 1) column,
  computed in float64 from its own lr and step count as the fused kernel does;
- loss and label-smoothing targets: the loss functions of `losses.py` take the
  stacked (R, batch, 1) outputs and (R, 1, 1) targets and return per-run means
  and gradients; one call per distinct loss, merged with `torch.where`;
- k (`n_critic`): the cohort runs max k D updates; a member with a smaller k
  draws no data for the extra ones, and its D weights, gradients and Adam state
  are put back after them, so they and its RNG do not move;
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

import numpy as np
import torch
import torch.nn.functional as F

from .. import torch_ops
from ..config import TrainConfig
from ..engine import Engine
from ..records import N_STATS


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


class _StackedNet:
    """One network (G or D's MLP) of every member: weights, gradients and Adam state stacked.

    `params`, `grads`, `exp_avg`, `exp_avg_sq` are (R, P). Layer l's weight `W[l]` is an
    (R, out, in) view, stored (in, out) when in < out; its bias `b[l]` an (R, out, 1) view.
    `steps[i]` is member i's Adam step count (all of a network's tensors step together).
    """

    def __init__(self, modules: list, opts: list[torch.optim.Adam], leak: float) -> None:
        first = _mlp_tensors(modules[0])
        R, self.n_layers, self.leak = len(modules), len(first) // 2, leak
        shapes = [tuple(first[2 * l].shape) for l in range(self.n_layers)]  # (out, in)
        self.transposed = [n_in < n_out for n_out, n_in in shapes]
        sizes = [n for n_out, n_in in shapes for n in (n_out * n_in, n_out)]
        device = first[0].device
        self.params = torch.empty(R, sum(sizes), device=device)
        self.grads, self.exp_avg, self.exp_avg_sq = (torch.zeros_like(self.params) for _ in range(3))
        self.steps = [0.0] * R
        stored = [(n_in, n_out) if t else (n_out, n_in) for (n_out, n_in), t in zip(shapes, self.transposed)]
        w_views = [p.view(R, *s) for p, s in zip(self.params.split(sizes, 1)[0::2], stored)]
        self.W = [w.transpose(1, 2) if t else w for w, t in zip(w_views, self.transposed)]
        self.WT = [w.transpose(1, 2) for w in self.W]  # (R, in, out), for the backward pass
        self.b = [p.unsqueeze(2) for p in self.params.split(sizes, 1)[1::2]]
        # Gradients are written into contiguous per-layer buffers (a batched product into a view
        # of `grads` was measured ~50 % slower) and concatenated into `grads` in one op.
        self._grad_w = [torch.empty(R, *s, device=device) for s in stored]
        self._grad_b = [torch.empty(R, n_out, device=device) for n_out, _ in shapes]
        self._grad_parts = [t for w, b in zip(self._grad_w, self._grad_b) for t in (w.view(R, -1), b)]
        self._sizes, self._stored = sizes, stored
        for i, (module, opt) in enumerate(zip(modules, opts)):
            self.reload(i, module, opt)

    def member(self, stack: torch.Tensor, i: int) -> list[torch.Tensor]:
        """Member i's row of a (R, P) stack as views shaped like its module's tensors."""
        views = []
        for j, part in enumerate(stack[i].split(self._sizes)):
            if j % 2:
                views.append(part)
            else:
                w = part.view(self._stored[j // 2])
                views.append(w.t() if self.transposed[j // 2] else w)
        return views

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All activations [x, a₁, …, output], each (R, features, N), from x (R, in, N)."""
        acts = [x]
        for l in range(self.n_layers):
            h = torch.baddbmm(self.b[l], self.W[l], acts[-1])
            if l < self.n_layers - 1:
                F.leaky_relu_(h, self.leak)
            acts.append(h)
        return acts

    def backward(self, acts: list[torch.Tensor], g: torch.Tensor, *, param_grads: bool,
                 input_grad: bool) -> torch.Tensor | None:
        """Back-propagate g = ∂L/∂output (R, out, N); fills `grads` if `param_grads` and returns
        ∂L/∂input (R, in, N) if `input_grad` (as `handgrad.HandMLP.backward`, feature-major)."""
        for l in reversed(range(self.n_layers)):
            if param_grads:
                if self.transposed[l]:  # ∂Wᵀ = a gᵀ: (R, in, N) (R, N, out)
                    torch.bmm(acts[l], g.transpose(1, 2), out=self._grad_w[l])
                else:  # ∂W = g aᵀ: (R, out, N) (R, N, in)
                    torch.bmm(g, acts[l].transpose(1, 2), out=self._grad_w[l])
                torch.sum(g, 2, out=self._grad_b[l])
            if l == 0 and not input_grad:
                break
            g = torch.bmm(self.WT[l], g)  # ∂a = Wᵀ g: (R, in, N)
            if l > 0:
                g = torch_ops.leaky_relu_backward(g, acts[l], self.leak)
        if param_grads:
            torch.cat(self._grad_parts, 1, out=self.grads)
        return g if input_grad else None

    def grad_norms(self) -> torch.Tensor:  # (R,)
        return torch.linalg.vector_norm(self.grads, dim=1)

    def adam(self, columns: tuple[torch.Tensor, torch.Tensor], beta1, beta2, eps) -> None:
        """One Adam step of every member; `columns`: step sizes and √(1 − β₂ᵗ), each (R, 1)."""
        torch_ops.adam_update_(self.params, self.grads, self.exp_avg, self.exp_avg_sq, step_size=columns[0],
                               bias_correction2_sqrt=columns[1], beta1=beta1, beta2=beta2, eps=eps)

    def export(self, i: int, module, opt: torch.optim.Adam, grads: bool = True) -> None:
        """Copy member i's slice (weights, Adam state and, with `grads`, its last gradients) into
        its own module and optimiser."""
        with torch.no_grad():
            stacks = zip(self.member(self.params, i), self.member(self.grads, i),
                         self.member(self.exp_avg, i), self.member(self.exp_avg_sq, i))
            for p, (w, g, m, v) in zip(_mlp_tensors(module), stacks):
                p.copy_(w)
                if grads and p.grad is None:
                    p.grad = torch.empty_like(p)
                if grads:
                    p.grad.copy_(g)
                s = opt.state.get(p)
                if not s and self.steps[i] > 0:  # new state laid out like `p` (a view here may be transposed)
                    s = opt.state[p] = dict(step=torch.tensor(0.0, device=p.device), exp_avg=torch.empty_like(p),
                                            exp_avg_sq=torch.empty_like(p))
                if s:
                    s["step"].fill_(self.steps[i])
                    s["exp_avg"].copy_(m)
                    s["exp_avg_sq"].copy_(v)

    def reload(self, i: int, module, opt: torch.optim.Adam) -> None:
        """Copy member i's module and optimiser state into its slice."""
        with torch.no_grad():
            tensors = _mlp_tensors(module)
            for p, w, m, v in zip(tensors, self.member(self.params, i), self.member(self.exp_avg, i),
                                  self.member(self.exp_avg_sq, i)):
                w.copy_(p)
                s = opt.state.get(p)
                if s:
                    m.copy_(s["exp_avg"])
                    v.copy_(s["exp_avg_sq"])
                else:  # an optimiser that has not stepped yet
                    m.zero_()
                    v.zero_()
            s = opt.state.get(tensors[0])
            self.steps[i] = float(s["step"]) if s else 0.0


class _HostFloats:
    """A float32 tensor filled from Python floats each step. On the CPU it shares its memory with
    a numpy array: writing a list into that costs ~1.5 µs where `torch.tensor(list)` costs ~12."""

    def __init__(self, shape: tuple, device: torch.device) -> None:
        self._array = np.zeros(shape, np.float32)
        self._host = torch.from_numpy(self._array)
        self.tensor = self._host if device.type == "cpu" else self._host.to(device)

    def fill(self, values: list[float]) -> None:
        self._array.reshape(-1)[:] = values  # float64 → float32, rounded to nearest as torch does
        if self.tensor is not self._host:
            self.tensor.copy_(self._host)


class _Buffers:
    """A step's inputs for R members and k D updates; (re)allocated when R or k changes."""

    def __init__(self, R: int, k: int, key: "CohortKey", device: torch.device) -> None:
        B, pack = key.batch_size, key.pack
        n = B // pack  # D decisions per batch
        self.k = k
        self.index = torch.zeros(R, k, B, dtype=torch.long, device=device)  # zeros: valid when not drawn
        self.noise = torch.zeros(R, k, B, 2, device=device)
        self.z = torch.zeros(R, k + 1, B, key.z_dim, device=device)  # the D updates', then the G update's
        z_columns = self.z.view(R, (k + 1) * B, key.z_dim).transpose(1, 2)  # G's input, feature-major
        self.d_z, self.g_z_columns = z_columns[..., : k * B], z_columns[..., k * B:]
        self.gathered = torch.empty(R * k * B, 2, device=device)
        # D's input per D update, feature-major: the real decisions' columns, then the fakes'.
        # Decision r of a batch packs samples r·pack … r·pack + pack − 1, feature p·2 + c.
        self.both = torch.empty(R, k, 2 * pack, 2 * n, device=device)
        self.real = self.both[..., :n].view(R, k, pack, 2, n).permute(0, 1, 4, 2, 3)  # (R, k, n, pack, 2)
        self.fake = self.both[..., n:].view(R, k, pack, 2, n)
        self.d_inputs = list(self.both.unbind(1))  # per D update, (R, 2·pack, 2n)
        self.d_in = torch.empty(R, 2 * pack, n, device=device)  # the G update's fakes
        self.rows = torch.empty(R, N_STATS, device=device)
        self.row_views = self.rows.unbind(0)
        # Adam's per-member step sizes and √(1 − β₂ᵗ): per D update, then the G update's.
        self.adam = _HostFloats((k + 1, 2, R, 1), device)
        self.adam_columns = [tuple(self.adam.tensor[j].unbind(0)) for j in range(k + 1)]
        self.ema_weight = _HostFloats((R, 1), device)
        # Per-member views, built once: the draw loop then only calls the generators.
        self.draws = [[(self.index[i, j], self.noise[i, j], self.z[i, j]) for j in range(k)] for i in range(R)]
        self.g_z = [self.z[i, k] for i in range(R)]


class Cohort:
    """Engines of one `CohortKey` trained together. Not thread-safe: one owner thread."""

    def __init__(self, key: CohortKey) -> None:
        self.key = key
        self.members: list[Engine] = []
        self._G: _StackedNet | None = None
        self._D: _StackedNet | None = None
        self._hyper: _Hyper | None = None
        self._buffers: _Buffers | None = None
        self._stepped: list[bool] = []
        self._finite: list[bool] | None = None  # members' weights all finite, since the last step

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
        if stepped:
            engine.set_last_stats(self._buffers.rows[i].clone())  # the buffer is reused by the next step
        self._stepped[i] = False
        if engine.G_ema is not None:
            with torch.no_grad():
                for p, s in zip(_mlp_tensors(engine.G_ema), self._G.member(self._ema, i)):
                    p.copy_(s)

    def parameters_finite(self, engine: Engine) -> bool:
        """Whether `engine`'s weights in the stacks are all finite (`Engine.parameters_finite` of a
        member, without exporting it). Computed for every member at once, once per step."""
        if self._finite is None:
            self._finite = (torch.isfinite(self._G.params).all(1) & torch.isfinite(self._D.params).all(1)).tolist()
        return self._finite[self._index(engine)]

    def reload(self, engine: Engine) -> None:
        """Take `engine`'s own tensors into the stacks (after restore / load)."""
        i = self._index(engine)
        self._finite = None
        self._G.reload(i, engine.G, engine.g_opt)
        self._D.reload(i, engine.D.mlp, engine.d_opt)
        self._stepped[i] = False
        if engine.G_ema is not None:
            with torch.no_grad():
                for p, s in zip(_mlp_tensors(engine.G_ema), self._G.member(self._ema, i)):
                    s.copy_(p)

    def _export_all(self) -> None:
        for e in self.members:
            self.export(e)

    def _stack(self) -> None:
        self._hyper = self._buffers = self._finite = None
        if not self.members:
            self._G = self._D = None
            return
        ms = self.members
        self._G = _StackedNet([e.G for e in ms], [e.g_opt for e in ms], ms[0].G.leak)
        self._D = _StackedNet([e.D.mlp for e in ms], [e.d_opt for e in ms], ms[0].D.mlp.leak)
        # EMA of G in G's layout; a member without one keeps a copy of G there, never read.
        self._ema = torch.empty_like(self._G.params)
        with torch.no_grad():
            for i, e in enumerate(ms):
                for s, p in zip(self._G.member(self._ema, i), _mlp_tensors(e.G_ema if e.G_ema is not None else e.G)):
                    s.copy_(p)
        # Every member's data in one table: member i's sample m is row offset[i] + m.
        centres = [e.data.centres for e in ms]
        self._table = torch.cat(centres)
        starts = torch.tensor([0] + [len(c) for c in centres[:-1]]).cumsum(0)
        self._offsets = starts.to(self._table.device).view(-1, 1, 1)
        stds = [e.data.noise_std for e in ms]
        self._noise_std = stds[0] if len(set(stds)) == 1 else torch.tensor(stds, device=self._table.device)
        self._stepped = [False] * len(ms)  # stepped by the cohort since its last export or reload

    # --- the step ---------------------------------------------------------------------

    def _hyperparameters(self) -> "_Hyper":
        """Per-member loss choices, targets and Adam betas as tensors; rebuilt only when a config changed."""
        configs = tuple(e.config for e in self.members)
        if self._hyper is not None and len(configs) == len(self._hyper.configs) \
                and all(a is b for a, b in zip(self._hyper.configs, configs)):
            return self._hyper
        ms, device = self.members, self._G.params.device
        names = [c.loss for c in configs]
        losses = {}
        for name, e in zip(names, ms):
            if name not in losses:
                fns = {f: getattr(e.loss, f) for f in ("d_grad", "d_loss", "g_grad", "g_loss")}
                mask = torch.tensor([m == name for m in names], device=device)
                losses[name] = (fns, mask)
        probability = [e.loss.is_probability for e in ms]
        ks = [c.n_critic for c in configs]
        g_groups, d_groups = [e.g_opt.param_groups[0] for e in ms], [e.d_opt.param_groups[0] for e in ms]
        if any(g["weight_decay"] for g in g_groups + d_groups):
            raise ValueError("a cohort's Adam has no weight decay; train this run on its own")

        def column(values: list[float]):  # one float when all members agree, else (R, 1)
            return values[0] if len(set(values)) == 1 else torch.tensor(values, device=device).view(-1, 1)

        self._hyper = _Hyper(
            configs=configs,
            losses=list(losses.values()),
            real_target=torch.tensor([e.real_target for e in ms], device=device).view(-1, 1, 1),
            fake_target=torch.tensor([e.fake_target for e in ms], device=device).view(-1, 1, 1),
            is_probability=None if len(set(probability)) == 1 else torch.tensor(probability, device=device),
            all_probability=all(probability),
            ks=ks,
            betas=[(c.beta1, c.beta2) for c in configs],
            beta1=column([c.beta1 for c in configs]),
            beta2=column([c.beta2 for c in configs]),
            g_eps=column([g["eps"] for g in g_groups]),
            d_eps=column([g["eps"] for g in d_groups]),
            resting=[torch.tensor([i for i, k in enumerate(ks) if k <= it], device=device) if min(ks) <= it
                     else None for it in range(max(ks))],
            last=[torch.tensor([k - 1 == it for k in ks], device=device) for it in range(max(ks))],
        )
        if self._buffers is None or self._buffers.k != max(ks):
            self._buffers = _Buffers(len(ms), max(ks), self.key, device)
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
        ms = self.members
        rows = [e.begin_step() for e in ms]  # the engine's own checks and lr decay for this step
        hyper = self._hyperparameters()
        buf = self._buffers
        with torch.inference_mode():  # no autograd bookkeeping per op (measured ~4 % faster than no_grad)
            self._draw(hyper, buf)
            self._adam_columns(hyper, buf)
            fakes = self._G.forward(buf.d_z)[-1]  # (R, 2, k·B): every D update's fakes
            n = self.key.batch_size // self.key.pack
            buf.fake.copy_(fakes.unflatten(2, (buf.k, n, self.key.pack)).permute(0, 2, 4, 1, 3))
            d_stats = None
            for it in range(buf.k):
                d_stats = self._d_update(hyper, it, d_stats, buf.adam_columns[it])
            g_stats = self._g_update(hyper, buf.adam_columns[buf.k])
            torch.stack([d_stats[0], g_stats[0], d_stats[1], d_stats[2], g_stats[1], g_stats[2], d_stats[3]], 1,
                        out=buf.rows)  # STAT_FIELDS order
            torch_ops.foreach_copy_(rows, buf.row_views)
        ema_weights = [e.record_step(k, 1) for e, k in zip(ms, hyper.ks)]
        self._stepped = [True] * len(ms)
        self._finite = None
        if any(ema_weights):
            buf.ema_weight.fill(ema_weights)
            self._ema.lerp_(self._G.params, buf.ema_weight.tensor)

    def _draw(self, hyper: "_Hyper", buf: _Buffers) -> None:
        """Every member's random draws for this step with its own generator, in a solo step's order;
        then every member's real batches, written into D's inputs."""
        B = self.key.batch_size
        for e, k, draws, g_z in zip(self.members, hyper.ks, buf.draws, buf.g_z):
            rng, data = e.rng, e.data
            for index, noise, z in draws[:k]:  # a member with a smaller k draws nothing for the rest
                data.draw(rng, index, noise)
                z.normal_(generator=rng)
            g_z.normal_(generator=rng)
        R, pack = len(self.members), self.key.pack
        torch.index_select(self._table, 0, torch.add(buf.index, self._offsets).view(-1), out=buf.gathered)
        centres = buf.gathered.view(R, buf.k, B // pack, pack, 2)
        noise = buf.noise.view(R, buf.k, B // pack, pack, 2)
        if isinstance(self._noise_std, float):  # as `PointDataset.sample`: centre + σ·noise
            torch.add(centres, noise, alpha=self._noise_std, out=buf.real)
        else:
            torch.addcmul(centres, noise, self._noise_std.view(-1, 1, 1, 1, 1), out=buf.real)

    def _adam_columns(self, hyper: "_Hyper", buf: _Buffers) -> None:
        """Each member's Adam step size lr / (1 − β₁ᵗ) and √(1 − β₂ᵗ), in float64 from its own lr and
        step count t (as the fused kernel), advancing t: into `buf.adam`, per D update, then G's.
        A member past its k repeats its last D update's values (it is put back afterwards)."""
        ms, D, G, k = self.members, self._D, self._G, max(hyper.ks)
        d_lr = [e.d_opt.param_groups[0]["lr"] for e in ms]
        g_lr = [e.g_opt.param_groups[0]["lr"] for e in ms]
        betas = hyper.betas  # [(β₁, β₂)] per member
        d_steps = [[t + min(it, ki - 1) + 1 for t, ki in zip(D.steps, hyper.ks)] for it in range(k)]
        G.steps = [t + 1 for t in G.steps]
        D.steps = [t + ki for t, ki in zip(D.steps, hyper.ks)]
        values = []
        for lrs, steps in [*((d_lr, t) for t in d_steps), (g_lr, G.steps)]:
            step_sizes, roots = torch_ops.bias_corrections(lrs, betas, steps)
            values += step_sizes + roots
        buf.adam.fill(values)

    def _d_update(self, hyper: "_Hyper", it: int, previous: tuple | None, columns: tuple) -> tuple:
        """The it-th D update of every member with k > it (as `Engine.step`'s D loop).

        Returns (d_loss, D(x) shown, D(G(z)) shown, ‖∇D‖) per member, from its own last D update.
        """
        D, buf = self._D, self._buffers
        R, n = len(self.members), self.key.batch_size // self.key.pack
        acts = D.forward(buf.d_inputs[it])
        out = acts[-1].view(R, 2 * n, 1)  # D's raw outputs: the real decisions, then the fakes
        r, f = out[:, :n], out[:, n:]
        g_r, g_f = self._per_loss(hyper, "d_grad", r, f, hyper.real_target, hyper.fake_target)
        resting = hyper.resting[it]  # members past their k: put back after the update
        kept = None if resting is None else [t.index_select(0, resting) for t in
                                             (D.params, D.grads, D.exp_avg, D.exp_avg_sq)]
        D.backward(acts, torch.cat([g_r, g_f], 1).view(R, 1, 2 * n), param_grads=True, input_grad=False)
        D.adam(columns, hyper.beta1, hyper.beta2, hyper.d_eps)
        if kept is not None:
            for t, old in zip((D.params, D.grads, D.exp_avg, D.exp_avg_sq), kept):
                t.index_copy_(0, resting, old)
        shown = self._display(hyper, out).view(R, 2, n).mean(2)  # (R, 2): mean shown D(x), D(G(z))
        stats = (self._per_loss(hyper, "d_loss", r, f, hyper.real_target, hyper.fake_target),
                 shown[:, 0], shown[:, 1], D.grad_norms())
        if previous is None:
            return stats
        return tuple(torch.where(hyper.last[it], new, old) for new, old in zip(stats, previous))

    def _g_update(self, hyper: "_Hyper", columns: tuple) -> tuple:
        """One G update of every member; returns (g_loss, D(G(z)) shown, ‖∇G‖) per member."""
        G, D, buf = self._G, self._D, self._buffers
        R, B, pack = len(self.members), self.key.batch_size, self.key.pack
        n = B // pack
        g_acts = G.forward(buf.g_z_columns)
        buf.d_in.view(R, pack, 2, n).copy_(g_acts[-1].unflatten(2, (n, pack)).permute(0, 3, 1, 2))
        d_acts = D.forward(buf.d_in)
        f_g = d_acts[-1].view(R, n, 1)
        grad_in = D.backward(d_acts, self._per_loss(hyper, "g_grad", f_g).view(R, 1, n), param_grads=False,
                             input_grad=True)  # ∂L_G/∂(D's input), (R, 2·pack, n)
        grad_fake = grad_in.view(R, pack, 2, n).permute(0, 2, 3, 1).reshape(R, 2, B)  # ∂L_G/∂G(z)
        G.backward(g_acts, grad_fake, param_grads=True, input_grad=False)
        G.adam(columns, hyper.beta1, hyper.beta2, hyper.g_eps)
        return self._per_loss(hyper, "g_loss", f_g), self._display(hyper, f_g).mean((1, 2)), G.grad_norms()


class _Hyper(NamedTuple):
    configs: tuple
    losses: list  # [(loss functions by name, member mask)] per distinct loss
    real_target: torch.Tensor  # (R, 1, 1)
    fake_target: torch.Tensor
    is_probability: torch.Tensor | None  # (R,) bool; None when all members agree
    all_probability: bool
    ks: list[int]
    betas: list[tuple[float, float]]
    beta1: float | torch.Tensor  # a float when all members agree, else (R, 1)
    beta2: float | torch.Tensor
    g_eps: float | torch.Tensor
    d_eps: float | torch.Tensor
    resting: list  # per D update: indices of the members past their k (None: none)
    last: list  # per D update: (R,) bool, whether it is the member's last
