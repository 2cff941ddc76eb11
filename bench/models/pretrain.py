"""``pretrained="textures"``: a stand-in for ImageNet weights for the tiny CPU backbones.

The papers start glance and focus networks from ImageNet weights; the tiny backbones have none and this
machine cannot download any. Started from random weights, the tiny networks never learn where to look on
the synthetic benchmark, so both methods would be stuck at chance for a reason the papers do not share.

The stand-in: pre-train the tiny backbone (+ a linear head, thrown away) to tell apart 5 procedurally
generated texture families (stripes, checkerboards, bricks in 2-px cells) in 24x24 crops with random
phase, sign, contrast and background colour. The textures are drawn here, not read from the benchmark's
videos (no objects, markers, clutter, trajectories or class pairs), so no benchmark label leaks in.
Deterministic by seed and cached on disk (``$ADABENCH_CACHE`` or ``./.cache``, under ``pretrained/``,
keyed by the recipe version). Both methods get the same weights: the tiny preset names them for V1 and V2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Tuple, TypedDict, cast

import numpy as np
import torch
from torch import nn

RECIPE_VERSION = 1


class _Recipe(TypedDict):
    size: int
    cell: int
    batch: int
    steps: int
    lr: float
    momentum: float
    weight_decay: float
    contrast: Tuple[float, float]
    background: Tuple[float, float]
    noise: float
    seed: int


RECIPE: _Recipe = dict(
    size=24,
    cell=2,
    batch=64,
    steps=300,
    lr=0.05,
    momentum=0.9,
    weight_decay=1e-4,
    contrast=(30.0, 100.0),
    background=(40.0, 200.0),
    noise=6.0,
    seed=0,
)
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255  # the data layer's normalisation
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255


def texture_batch(
    n: int, rng: np.random.Generator, size: int = 24, cell: int = 2
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``n`` random texture crops, normalised float ``[n, 3, size, size]``, and their family ``[n]`` int64."""
    from bench.data.synthetic import PATTERNS, pattern

    period = 2 * cell
    bank = np.stack([pattern(name, size + 2 * period, cell) for name in PATTERNS])  # [K, S+2p, S+2p]
    y = rng.integers(0, len(PATTERNS), n)
    oy, ox = rng.integers(0, 2 * period, (2, n))  # random phase
    r = np.arange(size)
    tex = bank[y[:, None, None], (oy[:, None] + r)[:, :, None], (ox[:, None] + r)[:, None, :]]  # [n, S, S]
    lo, hi = RECIPE["contrast"]
    amp = rng.choice([-1.0, 1.0], n) * rng.uniform(lo, hi, n)
    bg = rng.uniform(*RECIPE["background"], (n, 1, 1, 3))
    x = bg + amp[:, None, None, None] * tex[..., None] + rng.normal(0, RECIPE["noise"], (n, size, size, 3))
    x = torch.from_numpy(np.clip(x, 0, 255).astype(np.float32)).permute(0, 3, 1, 2)
    return (x - _MEAN) / _STD, torch.from_numpy(y)


def pretrain_textures(backbone: nn.Module, out_channels: int) -> nn.Module:
    """Train ``backbone`` (``[B, 3, H, W]`` -> (map, ``[B, out_channels]``)) in place on the texture task."""
    rng = np.random.default_rng(RECIPE["seed"])
    torch.manual_seed(RECIPE["seed"])
    head = nn.Linear(out_channels, 5)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(
        params, lr=RECIPE["lr"], momentum=RECIPE["momentum"], weight_decay=RECIPE["weight_decay"]
    )
    backbone.train()
    for _ in range(RECIPE["steps"]):
        x, y = texture_batch(RECIPE["batch"], rng, RECIPE["size"], RECIPE["cell"])
        loss = nn.functional.cross_entropy(head(backbone(x)[1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return backbone


def textures_path(name: str) -> Path:
    """Cache file of backbone ``name``'s texture weights."""
    root = Path(os.environ.get("ADABENCH_CACHE", ".cache")) / "pretrained"
    return root / f"{name}-textures-v{RECIPE_VERSION}.pt"


def texture_weights(name: str, make: Callable[[], nn.Module]) -> Path:
    """Path of backbone ``name``'s texture weights, pre-training (``make()`` -> fresh backbone) on first
    use."""
    path = textures_path(name)
    if path.is_file():
        return path
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and polite on shared cores; ~5 s
    try:
        with torch.random.fork_rng():  # whether the cache existed must not change the caller's random stream
            torch.manual_seed(RECIPE["seed"])
            bb = make()
            pretrain_textures(bb, cast(int, bb.out_channels))
    finally:
        torch.set_num_threads(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=path.parent)
    os.close(fd)
    torch.save(bb.state_dict(), tmp)
    os.replace(tmp, path)
    return path
