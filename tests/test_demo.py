"""``adabench demo`` plans the matched experiment of every method with its ablations over three seeds, ends
with the report and each claim's verdict (training and the report are stubbed: their own tests cover them)."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.data
import bench.runs.runner
import reports.report
from bench.methods import get_method
from cli import main


@pytest.fixture()
def planned(monkeypatch, tmp_path):
    calls: dict = {}

    class Report:
        ok, num_classes, splits, problems = True, 6, {"train": 768, "val": 192}, []

    monkeypatch.setattr(bench.data, "resolve_data_root", lambda name, root=None: tmp_path / name)
    monkeypatch.setattr(bench.data, "check_dataset", lambda name, root: Report())
    monkeypatch.setattr(
        bench.runs.runner, "run_all", lambda plans, echo: calls.setdefault("plans", list(plans))
    )
    monkeypatch.setattr(reports.report, "build_report", lambda runs, out: Path(out) / "report.md")
    monkeypatch.setattr(
        reports.report,
        "verdict_lines",
        lambda runs, dataset=None: calls.setdefault("dataset", [f"holds  (a) on {dataset}"]),
    )
    monkeypatch.chdir(tmp_path)
    return calls


def test_demo_runs_three_seeds_of_every_method_and_its_ablations(planned, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--no-progress"])
    assert e.value.code == 0
    plans = planned["plans"]
    ablations = {a.field for m in ("v1", "v2") for a in get_method(m).ablations}
    full = [c for c in plans if not ablations & {k for k, v in c.overrides.items() if v is False}]
    sizes = (24, 32, 40)  # the papers' 96/128/160 on the 56 px frame
    assert sorted((c.method, c.seed, c.patch_size) for c in full) == sorted(
        (m, s, p) for m in ("v1", "v2") for s in (0, 1, 2) for p in sizes
    )
    middle = [c for c in full if c.patch_size == 32]
    n_ablations = sum(len(get_method(c.method).ablations) for c in middle)
    assert (
        len(plans) == len(full) + n_ablations and n_ablations >= 3 * 3
    )  # V2's three ablations, 3 seeds each
    assert plans[: len(full)] == full  # the main comparison first
    for c in plans[len(full) :]:  # each ablation: at the middle size, from its full run's initial weights
        partner = next(f for f in middle if (f.method, f.seed) == (c.method, c.seed))
        assert c.patch_size == 32 and c.init_state == partner.init_state is not None
    assert {c.dataset for c in plans} == {"synthetic"} and {c.preset for c in plans} == {"tiny"}
    out = capsys.readouterr().out
    assert "holds  (a) on synthetic" in out  # the verdicts end the output


def test_demo_video_variant_and_seed_choice(planned):
    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "synthetic_video", "--seed", "4", "--no-ablations", "--no-progress"])
    assert {(c.dataset, c.seed) for c in planned["plans"]} == {("synthetic_video", 4)}
    assert sorted(c.method for c in planned["plans"]) == ["v1"] * 3 + ["v2"] * 3
    assert {c.patch_size for c in planned["plans"]} == {36, 40, 44}  # 144/160/176 on the 56 px frame


def test_demo_refuses_a_dataset_that_needs_a_root(planned, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--dataset", "jester"])
    assert e.value.code == 2 and "--dataset" in capsys.readouterr().err
