"""`adabench bench --train-step`: one row per method, stage and precision, built from the registry; and a
run's precision recorded where the results table and the report read it."""

from __future__ import annotations

import json

import pytest
import yaml
from fixtures_runs import V1_ARGS, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)

from bench.methods import get_method, method_names


def test_train_step_json_has_a_row_per_method_stage_and_precision(capsys, one_thread):
    argv = [
        "bench",
        "--train-step",
        "--json",
        "--batch",
        "2",
        "--warmup",
        "1",
        "--repeats",
        "2",
        "--precision",
        "fp32",
        "--precision",
        "bf16",
        "--device",
        "cpu",
    ]
    assert run_in_process(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = {
        (m, s, p) for m in method_names() for s in get_method(m).stage_names for p in ("fp32", "bf16")
    }
    assert {(r["method"], r["step"], r["precision"]) for r in rows} == expected and len(rows) == len(expected)
    for r in rows:
        assert 0 < r["min_s"] <= r["median_s"] <= r["max_s"] and r["cpu_median_s"] > 0
        assert r["gflop_per_step"] > 0 and r["peak_gflops"] > 0
        assert r["achieved_gflops"] == pytest.approx(r["gflop_per_step"] / r["median_s"])
        assert (r["batch"], r["repeats"], r["preset"], r["dataset"]) == (2, 2, "tiny", "synthetic")
    # the same step costs the same FLOPs at either precision
    flops = {(r["method"], r["step"], r["precision"]): r["gflop_per_step"] for r in rows}
    for m, s, _ in expected:
        assert flops[m, s, "bf16"] == pytest.approx(flops[m, s, "fp32"])


def test_unknown_step_is_one_line(capsys):
    assert (
        run_in_process(
            [
                "bench",
                "--train-step",
                "--step",
                "stage9",
                "--device",
                "cpu",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "--precision",
                "fp32",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: --step stage9: no such stage; the stages are")


def test_matched_runs_record_one_precision_in_config_manifest_and_results(tmp_path, one_thread):
    from bench.runs.results import collect_results

    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    argv = [
        "run",
        "--method",
        "v1",
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
        "--precision",
        "bf16",
        *V1_ARGS,
    ]
    assert run_in_process(argv) == 0
    dirs = sorted(p.parent for p in runs.glob("synthetic/*/*/summary.json"))
    assert [d.parent.name for d in dirs] == ["v1", "v2"]
    for d in dirs:
        manifest = json.loads((d / "manifest.json").read_text())
        assert manifest["precision"] == "bf16" and manifest["channels_last"] in (True, False)
        assert yaml.safe_load((d / "config.yaml").read_text())["run"]["precision"] == "bf16"
    df, _ = collect_results(runs)
    assert list(df["precision"]) == ["bf16", "bf16"]


def test_step_flops_count_each_convolution_gradient_as_its_forward():
    import torch

    from bench.tools.trainstep import step_flops

    conv = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)  # depthwise, strided
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    forward = 2 * 2 * 8 * 8 * 8 * 9  # N * C * Ho * Wo * 9 MACs, x2
    assert step_flops(lambda: conv(x)) == forward
    assert step_flops(lambda: conv(x).sum().backward()) == 3 * forward  # forward + input + weight gradients
    x.requires_grad_(False)
    assert step_flops(lambda: conv(x).sum().backward()) == 2 * forward  # no input gradient needed
