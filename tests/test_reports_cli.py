"""`adabench report`, `adabench check` and `adabench bench` through the real entry point."""

from __future__ import annotations

import json

import pytest

from bench.methods import method_names
from cli import main
from tests.fixtures_results import make_summary, matched_summaries, write_run


def _run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.fixture()
def runs(tmp_path):
    d = tmp_path / "runs"
    for s in matched_summaries(seeds=(0, 1, 2), patch_sizes=(32,)):
        write_run(d, s)
    write_run(d, make_summary("v2", seed=5), complete=False)
    return d


def test_report_command(runs, tmp_path, capsys):
    code, out, _ = _run(["report", "--runs-dir", str(runs), "--out", str(tmp_path / "rep")], capsys)
    assert code == 0 and "report.md" in out
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "results.parquet").is_file()
    code, _, err = _run(["report", "--runs-dir", str(tmp_path / "nope")], capsys)
    assert code == 2 and err.startswith("error: ") and "nope" in err and err.count("\n") == 1


def test_check_passes_then_fails_when_baseline_accuracy_is_raised(runs, tmp_path, capsys):
    base = tmp_path / "baseline.json"
    code, out, _ = _run(["check", "--baseline", str(base), "--runs-dir", str(runs), "--update"], capsys)
    assert code == 0 and base.is_file()
    code, out, _ = _run(["check", "--baseline", str(base), "--runs-dir", str(runs)], capsys)
    assert code == 0, out
    assert "5/5 checks within tolerance" in out and "skipped" in out  # the half-written run is named

    b = json.loads(base.read_text())
    tol = b["runs"]["synthetic/tiny/matched/v2/p32"]["tolerance"]["top1"]["value"]  # derived from the seeds
    b["runs"]["synthetic/tiny/matched/v2/p32"]["top1"] += tol + 0.01
    base.write_text(json.dumps(b))
    code, out, _ = _run(["check", "--baseline", str(base), "--runs-dir", str(runs)], capsys)
    assert code == 1
    assert "FAIL synthetic/tiny/matched/v2/p32 top1" in out and "1 failed" in out
    # a looser tolerance on the command line lets it pass again
    code, _, _ = _run(["check", "--baseline", str(base), "--runs-dir", str(runs), "--acc-tol", "0.2"], capsys)
    assert code == 0


def test_check_rejects_a_bad_baseline_before_training(runs, tmp_path, capsys):
    code, _, err = _run(["check", "--baseline", str(tmp_path / "none.json"), "--runs-dir", str(runs)], capsys)
    assert code == 2 and "none.json" in err and "no such file" in err
    # without --runs-dir the experiment would be trained: a bad baseline must stop it before any training
    code, _, err = _run(["check", "--baseline", str(tmp_path / "none.json")], capsys)
    assert code == 2 and "none.json" in err


def test_bench_command_json(capsys):
    code, out, _ = _run(
        [
            "bench",
            "--dataset",
            "synthetic",
            "--preset",
            "tiny",
            "--batch",
            "2",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--device",
            "cpu",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["method"] for r in rows] == [*method_names(), "full_frame"]
    for r in rows:
        assert r["videos_per_s"] > 0 and r["gflops_per_video"] > 0 and r["batch"] == 2
    full = rows[-1]
    assert full["gflops_ratio"] == pytest.approx(1.0) and full["measured_speedup"] == pytest.approx(1.0)
    # the baseline runs f_L on whole frames, so it costs more than a patch-based method
    assert rows[1]["gflops_ratio"] > 1.0
