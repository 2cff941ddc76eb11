"""`adabench run --method uni` end to end on a micro synthetic set: the full method and both ablations
complete, log their loss terms, and summarise the sample-wise exit curve over the non-linear exit costs."""

from __future__ import annotations

import json

import pytest
from fixtures_runs import FRAMES, SIZE, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)

# 12 segments (3 per glance frame), 4 glance and 4 focus frames at 32x32
UNI_ARGS = [
    "--set",
    f"frames={3 * FRAMES}",
    "--set",
    "glance_segments=4",
    "--set",
    "focus_segments=4",
    "--set",
    "batch_size=4",
    "--set",
    f"input_size={SIZE}",
    "--set",
    f"resize={SIZE}",
    "--set",
    "patch_size=16",
    "--set",
    "classifier_hidden=32",
    "--set",
    "mc_draws=16",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return micro_set(tmp_path_factory.mktemp("micro") / "set", train=4, val=2)


def _run(tmp_path, data_root, *extra):
    runs = tmp_path / "runs"
    argv = [
        "run",
        "--method",
        "uni",
        "--data-root",
        str(data_root),
        "--runs-dir",
        str(runs),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-progress",
        "--quiet",
        "--seed",
        "1",
        "--epochs",
        "1",
        *UNI_ARGS,
        *extra,
    ]
    assert run_in_process(argv) == 0
    (summary,) = list(runs.glob("synthetic/uni/*/summary.json"))
    return json.loads(summary.read_text()), summary.parent


@pytest.mark.parametrize(
    "flags,variant,absent",
    [
        ((), "full", set()),
        (("--uniform-frames", "--fixed-scale"), "no-tp+no-scale", {"train_temporal", "train_norm"}),
    ],
)
def test_micro_run_completes_with_and_without_the_policies(
    tmp_path, data_root, one_thread, flags, variant, absent
):
    summary, run_dir = _run(tmp_path, data_root, *flags)
    assert summary["method"] == "uni" and summary["variant"] == variant and 0 <= summary["top1"] <= 1
    assert summary["params"]["temporal_policy"] == (not flags) and summary["params"]["learned_scale"] == (
        not flags
    )
    per_exit = summary["gflops_per_step"]
    assert len(per_exit) == 5 and per_exit == sorted(per_exit)  # exits after 0..4 focus frames
    assert per_exit[-1] == pytest.approx(summary["gflops_per_video"])
    exits = summary["early_exit"]
    assert len(exits) == 19 and all(per_exit[0] - 1e-12 <= p["gflops"] <= per_exit[-1] + 1e-12 for p in exits)
    assert all(len(p["exit_shares"]) == 5 for p in exits)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    present = {
        "train_classifier",
        "train_glance",
        "train_focus",
        "train_spatial",
        "train_temporal",
        "train_norm",
        "train_random_classifier",
    } - absent
    assert present <= set(header) and not (absent & set(header))


def test_demo_keeps_the_mission_comparison_and_runs_uni_when_asked(monkeypatch, tmp_path):
    """`make demo` stays V1 vs V2; `adabench demo --method v1 --method v2 --method uni` adds Uni and its
    ablations."""
    from pathlib import Path

    import bench.data
    import bench.runs.runner
    import reports.report
    from cli import main

    class Report:
        ok, num_classes, splits, problems = True, 6, {"train": 768, "val": 192}, []

    plans: list = []
    monkeypatch.setattr(bench.data, "resolve_data_root", lambda name, root=None: tmp_path / name)
    monkeypatch.setattr(bench.data, "check_dataset", lambda name, root: Report())
    monkeypatch.setattr(bench.runs.runner, "run_all", lambda p, echo: plans.append(list(p)))
    monkeypatch.setattr(reports.report, "build_report", lambda runs, out: Path(out) / "report.md")
    monkeypatch.setattr(reports.report, "verdict_lines", lambda runs, dataset=None: [])
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["demo", "--no-progress"],
        ["demo", "--no-progress", "--method", "v1", "--method", "v2", "--method", "uni"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    default, three = ({c.method for c in p} for p in plans)
    assert default == {"v1", "v2"} and three == {"v1", "v2", "uni"}
    uni = [c for c in plans[1] if c.method == "uni"]
    assert len(uni) == 3 * 3 + 3 * 2  # 3 seeds x 3 patch sizes, and both ablations at the middle size
    assert {tuple(sorted(k for k, v in c.overrides.items() if v is False)) for c in uni} == {
        (),
        ("temporal_policy",),
        ("learned_scale",),
    }
