"""build_report end to end on hand-written run directories (no training)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from reports.report import build_report
from tests.fixtures_results import make_summary, matched_summaries, write_run


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    for s in matched_summaries(seeds=(0, 1), patch_sizes=(32,)):
        write_run(runs, s)
    write_run(runs, make_summary("v2", seed=0, top1=0.4), aux_supervision=False)
    # a second dataset/preset: its own section, never compared with the first
    for s in matched_summaries(seeds=(0,), patch_sizes=(24,), dataset="sthv1", preset="paper"):
        write_run(runs, s)
    half = write_run(runs, make_summary("v1", seed=7), complete=False)
    out = tmp_path_factory.mktemp("report")
    path = build_report(runs, out)
    return path, path.read_text(), half


def test_report_links_exist(report):
    path, md, _ = report
    links = re.findall(r"\]\(([^)]+)\)", md)
    pngs = [link for link in links if link.endswith(".png")]
    assert len(pngs) == 8  # 4 plots x 2 sections
    for link in links:
        assert (path.parent / link).is_file(), link
    assert "results.csv" in links and "results.parquet" in links


def test_report_sections_tables_claims(report):
    _, md, _ = report
    assert md.count("\n## ") == 3  # two groups + skipped runs
    assert "## synthetic · tiny preset · matched architecture" in md
    assert "## sthv1 · paper preset · matched architecture" in md
    sections = {sec.split(" ·")[0]: sec for sec in md.split("\n## ")[1:]}
    synth, sth = sections["synthetic"], sections["sthv1"]
    assert "| (a) AdaFocusV2 more accurate" in synth and "**holds**" in synth
    assert "| AdaFocusV2 no-aux | 32² | 0 |" in synth  # the ablation run is read from config.yaml
    assert "**inconclusive**" in sth and "| 1 | **holds**" not in sth  # one seed per side
    assert "V1 Table 3 / V2 Table 5" not in sth  # no published number at 24²
    for title in ("Training efficiency", "Training time per stage", "mean ± std over seeds"):
        assert title in synth


def test_half_written_run_is_skipped_and_named(report):
    path, md, half = report
    assert "## Skipped runs" in md and str(half) in md
    df = pd.read_csv(path.parent / "results.csv")
    assert len(df) == 4 + 1 + 2 and not df["seed"].eq(7).any()
    assert len(pd.read_parquet(path.parent / "results.parquet")) == len(df)


def test_empty_runs_dir(tmp_path):
    (tmp_path / "runs").mkdir()
    md = build_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert "No complete runs" in md and "None: every run" in md


def test_sparse_runs_do_not_break_the_report(tmp_path):
    """Missing optional values (no stages, no curve, no patch eval, no early exit, no arch) degrade to '–'."""
    import warnings

    runs = tmp_path / "runs"
    write_run(
        runs,
        make_summary(
            "v1",
            stage_seconds=None,
            curve=[],
            data_wait_share=None,
            peak_memory_mb=None,
            patch_eval=None,
            coverage=None,
        ),
    )
    write_run(runs, make_summary("v2", early_exit=[], map=0.3, arch=None))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md = build_report(runs, tmp_path / "out").read_text()
    assert "## synthetic · tiny preset · unknown architecture" in md  # never silently dropped
    assert "| AdaFocusV1 | 32² | 0 | 60.0 | 0.500 | 100.00 | – | – | – | – |" in md
    assert "| AdaFocusV2 | 32² | 0 | 30.0 |" in md and "mAP (%)" in md
    for link in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (tmp_path / "out" / link).is_file()


def test_extra_keys_typed_differently_by_method(tmp_path):
    """V1 summaries may carry ``epochs`` per stage (a dict), V2 an int: Parquet still gets one type.
    The summary's ``epochs`` is kept as ``epochs_trained``; ``epochs`` is the run's --epochs option."""
    runs = tmp_path / "runs"
    write_run(runs, {**make_summary("v1"), "epochs": {"stage0": 1, "stage1": 1}})
    write_run(runs, {**make_summary("v2"), "epochs": 1}, epochs=1)
    build_report(runs, tmp_path / "out")
    back = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert sorted(back["epochs_trained"]) == ["1", '{"stage0": 1, "stage1": 1}']
    assert sorted(back["epochs"].fillna(0)) == [0, 1]


def test_verdict_lines_say_each_claims_verdict_per_dataset(report):
    from reports.report import verdict_lines

    path, _, _ = report
    runs_dir = next(p for p in path.parents[1].iterdir() if p.name.startswith("runs"))  # the fixture's
    synth = verdict_lines(runs_dir, dataset="synthetic")
    both = verdict_lines(runs_dir)
    assert synth and len(both) > len(synth)  # the sthv1 section's claims are left out
    accuracy = next(line for line in synth if "(a) AdaFocusV2 more accurate" in line)
    assert accuracy.split()[0] == "holds" and "32²" in accuracy and "n=2" in accuracy
    assert all(line.split()[0] in ("holds", "does", "inconclusive") for line in both)
