"""Snapshots of a training run: rewind in memory, save to and load from disk.

A `Checkpoint` is everything needed to continue a run *exactly* where it was:
G and D weights and buffers, both Adam optimisers' state (first and second
moment estimates and step counts, Kingma & Ba, 2015, Alg. 1), the engine's
training RNG state, the step and update counters and the configuration. `restore()` puts
it back into an `Engine`; training then continues bit-identically to how it
continued from the moment of `capture()` (same device, same torch build —
`tests/test_checkpoints.py` checks this with `torch.equal`).

Restoring copies *into* the engine's existing parameter tensors
(`Module.load_state_dict` copies in place), so the preallocated `.grad`
tensors and the hand-written 2-D step's references to the parameters stay
valid. Optimiser state is loaded from fresh clones, so a checkpoint can be
restored any number of times without training ever writing into it.

`CheckpointRing` keeps the last few checkpoints of a run for a "rewind"
button. `save_run` / `load_run` write and read one `.safetensors` file:
tensors plus JSON metadata, never pickle, so loading a file from a stranger
cannot execute code, and every malformed file raises `CheckpointError` with a
message saying what is wrong.

Threads: `capture` and `restore` touch the engine, so call them from the
thread that owns it (the training thread) or while that thread is stopped.
`CheckpointRing` has its own lock and may be shared.

A run file may also carry the plots' data (`telemetry.History`: the decimated
per-step history, coverage, digit scores and live-change events), bounded and
validated like everything else, so a loaded run shows where it came from.

Not here: when to capture (the runner decides), rewinding the plots
(`telemetry.py`), anything UI.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import FROZEN_FIELDS, ConfigError, TrainConfig
from .data import CSV_MAX_ROWS, CSV_MIN_ROWS, PointDataset
from .engine import Engine
from .records import N_STATS, LockGuarded
from .telemetry import HISTORY_CAPACITY, MAX_EVENT_CHARS, MAX_EVENTS, History

log = logging.getLogger(__name__)

FORMAT_NAME = "gan-classroom-run"
FORMAT_VERSION = 1  # bump when the tensor layout or metadata keys change
EXTRA_PREFIXES = ("timelapse",)  # tensor folders a run file may carry besides the run itself
MAX_RUN_FILE_BYTES = 50_000_000  # a default digits run is ~8 MB; refuse anything far larger
MAX_HEADER_BYTES = 1_000_000  # the safetensors JSON header; ours is a few kB
RING_CAPACITY = 20
RING_MAX_BYTES = 128_000_000  # ~18 checkpoints of a default digits run, thousands of a 2-D run
ADAM_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")
EVAL_TENSORS = ("eval_real", "eval_noise", "coverage_noise", "score_noise")  # Engine's fixed inputs
_GROUP_NUMBERS = ("lr", "betas", "eps", "weight_decay")  # Adam hyperparameters kept per param group
_NETS = ("G", "D")
_OPTS = ("g_opt", "d_opt")


class CheckpointError(ValueError):
    """A checkpoint or run file cannot be used; the message says why."""


# ---------------------------------------------------------------------------- in memory

def _cpu_clone(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", copy=True)


def _clone_optimizer_state(state: dict[str, Any]) -> dict[str, Any]:
    """`Optimizer.state_dict()` with every tensor cloned (it returns live references)."""
    return {
        "state": {i: {k: _cpu_clone(v) if torch.is_tensor(v) else v for k, v in s.items()}
                  for i, s in state["state"].items()},
        "param_groups": [dict(g, params=list(g["params"])) for g in state["param_groups"]],
    }


@dataclass(frozen=True)
class Checkpoint:
    """A complete, private copy of one engine's training state (tensors on the CPU).

    The tensors are never handed to an engine directly: `restore` copies or
    clones them, so the checkpoint stays valid after any amount of training.
    """

    step: int
    config: TrainConfig
    g_state: dict[str, torch.Tensor]  # G.state_dict(): parameters and buffers
    d_state: dict[str, torch.Tensor]  # D.state_dict() (incl. BatchNorm running stats)
    g_opt_state: dict[str, Any]  # g_opt.state_dict() layout: {"state": {i: {...}}, "param_groups": [...]}
    d_opt_state: dict[str, Any]
    rng_state: torch.Tensor  # engine.rng.get_state(), uint8
    rng_device: str  # device type the RNG state belongs to: "cpu" or "cuda"
    created: float  # time.time() at capture
    ema_state: dict[str, torch.Tensor] | None = None  # G_ema.state_dict() when the run keeps an EMA of G
    # Engine.d_updates / g_updates; None in files written before they existed (then taken
    # from Adam's step counts, which for D also count lazy R1 updates).
    d_updates: int | None = None
    g_updates: int | None = None

    @property
    def nbytes(self) -> int:
        """Bytes held by the checkpoint's tensors."""
        tensors = [*self.g_state.values(), *self.d_state.values(), *(self.ema_state or {}).values(),
                   self.rng_state]
        for opt in (self.g_opt_state, self.d_opt_state):
            tensors += [v for s in opt["state"].values() for v in s.values() if torch.is_tensor(v)]
        return sum(t.numel() * t.element_size() for t in tensors)


