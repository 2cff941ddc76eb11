"""``adabench --version``: the installed package version and the git commit of the code that runs."""

from __future__ import annotations

import importlib.metadata


def version_text() -> str:
    """e.g. ``adabench 0.1.0 (git 3d37942a1b2c, uncommitted changes)``; ``(not a git checkout)`` outside
    git."""
    from bench.runs.manifest import _git_state  # the same commit and dirty flag every run's manifest records

    try:
        version = importlib.metadata.version("adabench")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree that was never installed
        version = "unknown"
    commit, dirty = _git_state()
    where = (
        "not a git checkout"
        if commit is None
        else f"git {commit[:12]}" + (", uncommitted changes" if dirty else "")
    )
    return f"adabench {version} ({where})"
