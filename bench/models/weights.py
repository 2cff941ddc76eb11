"""Where a backbone's initial weights come from: one resolution for building and for the manifest.

A preset names each backbone's start (``glance_pretrained`` / ``focus_pretrained``):

- ``None`` or ``"none"``: random initialisation (training from scratch, knowingly);
- ``"imagenet"``: torchvision's ImageNet-1k weights (``IMAGENET1K_V1``: the original MobileNetV2 and
  ResNet-50 releases both papers' code loads), read from torch's cache (``$TORCH_HOME/hub/checkpoints``)
  and downloaded into it once through torchvision's weights API; offline, a one-line error says how to
  give a local file or to train from scratch;
- ``"textures"``: the tiny backbones' cached stand-in (``bench.models.pretrain``);
- a path: a local state dict in torchvision, tonylins-MobileNetV2, TSM or DataParallel layout
  (``bench.models.layouts``), e.g. the V2 code's ``Initialization_model_prime_resnet50_patch_size_96.pth``
  or a TSM ``mobilenetv2_segment8.pth.tar``.

``resolve_pretrained`` turns a spec into a local file (or None); ``weight_sources(preset)`` does it for
both backbones and adds each file's SHA-256, for the run manifest, and fails before anything trains.
``timing_weights(preset)``: for timing commands, which never download (speed does not depend on weight
values): each backbone keeps weights already on this machine, the others start random, said in one line.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, cast
from urllib.parse import urlparse

import torch
from torchvision import models as tvm

from bench.errors import UsageError

# backbone registry name -> torchvision architecture with ImageNet weights (TSM adds no parameters)
IMAGENET_ARCH: Dict[str, str] = {"mbv2": "mbv2", "tsm_mbv2": "mbv2", "res50": "res50", "tsm_res50": "res50"}
TEXTURE_BACKBONES = ("tiny", "tiny_tsm")
ROLES = ("glance", "focus")
_SHA_CACHE: Dict[Tuple[str, int, int], str] = {}


def imagenet_weights(arch: str) -> Any:
    """torchvision's weights enum entry for ``arch`` ("mbv2" | "res50")."""
    return {"mbv2": tvm.MobileNet_V2_Weights.IMAGENET1K_V1, "res50": tvm.ResNet50_Weights.IMAGENET1K_V1}[arch]


