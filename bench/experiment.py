"""Matched experiments: the cross product of methods x patch sizes x seeds on equal terms.

Equal terms means identical data and splits, preset, architecture (``arch="matched"``),
hardware, and *initial weights*: every run of one (dataset, preset, arch, patch, seed)
cell starts from one saved initial state. Whichever method builds its network first
saves it; the others load every tensor whose name and shape match (only the parts that
differ by method, such as the policy's output head, keep their own initialisation).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from bench.config import RunConfig
from bench.errors import UsageError


def plan_runs(base: RunConfig, methods: Sequence[str], patch_sizes: Sequence[Optional[int]] = (),
              seeds: Sequence[int] = ()) -> List[RunConfig]:
    """One RunConfig per (patch size, seed, method), in an order that interleaves methods.

    Methods are innermost so an interrupted experiment leaves matched pairs behind. Without patch
    sizes, the preset's is used (resolving each method's preset also checks ``--set`` overrides
    before anything runs); without seeds, ``base.seed``. Duplicates are dropped.
    """
    from bench.presets import get_preset

    methods = list(dict.fromkeys(methods))
    if not methods:
        raise UsageError("--method: give at least one method")
    defaults = [get_preset(base.dataset, base.preset, method=m, arch=base.arch, **base.overrides).patch_size
                for m in methods]
    plans = []
    for patch in list(dict.fromkeys(patch_sizes)) or defaults[:1]:
        for seed in list(dict.fromkeys(seeds)) or [base.seed]:
            for method in methods:
                cfg = dataclasses.replace(base, method=method, patch_size=patch, seed=seed)
                if len(methods) > 1 and cfg.init_state is None:
                    cfg.init_state = str(init_state_path(cfg))
                plans.append(cfg)
    return plans


def init_state_path(cfg: RunConfig) -> Path:
    """Where the shared initial weights of a matched cell live (method-independent)."""
    cell = f"{cfg.dataset}-{cfg.preset}-{cfg.arch}-p{cfg.patch_size or 'default'}-s{cfg.seed}"
    return Path(cfg.runs_dir) / "_init" / f"{cell}.pt"


def share_initial_state(net: nn.Module, path: Optional[str]) -> Dict[str, object]:
    """Load the shared initial state into ``net``, or create it from ``net`` if it is the first.

    Returns what happened, for the run manifest: ``created``, ``loaded`` and ``kept_own``
    (tensor names that exist only in this method's network or differ in shape).
    """
    if not path:
        return {"created": False, "loaded": 0, "kept_own": []}
    target = Path(path)
    own = net.state_dict()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        torch.save(own, tmp)
        try:  # O_EXCL-like: the first writer wins, a concurrent second one loads instead
            os.link(tmp, target)
            return {"created": True, "loaded": len(own), "kept_own": []}
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        shared = torch.load(target, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line error
        raise UsageError(f"shared initial state {target} is unreadable ({e}); delete it to re-create") from None
    matching = {k: v for k, v in shared.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(matching, strict=False)
    kept = sorted(k for k in own if k not in matching)
    return {"created": False, "loaded": len(matching), "kept_own": kept}

