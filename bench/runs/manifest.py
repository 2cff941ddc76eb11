"""manifest.json's content: everything needed to tell where a number came from (code version, environment,
hardware, seed, determinism)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from bench.runs.config import RunConfig
from bench.runs.rundir import utc_now

MANIFEST_PACKAGES = ("torch", "torchvision", "fvcore", "decord", "av", "numpy", "pandas")


def _git_state() -> Tuple[Optional[str], Optional[bool]]:
    """(commit, dirty) of the repository holding this package; (None, None) outside git."""
    repo = Path(__file__).resolve().parents[2]

    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> Optional[str]:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect_manifest(
    cfg: RunConfig,
    device: Any,
    world_size: int = 1,
    config_hash: Optional[str] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Everything needed to tell where a number came from: code version, environment,
    hardware, seed and determinism. ``extra`` entries (e.g. dataset checksum) are merged in."""
    import torch

    commit, dirty = _git_state()
    cuda = torch.cuda.is_available()
    manifest: Dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": dirty,
        "argv": list(sys.argv),
        "config_hash": config_hash or cfg.config_hash(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in MANIFEST_PACKAGES} | {"adabench": _version("adabench")},
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "device": str(device),
        "world_size": int(world_size),
        "seed": cfg.seed,
        "deterministic": bool(cfg.deterministic),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "hostname": socket.gethostname(),
        "started_utc": utc_now(),
        "bad_items": [],
    }
    manifest.update(extra or {})
    return manifest
