"""Issue 23: ``adabench --version`` prints the installed package version and the git commit that runs."""

from __future__ import annotations

import importlib.metadata
import subprocess

from tests.fixtures_runs import REPO, run_in_process


def test_version_names_package_and_commit(capsys):
    assert run_in_process(["--version"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"adabench {importlib.metadata.version('adabench')} (")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the commit that runs
        assert f"git {head.stdout.strip()[:12]}" in out
    else:
        assert "not a git checkout" in out
