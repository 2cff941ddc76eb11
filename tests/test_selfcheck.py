"""Issue 24: ``adabench selfcheck`` (``make gpu-check``) runs on the CPU as a dry run, so it cannot rot
between GPU visits. The default suite runs every check but the DDP one (two torchrun ranks: about 20 s of
starting processes on 2 cores) and every timing part at tiny shapes; the whole dry run, exactly as ``--device
cpu`` runs it, is marked slow.
"""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from fixtures_runs import one_thread, run_in_process  # noqa: F401 (fixture)

from bench.methods import get_method, method_names
from bench.tools.selfcheck import CHECKS, FAIL, PASS, SKIPPED

QUICK = tuple(c.name for c in CHECKS if c.name != "DDP averages gradients")
CPU_SKIPS = {
    "fp16 + GradScaler trains",
    "--compile matches eager",
}  # the CUDA path; minutes of compiling on a CPU


def _record(out):
    record = json.loads((out / "gpu-check.json").read_text())
    assert (out / "gpu-check.md").is_file() and not (out / "work").exists()  # scratch removed
    return record, {c["name"]: c for c in record["checks"]}


def test_cuda_without_a_device_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_in_process(["selfcheck", "--device", "cuda", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: selfcheck --device cuda: no CUDA device is visible")
    assert not (tmp_path / "out").exists()


def test_cpu_dry_run_subset_passes_and_writes_checks_and_timings(tmp_path, capsys, one_thread):
    out = tmp_path / "out"
    argv = ["selfcheck", "--device", "cpu", "--out", str(out), "--budget", "300"]
    for name in QUICK:
        argv += ["--check", name]
    assert run_in_process(argv) == 0, capsys.readouterr().err
    record, checks = _record(out)
    assert list(checks) == list(QUICK), checks
    assert all(c["status"] == PASS for n, c in checks.items() if n not in CPU_SKIPS), checks
    assert (
        checks["fp16 + GradScaler trains"]["status"] == SKIPPED
        and "CUDA" in checks["fp16 + GradScaler trains"]["detail"]
    )
    assert record["passed"] and record["environment"]["device"] == "cpu"
    for name in method_names():  # every registered method was checked, by name
        assert f"{name}:" in checks["fp32 step = CPU step"]["detail"]
        assert f"{name}:" in checks["tiny matched run"]["detail"]
    t = record["timings"]
    assert not t["errors"] and t["shapes"]["name"] == "tiny"
    steps = {(r["method"], r["step"], r["precision"]) for r in t["train_steps"]}
    assert {(m, s) for m, s, _ in steps} == {
        (m, s) for m in method_names() for s in get_method(m).stage_names
    }
    assert {p for _, _, p in steps} >= {"fp32"}
    assert all(0 < r["utilisation"] and r["peak_gflops"] > 0 for r in t["train_steps"])
    assert [r["method"] for r in t["inference"]] == [*method_names(), "full_frame"]
    assert {p["precision"] for p in t["matmul"]} >= {"fp32"}
    official = [m for m in method_names() if get_method(m).official_step is not None]
    assert len([s for s in t["skipped"] if "official" in s]) == len(official)  # no snapshots here: said so
    md = (out / "gpu-check.md").read_text()
    assert "## Checks" in md and "### Training steps" in md and "fraction of peak" in md
    printed = capsys.readouterr().out
    assert "selfcheck passed" in printed and all(
        f"pass    {n}" in printed for n in QUICK if n not in CPU_SKIPS
    )


def test_a_check_that_does_not_fit_is_skipped_saying_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        run_in_process(
            [
                "selfcheck",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--budget",
                "0.5",
                "--check",
                "exact resume",
                "--no-timings",
            ]
        )
        == 0
    )
    _, checks = _record(out)
    assert checks["exact resume"]["status"] == SKIPPED and "budget" in checks["exact resume"]["detail"]


def test_unknown_check_is_one_line(tmp_path, capsys):
    assert run_in_process(["selfcheck", "--device", "cpu", "--out", str(tmp_path), "--check", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: --check nope: no such check")


def test_fp32_comparison_catches_a_device_difference():
    """The comparison the fp32 check rests on fails when one loss moves by more than the tolerance."""
    from bench.tools.selfcheck_steps import FP32_RTOL, compare_losses

    ref = {"a": [2.0, 1.5]}
    assert compare_losses({"a": [2.0 * (1 + FP32_RTOL / 2), 1.5]}, ref, FP32_RTOL)[0]
    assert not compare_losses({"a": [2.0, 1.5 * (1 + 3 * FP32_RTOL)]}, ref, FP32_RTOL)[0]
    assert not compare_losses({"a": [float("nan"), 1.5]}, ref, FP32_RTOL)[0]


def test_cpu_random_draws_on_the_cpu_generator_for_any_device_request():
    """Inside ``cpu_random`` a draw asked for on another device (here 'meta', standing in for CUDA) is made by
    the
    CPU generator and moved: it consumes the CPU generator exactly as the same draw on the CPU does."""
    from bench.tools.selfcheck_steps import cpu_random

    def next_cpu_number(device, mode):
        torch.manual_seed(3)
        with mode:
            x = torch.rand(5, device=device)
        return x.device.type, float(torch.rand(1))

    cpu, meta = next_cpu_number("cpu", cpu_random()), next_cpu_number("meta", cpu_random())
    assert meta == ("meta", cpu[1])
    assert next_cpu_number("meta", contextlib.nullcontext())[1] != cpu[1]  # without it: another generator


@pytest.mark.slow
def test_the_whole_cpu_dry_run_passes_every_check_within_its_budget(tmp_path, capsys, one_thread):
    out = tmp_path / "out"
    assert run_in_process(["selfcheck", "--device", "cpu", "--out", str(out)]) == 0, capsys.readouterr().err
    record, checks = _record(out)
    assert list(checks) == [c.name for c in CHECKS]
    assert not [c for c in checks.values() if c["status"] == FAIL]
    skipped = {n for n, c in checks.items() if c["status"] == SKIPPED}
    assert skipped <= CPU_SKIPS, checks
    assert record["elapsed_s"] <= 120 + 30


def test_official_snapshot_folder_from_a_checkout_or_a_git_directory(tmp_path, monkeypatch):
    import subprocess

    from bench.errors import UsageError
    from bench.tools.official_code import official_modules, snapshot_folder

    monkeypatch.delenv("ADABENCH_OFFICIAL_X", raising=False)
    assert (
        snapshot_folder("ADABENCH_OFFICIAL_X", "code", tmp_path / "s0") is None
    )  # unset: the part is skipped
    repo = tmp_path / "repo"
    (repo / "code" / "models").mkdir(parents=True)
    (repo / "code" / "models" / "__init__.py").write_text("WHO = 'official'\n")
    monkeypatch.setenv("ADABENCH_OFFICIAL_X", str(repo))
    assert snapshot_folder("ADABENCH_OFFICIAL_X", "code", tmp_path / "s1") == repo / "code"  # a checkout
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    monkeypatch.setenv("ADABENCH_OFFICIAL_X", str(repo / ".git"))  # a git directory: HEAD extracted
    folder = snapshot_folder("ADABENCH_OFFICIAL_X", "code", tmp_path / "s2")
    assert folder == tmp_path / "s2" / "code" and (folder / "models" / "__init__.py").is_file()
    cuda = torch.Tensor.cuda
    with official_modules(folder, torch.device("cpu")):
        import models  # the official package, importable inside only

        assert models.WHO == "official" and torch.ones(1).cuda().device.type == "cpu"  # .cuda() a no-op
    assert torch.Tensor.cuda is cuda and str(folder) not in __import__("sys").path
    monkeypatch.setenv("ADABENCH_OFFICIAL_X", str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="ADABENCH_OFFICIAL_X=.*expected a checkout"):
        snapshot_folder("ADABENCH_OFFICIAL_X", "code", tmp_path / "s3")
