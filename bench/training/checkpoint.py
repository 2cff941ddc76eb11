"""Checkpoints that resume anywhere: weights, optimizer, scheduler, AMP scaler, RNG states,
stage and epoch, written atomically.

Everything stored is a tensor or a plain Python value, so loading works with
``torch.load(weights_only=True)``. Data-order randomness is not in here: loaders should
draw their order from a generator seeded with (seed, epoch), which needs no state.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, cast

import numpy as np
import torch
from torch import nn

from bench.errors import UsageError
from bench.io import PathLike, atomic_torch_save
from bench.training.runtime import DistEnv, gather_objects

FORMAT_VERSION = 1


def unwrap(module: nn.Module) -> nn.Module:
    """The bare module inside DDP / DataParallel (``.module``) and torch.compile (``._orig_mod``)."""
    while True:
        if isinstance(module, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def rng_state() -> Dict[str, Any]:
    """Python, numpy, torch CPU and (if present) CUDA generator states, as tensors/plain values."""
    np_state = cast(Tuple[Any, ...], np.random.get_state())  # the legacy form (the default): a tuple
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _to_tuple(x: Any) -> Any:
    """random.setstate needs tuples all the way down (pickling may hand back lists)."""
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(
    path: PathLike,
    *,
    modules: Mapping[str, nn.Module],
    optimizers: Optional[Mapping[str, torch.optim.Optimizer]] = None,
    schedulers: Optional[Mapping[str, Any]] = None,
    scaler: Optional[Any] = None,
    stage: str,
    epoch: int,
    extra: Optional[Mapping[str, Any]] = None,
    env: Optional[DistEnv] = None,
) -> Optional[Path]:
    """Atomically write everything needed to continue after ``epoch`` of ``stage``.

    ``epoch`` is the number of the last *completed* epoch (convention of the callers:
    resume starts at ``epoch + 1``). ``extra`` holds plain values the trainer needs back
    (stage times, the accuracy curve, best metric, ...).

    Distributed (``env``): a collective. Every rank must call it; the RNG states of all ranks
    are gathered (ranks draw different random patches and actions) and only rank 0 writes
    (returns None on the other ranks). Modules and optimizers are rank 0's: they are the same
    on every rank after the averaged steps and ``broadcast_module_state``.
    """
    rngs = gather_objects(rng_state(), env) if env is not None and env.distributed else None
    if env is not None and not env.is_main:
        return None
    blob = {
        "format": FORMAT_VERSION,
        "stage": stage,
        "epoch": int(epoch),
        "modules": {k: unwrap(m).state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
        "schedulers": {k: s.state_dict() for k, s in (schedulers or {}).items()},
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "rng_by_rank": rngs,
        "extra": dict(extra or {}),
    }
    return atomic_torch_save(blob, path)


def read_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Load a checkpoint blob; a missing or unreadable file is a one-line ``UsageError``."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"checkpoint {p} not found")
    try:
        try:
            blob = torch.load(p, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            # ``extra`` held a non-plain object; the file was written by this harness into
            # the user's own run directory, so full unpickling is acceptable here.
            blob = torch.load(p, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise UsageError(
            f"checkpoint {p} is corrupt or truncated ({e.__class__.__name__}); delete it to restart that run"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT_VERSION:
        raise UsageError(f"checkpoint {p} was not written by this version of adabench; delete it to restart")
    return blob


def load_checkpoint(
    path: PathLike,
    modules: Mapping[str, nn.Module],
    optimizers: Optional[Mapping[str, torch.optim.Optimizer]] = None,
    schedulers: Optional[Mapping[str, Any]] = None,
    scaler: Optional[Any] = None,
    restore_rng: bool = True,
    env: Optional[DistEnv] = None,
) -> Dict[str, Any]:
    """Restore the given objects in place from ``path``; returns ``dict(stage, epoch, extra)``.

    Build the model on its device and its optimizer/scheduler first, exactly as for a fresh
    run; tensors are loaded to CPU and copied into them (optimizer state follows its
    parameters' device). Every object passed must be present in the checkpoint (a mismatch
    is a ``UsageError``: the run directory belongs to a different code version or config).
    With ``env``, each rank restores its own RNG state when the checkpoint was written by the
    same number of ranks, else rank 0's (the random streams then continue, but not exactly).
    """
    p = Path(path)
    blob = read_checkpoint(p)
    for kind, targets in (
        ("modules", modules),
        ("optimizers", optimizers or {}),
        ("schedulers", schedulers or {}),
    ):
        missing = sorted(set(targets) - set(blob[kind]))
        if missing:
            raise UsageError(
                f"checkpoint {p} has no {kind} {', '.join(missing)}; delete it to restart that run"
            )
    try:
        for k, m in modules.items():
            unwrap(m).load_state_dict(blob["modules"][k])
        for k, o in (optimizers or {}).items():
            o.load_state_dict(blob["optimizers"][k])
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise UsageError(f"checkpoint {p} does not match the model: {first}") from None
    for k, s in (schedulers or {}).items():
        s.load_state_dict(blob["schedulers"][k])
    if scaler is not None and blob.get("scaler"):  # an empty dict comes from a disabled scaler
        scaler.load_state_dict(blob["scaler"])
    if restore_rng:
        by_rank = blob.get("rng_by_rank")
        rank = env.rank if env is not None else 0
        world = env.world_size if env is not None else 1
        mine = by_rank[rank] if by_rank and len(by_rank) == world else blob["rng"]
        set_rng_state(mine)
    return {"stage": blob["stage"], "epoch": blob["epoch"], "extra": blob["extra"]}