def capture(engine: Engine) -> Checkpoint:
    """Copy the engine's complete training state (call from the engine's owning thread)."""
    return Checkpoint(
        step=engine.step_count,
        config=engine.config,
        g_state={k: _cpu_clone(v) for k, v in engine.G.state_dict().items()},
        d_state={k: _cpu_clone(v) for k, v in engine.D.state_dict().items()},
        g_opt_state=_clone_optimizer_state(engine.g_opt.state_dict()),
        d_opt_state=_clone_optimizer_state(engine.d_opt.state_dict()),
        rng_state=engine.rng.get_state().clone(),
        rng_device=engine.device.type,
        created=time.time(),
        ema_state=None if engine.G_ema is None else {k: _cpu_clone(v) for k, v in engine.G_ema.state_dict().items()},
        d_updates=engine.d_updates,
        g_updates=engine.g_updates,
    )


def _check_module_state(name: str, module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        raise CheckpointError(f"{name} weights do not match this network ({'; '.join(parts)})")
    for key, ref in expected.items():
        got = state[key]
        if tuple(got.shape) != tuple(ref.shape):
            raise CheckpointError(f"{name}/{key} has shape {tuple(got.shape)}, "
                                  f"this network needs {tuple(ref.shape)}")
        if got.dtype != ref.dtype:
            raise CheckpointError(f"{name}/{key} has dtype {got.dtype}, this network needs {ref.dtype}")


def _check_optimizer_state(name: str, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    params = [p for g in opt.param_groups for p in g["params"]]
    groups = state.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(opt.param_groups):
        raise CheckpointError(f"{name}: expected {len(opt.param_groups)} parameter group(s)")
    if sum(len(g["params"]) for g in groups) != len(params):
        raise CheckpointError(f"{name}: state is for a different number of parameters than this network")
    for i, s in state["state"].items():
        if not isinstance(i, int) or not 0 <= i < len(params):
            raise CheckpointError(f"{name}: optimizer state for unknown parameter {i!r}")
        if set(s) != set(ADAM_STATE_KEYS):
            missing = sorted(set(ADAM_STATE_KEYS) - set(s))
            extra = sorted(set(s) - set(ADAM_STATE_KEYS))
            raise CheckpointError(f"{name}/{i}: Adam state must have {', '.join(ADAM_STATE_KEYS)}"
                                  f"{'; missing ' + ', '.join(missing) if missing else ''}"
                                  f"{'; unexpected ' + ', '.join(extra) if extra else ''}")
        for key in ("exp_avg", "exp_avg_sq"):
            if tuple(s[key].shape) != tuple(params[i].shape):
                raise CheckpointError(f"{name}/{i}/{key} has shape {tuple(s[key].shape)}, "
                                      f"the parameter has {tuple(params[i].shape)}")
            if not s[key].is_floating_point():
                raise CheckpointError(f"{name}/{i}/{key} must be floating point, got {s[key].dtype}")
        step = s["step"]
        if step.numel() != 1 or not step.is_floating_point() or not 0 <= float(step) < math.inf:
            raise CheckpointError(f"{name}/{i}/step must be one finite number ≥ 0")
    if state["state"] and len(state["state"]) != len(params):
        raise CheckpointError(f"{name}: Adam state covers {len(state['state'])} of {len(params)} parameters")


def _check_compatible(engine: Engine, ckpt: Checkpoint) -> None:
    """Raise CheckpointError unless `ckpt` fits `engine` exactly; touches nothing."""
    # The same frozen set as Engine.apply, minus the device: a checkpoint may move between devices.
    frozen = sorted(f for f in FROZEN_FIELDS - {"device"} if getattr(ckpt.config, f) != getattr(engine.config, f))
    if frozen:
        raise CheckpointError(f"checkpoint is from a different run ({', '.join(frozen)} differ); "
                              "reset with its configuration first")
    _check_module_state("G", engine.G, ckpt.g_state)
    _check_module_state("D", engine.D, ckpt.d_state)
    _check_optimizer_state("g_opt", engine.g_opt, ckpt.g_opt_state)
    _check_optimizer_state("d_opt", engine.d_opt, ckpt.d_opt_state)
    if ckpt.rng_state.dtype != torch.uint8 or ckpt.rng_state.ndim != 1:
        raise CheckpointError("the RNG state must be a 1-D uint8 tensor")
    if ckpt.rng_device == engine.device.type:
        try:  # on a scratch generator, so a bad state fails before anything changed
            torch.Generator(engine.device).set_state(ckpt.rng_state.clone())
        except RuntimeError as exc:
            raise CheckpointError(f"the saved RNG state does not fit this torch build ({exc})") from None


def _set_rng(engine: Engine, ckpt: Checkpoint) -> None:
    if ckpt.rng_device == engine.device.type:
        engine.rng.set_state(ckpt.rng_state.clone())
        return
    # A CPU generator's state (Mersenne Twister, 5 kB) and a CUDA one's (Philox seed
    # and offset) are different things: continue with a fresh, deterministic stream.
    engine.rng.manual_seed(ckpt.config.seed + ckpt.step)
    log.info("RNG state saved on %s cannot be restored on %s; reseeded (the run continues, "
             "but not bit-identically)", ckpt.rng_device, engine.device.type)


def restore(engine: Engine, ckpt: Checkpoint) -> None:
    """Put `ckpt` back into `engine`: weights, Adam state, RNG, step count, live config.

    Validates everything first, so a bad checkpoint raises `CheckpointError` and
    leaves the engine untouched. Per-step statistics not yet drained belong to
    the abandoned steps and are discarded. Call from the engine's owning thread.
    """
    _check_compatible(engine, ckpt)
    config = replace(ckpt.config, device=engine.config.device)
    with torch.no_grad():
        engine.G.load_state_dict(ckpt.g_state)  # copies into the existing tensors
        engine.D.load_state_dict(ckpt.d_state)
        if engine.G_ema is not None:
            # A run file from before EMA existed (or with it off) restarts the EMA from G.
            engine.G_ema.load_state_dict(ckpt.ema_state if ckpt.ema_state is not None else ckpt.g_state)
    for opt, state in ((engine.g_opt, ckpt.g_opt_state), (engine.d_opt, ckpt.d_opt_state)):
        # load_state_dict keeps tensors that are already on the right device (no copy):
        # give it clones so training never writes into the checkpoint.
        # Hyperparameters come from the checkpoint, implementation flags (fused …) from the live optimizer.
        fresh = _clone_optimizer_state(state)
        fresh["param_groups"] = [{**live, **{k: saved[k] for k in _GROUP_NUMBERS if k in saved}}
                                 for saved, live in zip(fresh["param_groups"], opt.state_dict()["param_groups"])]
        opt.load_state_dict(fresh)
    _set_rng(engine, ckpt)
    engine.step_count = ckpt.step
    adam_steps = lambda opt: int(next(iter(opt.state.values()))["step"]) if opt.state else 0
    engine.d_updates = ckpt.d_updates if ckpt.d_updates is not None else adam_steps(engine.d_opt)
    engine.g_updates = ckpt.g_updates if ckpt.g_updates is not None else adam_steps(engine.g_opt)
    engine.rows = 0
    engine.apply(config)  # live fields (lr, betas, loss, smoothing, batch size …)


@dataclass(frozen=True)
class CheckpointInfo:
    """What a rewind menu shows about one kept checkpoint."""

    index: int  # stable id within its ring (increases with every add; never reused)
    step: int
    created: float  # time.time()

    @property
    def label(self) -> str:
        return f"#{self.index} · step {self.step:,} · {time.strftime('%H:%M:%S', time.localtime(self.created))}"


class CheckpointRing(LockGuarded):
    """The last `capacity` checkpoints of a run (and at most `max_bytes` of them).

    Adding to a full ring drops the oldest. Indices are stable ids, not
    positions, so a menu entry keeps meaning the same checkpoint. One lock
    guards the list; any thread may call any method.
    """

    def __init__(self, capacity: int = RING_CAPACITY, max_bytes: int = RING_MAX_BYTES) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: list[tuple[int, Checkpoint]] = []  # oldest first
        self._next_index = 0
        self._bytes = 0

    def add(self, ckpt: Checkpoint) -> int:
        """Keep `ckpt` (dropping the oldest if full); returns its index."""
        size = ckpt.nbytes
        with self._lock:
            index = self._next_index
            self._next_index += 1
            self._items.append((index, ckpt))
            self._bytes += size
            # Always keep the newest, even if it alone exceeds max_bytes.
            while len(self._items) > 1 and (len(self._items) > self.capacity or self._bytes > self.max_bytes):
                _, old = self._items.pop(0)
                self._bytes -= old.nbytes
            return index

    def list(self) -> list[CheckpointInfo]:
        """Summaries of the kept checkpoints, oldest first."""
        with self._lock:
            return [CheckpointInfo(i, c.step, c.created) for i, c in self._items]

    def get(self, index: int) -> Checkpoint:
        with self._lock:
            for i, c in self._items:
                if i == index:
                    return c
            kept = ", ".join(f"#{i}" for i, _ in self._items) or "none"
        raise CheckpointError(f"checkpoint #{index} is not kept any more (kept: {kept})")

    def drop_after(self, step: int) -> None:
        """Forget checkpoints later than `step` (after a rewind they are another timeline)."""
        with self._lock:
            self._items = [(i, c) for i, c in self._items if c.step <= step]
            self._bytes = sum(c.nbytes for _, c in self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# ---------------------------------------------------------------------------- on disk
#
# One safetensors file (https://github.com/huggingface/safetensors): an 8-byte
# little-endian header length, a JSON header, raw tensor bytes. Tensor keys:
#   G/<state_dict key>, D/<state_dict key>        weights and buffers
#   g_opt/<param index>/<step|exp_avg|exp_avg_sq>  Adam state (same for d_opt)
#   rng                                            engine.rng.get_state(), uint8
#   eval/<eval_real|eval_noise|…>                  the engine's fixed evaluation inputs
#   data/points                                    the (standardised) points of a CSV run
# Metadata (strings): format, format_version, step, config (JSON),
# optimizers (JSON: param_groups' lr/betas/eps/weight_decay), rng_device, created,
# d_updates, g_updates (optional: absent in older files),
# telemetry (JSON, optional: {"history_bin": n, "events": [[step, text], …]}).
# Optional tensors: telemetry/<history|coverage|digit_scores>, the plots' data, float64.

_TELEMETRY_TABLES = {"history": 2 + N_STATS, "coverage": 3, "digit_scores": 3}  # name → columns


def _encode_history(history: History, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    for name in _TELEMETRY_TABLES:
        table = history.rows if name == "history" else getattr(history, name)
        tensors[f"telemetry/{name}"] = torch.from_numpy(table.astype("float64", copy=True)).contiguous()
    metadata["telemetry"] = json.dumps({"history_bin": int(history.bin_size),
                                        "events": [[int(s), str(t)] for s, t in history.events]})


def _decode_history(tensors: dict[str, torch.Tensor], meta: dict[str, str], step: int) -> History | None:
    """The plots' data of a run file, checked (shapes, sizes, steps); None if it has none."""
    if "telemetry" not in meta:
        return None
    info = _json(meta, "telemetry")
    if not isinstance(info, dict) or not isinstance(info.get("events"), list) or len(info["events"]) > MAX_EVENTS:
        raise CheckpointError("run file metadata 'telemetry' is malformed")
    bin_size = info.get("history_bin")
    if isinstance(bin_size, bool) or not isinstance(bin_size, int) or not 1 <= bin_size <= 2**40:
        raise CheckpointError(f"run file telemetry history_bin must be a whole number ≥ 1, got {bin_size!r}")
    events = []
    for event in info["events"]:
        if not (isinstance(event, list) and len(event) == 2 and isinstance(event[0], int)
                and not isinstance(event[0], bool) and 0 <= event[0] <= step
                and isinstance(event[1], str) and len(event[1]) <= MAX_EVENT_CHARS):
            raise CheckpointError("run file telemetry events must be [step, short text] pairs")
        events.append((event[0], event[1]))
    tables = {}
    for name, cols in _TELEMETRY_TABLES.items():
        t = tensors.get(f"telemetry/{name}")
        if t is None or t.ndim != 2 or t.shape[1] != cols or len(t) > HISTORY_CAPACITY or t.dtype != torch.float64:
            raise CheckpointError(f"run file 'telemetry/{name}' must be (≤ {HISTORY_CAPACITY}, {cols}) float64")
        table = t.numpy()
        steps = table[:, 0]
        if not (torch.isfinite(t[:, 0]).all() and (steps >= 0).all() and (steps <= step).all()
                and (len(steps) < 2 or (steps[1:] >= steps[:-1]).all())):
            raise CheckpointError(f"run file 'telemetry/{name}' steps must rise from 0 to the run's step")
        tables[name] = table
    return History(tables["history"], bin_size, tables["coverage"], tables["digit_scores"], tuple(events))


def _encode(engine: Engine, ckpt: Checkpoint, history: History | None = None,
            extra_tensors: dict[str, torch.Tensor] | None = None) -> bytes:
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {k: v.contiguous() for k, v in (extra_tensors or {}).items()}
    for net, state in zip(_NETS, (ckpt.g_state, ckpt.d_state)):
        tensors.update({f"{net}/{k}": v.contiguous() for k, v in state.items()})
    optimizers = {}
    for name, state in zip(_OPTS, (ckpt.g_opt_state, ckpt.d_opt_state)):
        for i, s in state["state"].items():
            tensors.update({f"{name}/{i}/{k}": v.reshape(()).float() if k == "step" else v.contiguous()
                            for k, v in s.items()})
        optimizers[name] = {
            "n_params": sum(len(g["params"]) for g in state["param_groups"]),
            "param_groups": [{k: g[k] for k in _GROUP_NUMBERS} for g in state["param_groups"]],
        }
    tensors["rng"] = ckpt.rng_state
    if ckpt.ema_state is not None:
        tensors.update({f"G_ema/{k}": v.contiguous() for k, v in ckpt.ema_state.items()})
    for name in EVAL_TENSORS:
        t = getattr(engine, name, None)
        if t is not None:
            tensors[f"eval/{name}"] = _cpu_clone(t).contiguous()
    if ckpt.config.dataset == "csv":
        tensors["data/points"] = _cpu_clone(engine.data.points).contiguous()
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "step": str(ckpt.step),
        "config": json.dumps(ckpt.config.to_dict()),
        "optimizers": json.dumps(optimizers),
        "rng_device": ckpt.rng_device,
        "created": repr(ckpt.created),
        "d_updates": str(ckpt.d_updates),
        "g_updates": str(ckpt.g_updates),
        "gan_core_version": __version__,
    }
    if history is not None:
        _encode_history(history, tensors, metadata)
    return save(tensors, metadata=metadata)


def save_run(engine: Engine, target: str | os.PathLike | io.BufferedIOBase, *,
             max_bytes: int = MAX_RUN_FILE_BYTES, history: History | None = None,
             extra_tensors: dict[str, torch.Tensor] | None = None) -> Path | None:
    """Write the engine's run to one `.safetensors` file; returns its path.

    `target` is a directory (the file is named after the dataset and step), a
    file path, or a writable binary file object (then returns None). Files are
    written atomically (temporary file, then rename). Raises `CheckpointError`
    if the file would exceed `max_bytes`, because `load_run` would refuse it.
    `history` (optional) is the plots' data to carry along (`Telemetry.history()`).
    `extra_tensors` (keys under an `EXTRA_PREFIXES` folder, e.g. the time-lapse's
    `timelapse/…`) travel in the same file; read them back with `load_run_extras`.
    Call from the engine's owning thread or while it is stopped.
    """
    bad = sorted(k for k in extra_tensors or {} if k.split("/")[0] not in EXTRA_PREFIXES)
    if bad:
        raise CheckpointError(f"extra run-file tensors must sit under {EXTRA_PREFIXES}, got {bad[:3]}")
    data = _encode(engine, capture(engine), history, extra_tensors)
    if len(data) > max_bytes:
        raise CheckpointError(f"this run needs {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB "
                              "limit for run files; use a smaller width")
    if hasattr(target, "write"):
        target.write(data)
        return None
    path = Path(target)
    if path.is_dir():
        path = path / f"gan-{engine.config.dataset}-step{engine.step_count}.safetensors"
    if path.suffix != ".safetensors":
        raise CheckpointError(f"run files end in .safetensors, got {path.name!r}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _read_header(data: bytes) -> dict[str, Any]:
    """The safetensors JSON header, parsed and checked by hand (json only)."""
    if len(data) < 8:
        raise CheckpointError("not a run file: too short to be a .safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n > min(len(data) - 8, MAX_HEADER_BYTES):
        raise CheckpointError("not a run file: the .safetensors header length is invalid")
    try:
        header = json.loads(data[8: 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"not a run file: malformed .safetensors header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError("not a run file: the .safetensors header is not a JSON object")
    return header


def _metadata(header: dict[str, Any]) -> dict[str, str]:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise CheckpointError("this .safetensors file is not a GAN Classroom run (no run metadata)")
    version = meta.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"run file format version {version!r} is not supported; "
                              f"this version of the app reads version {FORMAT_VERSION}")
    for key in ("step", "config", "optimizers", "rng_device"):
        if not isinstance(meta.get(key), str):
            raise CheckpointError(f"run file metadata lacks {key!r}")
    return meta


def _json(meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"run file metadata {key!r} is malformed JSON ({exc})") from None


def _number(value: Any, what: str, lo: float = 0.0, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise CheckpointError(f"run file: {what} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _optimizer_from_file(name: str, tensors: dict[str, torch.Tensor], info: Any) -> dict[str, Any]:
    if not isinstance(info, dict) or not isinstance(info.get("param_groups"), list) \
            or not isinstance(info.get("n_params"), int) or len(info["param_groups"]) != 1:
        raise CheckpointError(f"run file metadata for {name} is malformed")
    (g,) = info["param_groups"]
    if not isinstance(g, dict) or not isinstance(g.get("betas"), list) or len(g["betas"]) != 2:
        raise CheckpointError(f"run file metadata for {name} is malformed")
    group = {"lr": _number(g.get("lr"), f"{name} lr", 0, 1),
             "betas": tuple(_number(b, f"{name} betas", 0, 1) for b in g["betas"]),
             "eps": _number(g.get("eps"), f"{name} eps", 0, 1),
             "weight_decay": _number(g.get("weight_decay"), f"{name} weight_decay", 0, 1),
             "params": list(range(info["n_params"]))}
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        parts = key.split("/")
        if parts[0] != name:
            continue
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ADAM_STATE_KEYS:
            raise CheckpointError(f"run file has an unexpected tensor {key!r}")
        state.setdefault(int(parts[1]), {})[parts[2]] = t
    return {"state": dict(sorted(state.items())), "param_groups": [group]}


def _created(value: Any) -> float:
    try:
        created = float(value)
    except (TypeError, ValueError):
        return time.time()
    return created if math.isfinite(created) else time.time()


def _csv_text(points: torch.Tensor) -> bytes:
    """CSV text for `Engine(...)`'s parser; the exact points are put back afterwards."""
    return "\n".join(f"{x:.9g},{y:.9g}" for x, y in points.tolist()).encode()


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # never more than the limit, whatever stat() says
    except OSError as exc:
        raise CheckpointError(f"cannot read run file {path.name!r}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise CheckpointError(f"run file is over {max_bytes / 1e6:.0f} MB, the limit for run files")
    return data


def _load_tensors(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"run file tensors are unreadable: {exc}") from None
    known_prefixes = (*_NETS, *_OPTS, "rng", "eval", "data", "G_ema", "telemetry", *EXTRA_PREFIXES)
    unknown = sorted(k for k in tensors if k.split("/")[0] not in known_prefixes)
    if unknown:
        raise CheckpointError(f"run file has unexpected tensors: {', '.join(unknown[:5])}")
    if "rng" not in tensors:
        raise CheckpointError("run file lacks the tensor 'rng' (the RNG state)")
    return tensors


def _config_from_file(meta: dict[str, str], tensors: dict[str, torch.Tensor], device: str) -> TrainConfig:
    config_dict = _json(meta, "config")
    if not isinstance(config_dict, dict):
        raise CheckpointError("run file metadata 'config' must be a JSON object")
    if "d_batchnorm" not in config_dict:
        # Files from before the field: a live loss change keeps D, so the saved loss may not
        # tell whether D has BatchNorm. The saved tensors do.
        config_dict = {**config_dict, "d_batchnorm": any(
            k.startswith("D/") and k.endswith(".running_mean") for k in tensors)}
    try:
        return TrainConfig.from_dict({**config_dict, "device": device})
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"run file has an invalid configuration: {exc}") from None


def _count(meta: dict[str, str], key: str, optional: bool = False) -> int | None:
    """A whole number ≥ 0 from the metadata (None if `optional` and absent)."""
    raw = meta.get(key)
    if raw is None and optional:
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise CheckpointError(f"run file {key} must be a whole number ≥ 0, got {raw!r}")
    return value


def _csv_points(config: TrainConfig, tensors: dict[str, torch.Tensor]) -> torch.Tensor | None:
    if config.dataset != "csv":
        return None
    points = tensors.get("data/points")
    if points is None:
        raise CheckpointError("run file of a CSV run lacks its points ('data/points')")
    if points.ndim != 2 or points.shape[1] != 2 or not CSV_MIN_ROWS <= len(points) <= CSV_MAX_ROWS \
            or not points.is_floating_point() or not torch.isfinite(points).all():
        raise CheckpointError(f"run file 'data/points' must be ({CSV_MIN_ROWS}…{CSV_MAX_ROWS}, 2) finite numbers")
    return points


def _check_eval_tensors(engine: Engine, tensors: dict[str, torch.Tensor]) -> None:
    for name in EVAL_TENSORS:
        ref, saved = getattr(engine, name, None), tensors.get(f"eval/{name}")
        if ref is None or saved is None:
            if (ref is None) != (saved is None):
                raise CheckpointError(f"run file {'lacks' if saved is None else 'has an unexpected'} "
                                      f"tensor 'eval/{name}'")
            continue
        if saved.shape != ref.shape or saved.dtype != ref.dtype:
            raise CheckpointError(f"run file 'eval/{name}' has shape {tuple(saved.shape)}, "
                                  f"expected {tuple(ref.shape)}")


def load_run(path: str | os.PathLike, device: str = "auto", *,
             max_bytes: int = MAX_RUN_FILE_BYTES) -> Engine:
    """Rebuild an `Engine` from a file written by `save_run` (see `read_run`)."""
    return read_run(path, device, max_bytes=max_bytes)[0]


def read_run(path: str | os.PathLike, device: str = "auto", *,
             max_bytes: int = MAX_RUN_FILE_BYTES) -> tuple[Engine, History | None]:
    """Rebuild an `Engine` from a file written by `save_run`, ready to continue, and the
    plots' data the file carries (None for a file saved without it).

    Reads the file with `json` and `safetensors` only — no pickle, no code runs.
    `device` overrides the saved one ("auto", "cpu", "cuda"). On the device type
    it was saved on, training continues bit-identically; across CPU/GPU the RNG
    stream is reseeded. Every problem raises `CheckpointError`.
    """
    return read_run_bytes(_read_file(Path(path), max_bytes), device)


def read_run_bytes(data: bytes, device: str = "auto") -> tuple[Engine, History | None]:
    """`read_run` of a run file's contents (e.g. `save_run` into a `BytesIO`, sent to a trainer
    process)."""
    meta = _metadata(_read_header(data))
    if meta["rng_device"] not in ("cpu", "cuda"):
        raise CheckpointError(f"run file rng_device must be 'cpu' or 'cuda', got {meta['rng_device']!r}")
    optimizers = _json(meta, "optimizers")
    if not isinstance(optimizers, dict):
        raise CheckpointError("run file metadata 'optimizers' must be a JSON object")
    tensors = _load_tensors(data)
    step = _count(meta, "step")
    history = _decode_history(tensors, meta, step)
    config = _config_from_file(meta, tensors, device)
    points = _csv_points(config, tensors)
    try:
        engine = Engine(config, None if points is None else _csv_text(points))
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot rebuild the run: {exc}") from None
    if points is not None:
        engine.data = PointDataset("csv", f"Uploaded points ({len(points):,})", points=points,
                                   device=engine.device)
    _check_eval_tensors(engine, tensors)
    restore(engine, Checkpoint(
        step=step,
        config=config,
        g_state={k[2:]: v for k, v in tensors.items() if k.startswith("G/")},
        d_state={k[2:]: v for k, v in tensors.items() if k.startswith("D/")},
        g_opt_state=_optimizer_from_file("g_opt", tensors, optimizers.get("g_opt")),
        d_opt_state=_optimizer_from_file("d_opt", tensors, optimizers.get("d_opt")),
        rng_state=tensors["rng"],
        rng_device=meta["rng_device"],
        created=_created(meta.get("created")),
        ema_state={k[6:]: v for k, v in tensors.items() if k.startswith("G_ema/")} or None,
        d_updates=_count(meta, "d_updates", optional=True),
        g_updates=_count(meta, "g_updates", optional=True),
    ))
    for name in EVAL_TENSORS:
        saved = tensors.get(f"eval/{name}")
        if saved is not None:
            getattr(engine, name).copy_(saved)  # the same fixed noise as before saving, on any device
    return engine, history


def pack_engine(engine: Engine) -> tuple[bytes, str]:
    """An engine as it crosses to another process: a run file's bytes and its device type."""
    buffer = io.BytesIO()
    save_run(engine, buffer)
    return buffer.getvalue(), engine.device.type


def unpack_engine(packed: tuple[bytes, str]) -> Engine:
    """The engine `pack_engine` packed, on the same device type."""
    data, device = packed
    return read_run_bytes(data, device)[0]


def load_run_extras(path: str | os.PathLike, prefix: str, *,
                    max_bytes: int = MAX_RUN_FILE_BYTES) -> dict[str, torch.Tensor]:
    """`read_run_extras` of the run file at `path`."""
    return read_run_extras(_read_file(Path(path), max_bytes), prefix)


def read_run_extras(data: bytes, prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix/` of a run file's contents (e.g. "timelapse"), {} if it has none.

    Reads with safetensors (no pickle); call after `read_run_bytes` accepted the file.
    """
    if prefix not in EXTRA_PREFIXES:
        raise CheckpointError(f"unknown extra tensors {prefix!r}; run files carry {EXTRA_PREFIXES}")
    return {k: v for k, v in _load_tensors(data).items() if k.startswith(prefix + "/")}
