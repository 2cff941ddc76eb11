"""A third method is one module: registered from tests/toy_method.py through $ADABENCH_METHODS, it appears in
`--help`, gets FLOPs, trains in a matched experiment with V2, and lands in the results table and the report,
with no edit to bench/, reports/, cli.py or commands/."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures_runs import REPO, V2_ARGS, child_env, micro_set

TESTS = Path(__file__).resolve().parent


# Runs each command of argv lists (JSON in argv[1]) through cli.main in turn, in this one child process, and
# writes [{returncode, stdout, stderr}] to the file argv[2]: one interpreter start (seconds) for all of them.
_SEVERAL = """
import contextlib, io, json, sys
from cli import main
results = []
for argv in json.loads(sys.argv[1]):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
    results.append({"returncode": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
open(sys.argv[2], "w").write(json.dumps(results))
"""


def _cli(*commands: list, timeout: int = 300) -> list:
    """``adabench <command>`` for each command, in order, in one child process with the toy method registered
    through $ADABENCH_METHODS; one CompletedProcess per command."""
    env = dict(child_env(), ADABENCH_METHODS="toy_method", PYTHONPATH=f"{REPO}:{TESTS}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        child = subprocess.run(
            [sys.executable, "-c", _SEVERAL, json.dumps(commands), str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert child.returncode == 0 and out.is_file(), child.stderr[-2000:]
        return [
            subprocess.CompletedProcess(c, r["returncode"], r["stdout"], r["stderr"])
            for c, r in zip(commands, json.loads(out.read_text()))
        ]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """(directory, {name: result}) of every toy-method command of this module, run in one child process."""
    tmp = tmp_path_factory.mktemp("toy")
    root = micro_set(tmp / "set", train=4, val=2)
    (tmp / "ckpt.pth.tar").write_bytes(b"not read")
    args = [
        "run",
        "--method",
        "toy",
        "--method",
        "v2",
        "--data-root",
        str(root),
        "--runs-dir",
        str(tmp / "runs"),
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
    commands = {
        "help": ["run", "--help"],
        "flops": ["flops", "--method", "toy", "--dataset", "synthetic", "--preset", "tiny", "--json"],
        "trained": args,
        "ablated": [*args, "--toy-no-aux"],  # the toy ablation; V2's run is reused, not re-trained
        "report": ["report", "--runs-dir", str(tmp / "runs"), "--out", str(tmp / "report")],
        "import": [
            "import-checkpoint",
            str(tmp / "ckpt.pth.tar"),
            "--method",
            "toy",
            "--dataset",
            "synthetic",
            "--out",
            str(tmp / "o.pt"),
        ],
    }
    return tmp, dict(zip(commands, _cli(*commands.values())))


def test_a_method_from_outside_the_packages_is_a_full_citizen(toy):
    tmp, results = toy
    out = tmp / "report"
    help_text, flops, trained, ablated, made = (
        results[k] for k in ("help", "flops", "trained", "ablated", "report")
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "[toy|uni|v1|v2]" in help_text.stdout and "--toy-no-aux" in help_text.stdout

    assert flops.returncode == 0, flops.stderr
    report = json.loads(flops.stdout)
    assert report["method"] == "toy" and report["gflops_per_video"] > 0

    assert trained.returncode == 0, trained.stderr[-2000:]
    assert trained.stdout.count("top-1") == 2
    assert ablated.returncode == 0 and "already complete" in ablated.stdout, ablated.stderr[-2000:]

    assert made.returncode == 0, made.stderr[-2000:]
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["method"]) == ["toy", "toy", "v2"] and set(df["variant"]) == {"full", "no-toyaux"}
    aux = df[df["method"] == "toy"].set_index("variant")["toy_aux"]  # its own column, from its registry entry
    assert aux["full"] and not aux["no-toyaux"] and df.loc[df["method"] == "v2", "toy_aux"].isna().all()
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


def test_import_checkpoint_of_a_method_without_an_importer_is_one_line(toy):
    tmp, results = toy
    r = results["import"]
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--method toy" in r.stderr and "no importer" in r.stderr and not (tmp / "o.pt").exists()
