"""A third method is one module: registered from tests/toy_method.py through $ADABENCH_METHODS, it appears in
`--help`, gets FLOPs, trains in a matched experiment with V2, and lands in the results table and the report,
with no edit to bench/, reports/, cli.py or commands/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures_runs import REPO, V2_ARGS, child_env, micro_set

TESTS = Path(__file__).resolve().parent


def _cli(*argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(child_env(), ADABENCH_METHODS="toy_method", PYTHONPATH=f"{REPO}:{TESTS}")
    return subprocess.run(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_method_from_outside_the_packages_is_a_full_citizen(tmp_path):
    help_text = _cli("run", "--help")
    assert help_text.returncode == 0, help_text.stderr
    assert "[toy|v1|v2]" in help_text.stdout and "--toy-no-aux" in help_text.stdout

    flops = _cli("flops", "--method", "toy", "--dataset", "synthetic", "--preset", "tiny", "--json")
    assert flops.returncode == 0, flops.stderr
    report = json.loads(flops.stdout)
    assert report["method"] == "toy" and report["gflops_per_video"] > 0

    root = micro_set(tmp_path / "set", train=4, val=2)
    runs, out = tmp_path / "runs", tmp_path / "report"
    args = [
        "run",
        "--method",
        "toy",
        "--method",
        "v2",
        "--data-root",
        str(root),
        "--runs-dir",
        str(runs),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-progress",
        "--quiet",
        "--epochs",
        "1",
        *V2_ARGS,
    ]
    trained = _cli(*args)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert trained.stdout.count("top-1") == 2
    ablated = _cli(*args, "--toy-no-aux")  # the toy ablation; V2's run is reused, not re-trained
    assert ablated.returncode == 0 and "already complete" in ablated.stdout, ablated.stderr[-2000:]

    made = _cli("report", "--runs-dir", str(runs), "--out", str(out))
    assert made.returncode == 0, made.stderr[-2000:]
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["method"]) == ["toy", "toy", "v2"] and set(df["variant"]) == {"full", "no-toyaux"}
    toy = df[df["method"] == "toy"].set_index("variant")["toy_aux"]  # its own column, from its registry entry
    assert toy["full"] and not toy["no-toyaux"] and df.loc[df["method"] == "v2", "toy_aux"].isna().all()
    md = (out / "report.md").read_text()
    assert "ToyFocus" in md and "(a) ToyFocus more accurate than AdaFocusV2" in md
    assert "(c) the auxiliary focus loss improves ToyFocus's accuracy" in md


@pytest.mark.parametrize("value", ["no_such_module"])
def test_a_method_module_that_does_not_import_is_one_line(value):
    env = dict(child_env(), ADABENCH_METHODS=value)
    r = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        r.returncode == 2
        and r.stderr.strip().startswith("error: ADABENCH_METHODS")
        and len(r.stderr.strip().splitlines()) == 1
    )


def test_import_checkpoint_of_a_method_without_an_importer_is_one_line(tmp_path):
    src = tmp_path / "ckpt.pth.tar"
    src.write_bytes(b"not read")
    r = _cli(
        "import-checkpoint",
        str(src),
        "--method",
        "toy",
        "--dataset",
        "synthetic",
        "--out",
        str(tmp_path / "o.pt"),
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--method toy" in r.stderr and "no importer" in r.stderr and not (tmp_path / "o.pt").exists()