def imagenet_cache_path(arch: str) -> Path:
    """Where torch's hub cache keeps (or will keep) ``arch``'s ImageNet file."""
    name = os.path.basename(urlparse(imagenet_weights(arch).url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def imagenet_file(arch: str, option: str) -> Path:
    """The cached ImageNet file of ``arch``, downloaded once (hash-checked); offline: one-line UsageError."""
    path = imagenet_cache_path(arch)
    if path.is_file():
        return path
    url = imagenet_weights(arch).url
    m = torch.hub.HASH_REGEX.search(path.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=m.group(1) if m else None, progress=False)
    except Exception as e:  # offline, proxy, disk full, hash mismatch
        raise UsageError(
            f"{option}=imagenet: cannot get torchvision's ImageNet weights for {arch} from {url} "
            f"({type(e).__name__}); put that file at {path}, give a local file with "
            f"--set {option}=PATH, or train from scratch with --set {option}=none"
        ) from None
    return path


def is_none(spec: Optional[str]) -> bool:
    """``None``, ``"none"`` or ``"null"``: no pretrained weights."""
    return spec is None or str(spec).strip().lower() in ("", "none", "null")


def resolve_pretrained(spec: Optional[str], backbone: str, option: str, width: float = 1.0) -> Optional[str]:
    """A preset's weight spec for ``backbone`` (of channel multiplier ``width``) -> a local file to load, or
    None (random init). ``option`` names the setting in messages (e.g. ``glance_pretrained``).
    """
    if is_none(spec):
        return None
    if spec == "imagenet":
        if backbone not in IMAGENET_ARCH:
            raise UsageError(
                f"{option}=imagenet: backbone {backbone} has no ImageNet weights; "
                f"give a local file (PATH) or none"
            )
        return str(imagenet_file(IMAGENET_ARCH[backbone], option))
    if spec == "textures":
        if backbone not in TEXTURE_BACKBONES:
            raise UsageError(
                f"{option}=textures: only the tiny backbones have texture weights, not {backbone}"
            )
        from bench.models.base import TinyBackbone
        from bench.models.pretrain import texture_weights

        name = "tiny" if width == 1.0 else f"tiny-w{width:g}"
        return str(texture_weights(name, lambda: TinyBackbone(width=width)))
    if not os.path.isfile(cast(str, spec)):  # not is_none(spec): a str
        raise UsageError(f"{option}: pretrained weights file '{spec}' does not exist")
    return str(spec)


def _safe_globals() -> list:
    """Accuracies saved as numpy scalars, pickled by numpy 1.x ("numpy.core") or 2.x ("numpy._core")."""
    import numpy as np

    scalar = (getattr(np, "_core", None) or np.core).multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32")]
    return [
        np.dtype,
        *dtypes,
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
    ]


def safe_load(path: Any, what: str) -> Any:
    """``torch.load(weights_only=True)`` (tensors, plain values and numpy scalars; never pickled code),
    with a one-line UsageError naming ``what`` and the file."""
    if not os.path.isfile(path):
        raise UsageError(f"{what} '{path}' does not exist")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt, not a torch file, or pickled objects
        if "Weights only load failed" in str(e):
            detail = (
                "it holds pickled Python objects, which are not loaded without trusting them; re-save "
                "just its state dict (ckpt['state_dict']) to a file and use that"
            )
        else:
            detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UsageError(f"{what} '{path}': cannot read it as a torch checkpoint: {detail}") from None


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file (cached per path, size and mtime: a 100 MB file costs ~0.3 s once)."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


@dataclass(frozen=True)
class WeightSource:
    """One backbone's start: ``pretrained`` as the preset says it, the ``file`` read and its ``sha256``."""

    role: str
    backbone: str
    pretrained: Optional[str]
    file: Optional[str]
    sha256: Optional[str]

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def weight_sources(preset: Any) -> Dict[str, WeightSource]:
    """Resolve the glance and focus weights of ``preset`` (downloading ImageNet files if needed).

    Call it before training: offline, it stops with the one-line error naming the weights. The result
    (``{role: ws.as_dict()}``) goes into the run manifest.
    """
    out = {}
    for role in ROLES:
        spec, backbone = getattr(preset, f"{role}_pretrained"), getattr(preset, f"{role}_backbone")
        file = resolve_pretrained(spec, backbone, f"{role}_pretrained")
        out[role] = WeightSource(
            role, backbone, None if is_none(spec) else str(spec), file, sha256_file(file) if file else None
        )
    return out


def local_weight_file(spec: Optional[str], backbone: str) -> Optional[str]:
    """The file ``spec`` names if it is already on this machine, else None; never downloads or generates."""
    if is_none(spec):
        return None
    if spec == "imagenet":
        path = imagenet_cache_path(IMAGENET_ARCH[backbone]) if backbone in IMAGENET_ARCH else None
    elif spec == "textures":
        from bench.models.pretrain import textures_path

        path = textures_path("tiny") if backbone in TEXTURE_BACKBONES else None
    else:
        path = Path(cast(str, spec))  # not is_none(spec): a str
    return str(path) if path is not None and path.is_file() else None


def timing_weights(preset: Any) -> Tuple[Any, Optional[str]]:
    """``preset`` for a timing command: each backbone's weights when already local, else random init
    (nothing is downloaded), and one line saying which backbones start random (None when none does)."""
    import dataclasses

    changes: Dict[str, Any] = {}
    missing: List[str] = []
    for role in ROLES:
        spec, backbone = getattr(preset, f"{role}_pretrained"), getattr(preset, f"{role}_backbone")
        if not is_none(spec) and local_weight_file(spec, backbone) is None:
            changes[f"{role}_pretrained"] = None
            missing.append(f"{role} ({backbone}: {spec})")
    if not missing:
        return preset, None
    note = (
        f"weights: random for {', '.join(missing)}: not on this machine and timing never downloads "
        "(step times do not depend on weight values)"
    )
    return dataclasses.replace(preset, **changes), note
