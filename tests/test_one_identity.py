"""Issue 21, cases 1-3: one identity for run directories and report sections, each seed counted once.

The runs are laid out exactly as ``adabench run`` lays them out (``plan_runs`` -> ``RunDir.for_config`` ->
``write_config``), with hand-written summaries instead of training, so the report sees real config.yaml files.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bench import io
from bench.runs.config import RunConfig
from bench.runs.experiment import init_state_path, plan_runs
from bench.runs.results import collect_results
from bench.runs.rundir import RunDir
from bench.runs.runner import run_all
from reports.claims import claims_for_group
from reports.frame import groups, runs_frame
from reports.report import build_report
from tests.fixtures_results import make_summary
from tests.fixtures_runs import one_thread

__all__ = ["one_thread"]


def _base(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(
        method="v1", data_root=str(tmp_path / "data"), runs_dir=str(tmp_path / "runs"), precision="fp32", **kw
    )


def _write(cfg: RunConfig, top1: float) -> RunDir:
    """A complete run directory of ``cfg`` as the runner writes it (summary made up)."""
    run = RunDir.for_config(cfg).create()
    run.write_config(cfg, cfg.resolve_preset())
    io.atomic_write_json(
        run.manifest_path, {"git_commit": "abc", "dataset_root": cfg.data_root, "precision": cfg.precision}
    )
    if cfg.init_state:
        Path(cfg.init_state).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.init_state).touch()
    run.write_summary(
        make_summary(
            cfg.method,
            seed=cfg.seed,
            patch_size=cfg.patch_size,
            top1=top1 + 0.01 * cfg.seed,
            run_dir=str(run.path),
        )
    )
    return run


def _experiment(base: RunConfig, seeds, v2_top1: float = 0.6) -> list:
    plans = plan_runs(base, ["v1", "v2"], seeds=seeds)
    for cfg in plans:
        if not RunDir.for_config(cfg).is_complete():
            _write(cfg, 0.5 if cfg.method == "v1" else v2_top1)
    return plans


def _sections(runs_dir):
    return [(key, sub) for key, sub in groups(runs_frame(collect_results(runs_dir)[0]))]


def _accuracy_n(sub) -> int:
    (claim,) = [c for c in claims_for_group(sub) if c.claim.startswith("(a)")]
    return claim.n


def test_display_flags_do_not_split_a_matched_experiment(tmp_path):
    """Case 1: seeds 0-1, then seed 2 with --quiet and --no-preflight: one section, n = 3."""
    _experiment(_base(tmp_path), [0, 1])
    quiet = _experiment(_base(tmp_path, quiet=True, preflight=False, progress=False), [2])
    loud = dataclasses.replace(quiet[0], quiet=False, preflight=True, progress=True)
    assert RunDir.for_config(loud) == RunDir.for_config(quiet[0])  # the hash never saw them either
    (section,) = _sections(tmp_path / "runs")
    assert sorted(section[1]["seed"]) == [0, 0, 1, 1, 2, 2] and section[1]["group_hash"].nunique() == 2
    assert _accuracy_n(section[1]) == 3


def test_a_solo_rerun_reuses_the_matched_run_and_a_repeat_is_counted_once(tmp_path, capsys):
    """Case 2: `run --method v1 --seed 0` after a matched run is that run (not retrained), and a copy of a
    run is never pooled as a second seed 0."""
    matched = _experiment(_base(tmp_path), [0, 1])
    (solo,) = plan_runs(_base(tmp_path), ["v1"], seeds=[0])
    assert solo.init_state == str(init_state_path(solo))
    assert RunDir.for_config(solo) == RunDir.for_config(matched[0])
    run_all([solo], print)
    assert "already complete, not re-trained" in capsys.readouterr().out

    v1 = RunDir.for_config(matched[0]).path
    copy = v1.with_name(v1.name + "-copy")
    shutil.copytree(v1, copy)
    (section,) = _sections(tmp_path / "runs")
    assert len(section[1]) == 5  # the frame itself still holds the copy; the report drops it
    md = build_report(tmp_path / "runs", tmp_path / "report").read_text()
    assert "| AdaFocusV1 | " in md and "0, 0, 1" not in md
    assert "## Repeated runs" in md and f"`{copy}` | `{v1}`" in md


def test_runs_that_differ_in_an_override_are_two_sections_named_in_words(tmp_path):
    """Case 3: V2 with and without --set lr=0.5: two sections, `lr=0.5` and the default, each with the
    same V1 runs, never one section with two V2 configurations."""
    base = _base(tmp_path)
    _experiment(base, [0, 1, 2])
    _experiment(dataclasses.replace(base, overrides={"lr": "0.5"}), [0, 1, 2], v2_top1=0.3)
    assert len(list((tmp_path / "runs" / "synthetic" / "v1").iterdir())) == 3  # V1 is shared, not re-run
    sections = _sections(tmp_path / "runs")
    assert sorted(key[4].split("=")[0] for key, _ in sections) == ["lr", "lr"]
    names = sorted(key[4] for key, _ in sections)
    assert names[0].endswith("(default)") and names[1] == "lr=0.5"
    for _, sub in sections:
        assert sub.groupby("method")["group_hash"].nunique().tolist() == [1, 1]
        assert _accuracy_n(sub) == 3 and "[" not in "".join(sub["label"])
    md = build_report(tmp_path / "runs", tmp_path / "report").read_text()
    heads = [line for line in md.splitlines() if line.startswith("## synthetic")]
    assert len(heads) == 2 and any(h.endswith("· lr=0.5") for h in heads)
    assert any(h.endswith("(default)") for h in heads) and "overrides `{}`" not in md
    assert "AdaFocusV2 also `lr=0.5`" in md


MICRO = [
    "--device",
    "cpu",
    "--workers",
    "0",
    "--no-progress",
    "--set",
    "frames=4",
    "--set",
    "input_size=32",
    "--set",
    "resize=32",
    "--set",
    "patch_size=16",
    "--set",
    "glance_size=16",
    "--set",
    "classifier_hidden=16",
    "--set",
    "policy_hidden=[16]",
    "--set",
    "policy_conv_channels=8",
    "--set",
    "grid_n=3",
    "--set",
    "batch_size=4",
    "--set",
    "pretrain_epochs=1",
    "--set",
    "stage1_epochs=1",
    "--set",
    "stage2_epochs=1",
    "--set",
    "stage3_epochs=1",
]
V2_ONLY = ["--set", "epochs=1"]  # a V1 run alone is not given V2's field (--set refuses what no method has)


def test_a_solo_rerun_through_the_command_line_is_not_trained_again(tmp_path, capsys, one_thread):
    """Case 2 end to end: a matched micro run, then `run --method v1 --seed 0 --quiet` alone."""
    from tests.fixtures_runs import micro_set, run_in_process

    root = micro_set(tmp_path / "set", train=2, val=1, easy=True)
    where = ["--data-root", str(root), "--runs-dir", str(tmp_path / "runs")]
    assert run_in_process(["run", "--method", "v1", "--method", "v2", *where, *MICRO, *V2_ONLY]) == 0
    capsys.readouterr()
    assert run_in_process(["run", "--method", "v1", "--quiet", "--no-preflight", *where, *MICRO]) == 0
    assert "run 1/1: v1 p16 s0 (already complete, not re-trained)" in capsys.readouterr().out
    assert len(list((tmp_path / "runs" / "synthetic" / "v1").iterdir())) == 1
    (section,) = _sections(tmp_path / "runs")
    assert sorted(section[1]["method"]) == ["v1", "v2"]
