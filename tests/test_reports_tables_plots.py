"""Aggregation into the canonical frame, the Markdown tables, and the PNG plots."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from reports.frame import fmt_mean_std, mean_std, runs_frame, time_unit, variant_name
from reports.plots import PLOTS
from reports.tables import efficiency_table, seeds_table, stage_table
from tests.fixtures_results import make_summary, matched_summaries


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    runs = matched_summaries()
    runs += [{**make_summary("v2", seed=s, top1=0.45), "aux_supervision": False} for s in (0, 1)]
    return runs_frame(runs)


def test_runs_frame_aggregation(frame):
    assert len(frame) == 14
    assert set(frame["variant"]) == {"full", "no-aux"}
    assert frame.loc[frame["variant"] == "no-aux", "method"].eq("v2").all()
    assert frame["acc"].between(0, 100).all() and set(frame["metric"]) == {"top-1"}
    # multi-label runs use mAP; CSV-style JSON strings are parsed back
    ml = runs_frame(
        [{**make_summary("v1", map=0.42), "patch_eval": '{"learned": 0.3}', "stop_gradient": "False"}]
    )
    assert ml["acc"].iloc[0] == pytest.approx(42.0) and ml["metric"].iloc[0] == "mAP"
    assert ml["patch_eval"].iloc[0] == {"learned": 0.3} and ml["variant"].iloc[0] == "no-sg"
    assert variant_name({"diversity": False, "stop_gradient": 0}) == "no-div+no-sg"


def test_mean_std_helpers():
    m, s, n = mean_std([1.0, 2.0, 3.0, float("nan")])
    assert (m, s, n) == (2.0, 1.0, 3)
    assert fmt_mean_std([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    assert fmt_mean_std([5.0]) == "5.0" and fmt_mean_std([]) == "–"
    assert math.isnan(mean_std([4.0])[1])
    assert (
        time_unit(30) == (1.0, "s") and time_unit(600) == (60.0, "min") and time_unit(9000) == (3600.0, "h")
    )


def test_efficiency_table(frame):
    md = efficiency_table(frame)
    lines = md.strip().splitlines()
    assert len(lines) == 4  # header, rule, one row per patch size
    assert lines[0].startswith("| Patch | AdaFocusV1 top-1 accuracy (%) | AdaFocusV2 top-1 accuracy (%)")
    assert "train time (min)" in lines[0]
    row32 = lines[2].split(" | ")
    assert row32[0] == "| 32²" and row32[1] == "50.0 ± 1.0" and row32[2] == "60.0 ± 1.0"
    assert "2.00×" in lines[2] and "3/3" in lines[2]
    assert "Needs runs of a method and of its baseline" in efficiency_table(frame[frame["method"] == "v2"])


def test_stage_and_seed_tables(frame):
    st = stage_table(frame)
    header = st.splitlines()[0]
    for stage in ("stage0", "stage1", "stage2", "stage3", "train"):
        assert f"{stage} (min)" in header
    v1_row = [r for r in st.splitlines() if r.startswith("| AdaFocusV1 | 32²")][0]
    assert "| 1.00 | 1.00 | 1.00 | 0.33 |" in v1_row  # 200 s split 30/30/30/10 %
    sd = seeds_table(frame)
    assert "| AdaFocusV2 no-aux | 32² | 0, 1 | 45.0 ± 0.0 |" in sd
    assert "| AdaFocusV2 | 32² | 0, 1, 2 | 60.0 ± 1.0 |" in sd


def _png_ok(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plots_have_labels_units_legends(frame, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig = PLOTS[name](frame, path)
    assert _png_ok(path)
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "(" in ax.get_ylabel()  # a unit in parentheses
    assert ax.get_legend() is not None and ax.get_legend().get_texts()
    units = {
        "accuracy_vs_gflops": "GFLOPs",
        "accuracy_vs_time": "(min)",
        "stage_time": "(min)",
        "patch_modes": "(%)",
    }
    assert units[name] in ax.get_xlabel() + ax.get_ylabel()


def test_early_exit_curve_in_gflops_plot(frame, tmp_path):
    fig = PLOTS["accuracy_vs_gflops"](frame, tmp_path / "a.png")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("early exit" in t for t in texts) and "AdaFocusV1" in texts and "AdaFocusV2 (no-aux)" in texts


def test_seeds_table_shows_whether_the_patch_follows_the_object():
    from reports.frame import runs_frame
    from reports.tables import seeds_table
    from tests.fixtures_results import make_summary

    tracks = {0: 0.9, 1: 0.94}
    runs = [
        {
            **make_summary("v1", seed=s),
            "tracking": {"corr": c, "distance": 0.1, "constant_distance": 0.28, "spread": 0.2},
        }
        for s, c in tracks.items()
    ]
    md = seeds_table(runs_frame(runs + [make_summary("v2", seed=0)]))
    assert "tracking corr" in md and "0.92 ± 0.03" in md and "0.10 ± 0.00 / 0.28 ± 0.00" in md
