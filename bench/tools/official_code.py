"""Running a method's official code from a local snapshot, to time it beside ours (``adabench selfcheck``).

Nothing of the official code is in this repository. A method's registry entry may declare an ``OfficialStep``
(``bench.methods``): the environment variable that names a checkout of its official repository (or a git
directory of one: its HEAD is extracted to a temporary folder), the folder inside it, and a ``build`` function
that makes one official training step. ``official_modules`` makes that folder importable for as long as the
step is timed: its top-level packages (``models``, ``ops``, ...) shadow nothing of ours and are forgotten
afterwards; on a CPU the tensor and module ``cuda`` methods are no-ops (the official code calls them
unconditionally); logging packages the official trainers import but a step does not need are stubbed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch import nn

from bench.errors import UsageError

THEIR_MODULES = ("models", "ops", "archs", "basic_tools", "main", "opts")
_STUBS = ("tensorboardX", "hydra")


def snapshot_folder(env: str, folder: str, scratch: Path) -> Optional[Path]:
    """``$env``'s ``folder``: from a checkout, or extracted from a git directory into ``scratch``; None when
    ``$env`` is unset. A set variable that leads nowhere is a one-line error."""
    root = os.environ.get(env, "").strip()
    if not root:
        return None
    path = Path(root)
    if (path / folder).is_dir():
        return path / folder
    git_dir = path / ".git" if (path / ".git").is_dir() else path
    if (git_dir / "HEAD").is_file():
        scratch.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(
            ["git", "--git-dir", str(git_dir), "archive", "HEAD", folder], capture_output=True
        )
        if tar.returncode == 0:
            subprocess.run(["tar", "-x", "-C", str(scratch)], input=tar.stdout, check=True)
            if (scratch / folder).is_dir():
                return scratch / folder
    raise UsageError(
        f"{env}={root}: expected a checkout (or git directory) of the official code with a folder '{folder}'"
    )


def _theirs(name: str) -> bool:
    return name.split(".")[0] in THEIR_MODULES


@contextlib.contextmanager
def official_modules(folder: Path, device: torch.device) -> Iterator[None]:
    """``folder`` importable, the ``cuda`` methods no-ops off CUDA (on CUDA: the current device is
    ``device``)."""
    saved_path = list(sys.path)
    saved_cuda = (torch.Tensor.cuda, nn.Module.cuda)
    stubs = [s for s in _STUBS if s not in sys.modules]
    for stub in stubs:
        module = types.ModuleType(stub)
        module.SummaryWriter = object  # type: ignore[attr-defined]  # a stub module built at run time
        sys.modules[stub] = module
    for name in [n for n in sys.modules if _theirs(n)]:
        del sys.modules[name]
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # patched: CPU run
        nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]  # patched: CPU run
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path[:] = saved_path
        torch.Tensor.cuda, nn.Module.cuda = saved_cuda  # type: ignore[method-assign]  # restored
        for name in [n for n in sys.modules if _theirs(n)] + stubs:
            sys.modules.pop(name, None)


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="adabench-official-"))
