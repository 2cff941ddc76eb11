"""Results store: complete runs become rows, incomplete or broken ones are skipped and named."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.errors import UsageError
from bench.runs.config import RunConfig
from bench.runs.results import collect_results, schema, schema_markdown, write_results
from bench.runs.rundir import RunDir

DOC = Path(__file__).resolve().parent.parent / "docs" / "results-schema.md"


def _summary(method: str, seed: int, top1: float, **kw) -> dict:
    s = {
        "method": method,
        "dataset": "synthetic",
        "preset": "tiny",
        "arch": "matched",
        "patch_size": 32,
        "seed": seed,
        "top1": top1,
        "map": None,
        "gflops_per_video": 0.5,
        "train_seconds": 100.0,
        "stage_seconds": {"train": 100.0} if method == "v2" else {"stage1": 60.0, "stage2": 40.0},
        "epoch_seconds": 20.0,
        "data_wait_share": 0.1,
        "peak_memory_mb": 300.0,
        "patch_eval": {"learned": top1, "random": top1 - 0.2, "centre": top1 - 0.1},
        "coverage": 0.8,
        "early_exit": [{"budget": 0.3, "gflops": 0.3, "top1": top1 - 0.05}] if method == "v2" else None,
        "curve": [{"train_seconds": 50.0, "top1": top1 / 2}, {"train_seconds": 100.0, "top1": top1}],
        "device": "cpu",
        "world_size": 1,
        "run_dir": "/elsewhere",
    }
    s.update(kw)
    return s


def _run(runs: Path, method: str, seed: int, **cfg_kw) -> RunDir:
    cfg = RunConfig(method=method, patch_size=32, seed=seed, runs_dir=str(runs), **cfg_kw)
    run = RunDir.for_config(cfg).create()
    run.write_config(cfg, cfg.resolve_preset())
    return run


def _layout(runs: Path) -> dict:
    v2 = _run(runs, "v2", 0, overrides={"diversity": False})
    v2.write_summary(_summary("v2", 0, 0.6))
    v1 = _run(runs, "v1", 0)
    v1.write_summary(_summary("v1", 0, 0.5, map=float("nan"), extra_note={"a": 1}))
    running = _run(runs, "v2", 1)  # still training: config + checkpoint only
    (running.checkpoints_dir / "last.pt").write_bytes(b"x")
    broken = _run(runs, "v2", 2)
    broken.summary_path.write_text('{"method": "v2", "top1": ')
    partial = _run(runs, "v2", 3)
    partial.write_summary({"method": "v2", "dataset": "synthetic"})
    flat = runs / "synthetic" / "v2" / "handmade"  # a flat config.yaml (no run: section)
    flat.mkdir(parents=True)
    (flat / "config.yaml").write_text(yaml.safe_dump({"method": "v2", "stop_gradient": False}))
    (flat / "summary.json").write_text(json.dumps(_summary("v2", 9, 0.7)))
    return {"v2": v2, "v1": v1, "running": running, "broken": broken, "partial": partial, "flat": flat}


def test_collect_rows_and_skips(tmp_path: Path) -> None:
    runs = _layout(tmp_path / "runs")
    df, skipped = collect_results(tmp_path / "runs")
    assert len(df) == 3 and sorted(df["method"]) == ["v1", "v2", "v2"]
    reasons = dict(skipped)
    assert set(reasons) == {str(runs["running"].path), str(runs["broken"].path), str(runs["partial"].path)}
    assert reasons[str(runs["running"].path)] == "incomplete: no summary.json"
    assert "malformed JSON" in reasons[str(runs["broken"].path)]
    assert "lacks" in reasons[str(runs["partial"].path)] and "top1" in reasons[str(runs["partial"].path)]

    assert list(df.columns[: len(schema())]) == list(schema())
    assert {"stage_seconds_stage1", "stage_seconds_stage2", "stage_seconds_train", "extra_note"} <= set(
        df.columns
    )
    v1 = df[df["method"] == "v1"].iloc[0]
    v2 = df[(df["method"] == "v2") & (df["seed"] == 0)].iloc[0]
    assert v1["stage_seconds_stage2"] == 40.0 and pd.isna(v1["stage_seconds_train"])
    assert v2["patch_eval_random"] == pytest.approx(0.4) and json.loads(v2["patch_eval"])["learned"] == 0.6
    assert json.loads(v2["early_exit"])[0]["gflops"] == 0.3 and v1["early_exit"] is None
    assert pd.isna(v1["map"]) and df["map"].dtype == "float64" and str(df["seed"].dtype) == "Int64"
    # config switches: from the run: section and from a flat config.yaml
    assert v2["diversity"] is False and v2["aux_supervision"] is True and v1["diversity"] is None
    assert v2["config_hash"] == runs["v2"].path.name.rsplit("-", 1)[1]
    flat = df[df["seed"] == 9].iloc[0]
    assert flat["stop_gradient"] is False and flat["diversity"] is None
    assert v2["run_dir"] == str(runs["v2"].path)  # where it was found, not what the summary claims


def test_write_results_round_trip(tmp_path: Path) -> None:
    _layout(tmp_path / "runs")
    df, _ = collect_results(tmp_path / "runs")
    csv_path, pq_path = write_results(df, tmp_path / "out")
    back = pd.read_parquet(pq_path)
    assert list(back.columns) == list(df.columns) and len(back) == 3
    pd.testing.assert_series_equal(back["top1"], df["top1"])
    assert back["curve"].tolist() == df["curve"].tolist()
    from_csv = pd.read_csv(csv_path)
    assert from_csv["top1"].tolist() == df["top1"].tolist()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["results.csv", "results.parquet"]


def test_empty_and_missing_runs_dir(tmp_path: Path) -> None:
    df, skipped = collect_results(tmp_path)
    assert df.empty and skipped == []
    with pytest.raises(UsageError, match="not found"):
        collect_results(tmp_path / "nope")


def test_schema_doc_matches_code() -> None:
    assert schema_markdown() in DOC.read_text()


def _keep_writing(run_dir: str, n: int) -> None:
    run = RunDir(Path(run_dir))
    for i in range(n):
        run.write_summary(_summary("v2", 0, i / n, pad="x" * 20000))


def test_collect_while_summaries_are_rewritten(tmp_path: Path) -> None:
    """Concurrent writers into one runs directory: the reader never meets a torn summary."""
    runs = tmp_path / "runs"
    dirs = [_run(runs, "v2", s).path for s in range(3)]
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_keep_writing, args=(str(d), 40)) for d in dirs]
    for p in procs:
        p.start()
    reads = 0
    while any(p.is_alive() for p in procs):
        df, skipped = collect_results(runs)
        assert all(r == "incomplete: no summary.json" for _, r in skipped), skipped
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    df, skipped = collect_results(runs)
    assert len(df) == 3 and not skipped and reads > 0


def test_group_hash_from_real_run_directories(tmp_path: Path) -> None:
    """config.yaml as RunDir.write_config writes it: seeds pool, another --epochs or --set does not."""
    runs = tmp_path / "runs"
    made = {}
    for name, seed, kw in (
        ("s0", 0, {}),
        ("s1", 1, {"device": "cpu", "num_workers": 2}),
        ("epochs", 0, {"epochs": 2}),
        ("set", 0, {"overrides": {"lr": "0.5"}}),
    ):
        run = _run(runs, "v2", seed, data_root=str(tmp_path / "data"), **kw)
        run.write_summary(_summary("v2", seed, 0.5))
        made[name] = str(run.path)
    df, _ = collect_results(runs)
    h = dict(zip(df["run_dir"], df["group_hash"]))
    assert h[made["s0"]] == h[made["s1"]]
    assert len({h[made["s0"]], h[made["epochs"]], h[made["set"]]}) == 3
    ident = json.loads(df.loc[df["run_dir"] == made["s0"], "identity"].iloc[0])
    assert (
        ident["preset.frames"] == 8
        and ident["run.method"] == "v2"
        and ident["data_root"] == str(tmp_path / "data")
    )
    assert not {"run.seed", "run.device", "run.runs_dir", "run.num_workers", "run.data_root"} & set(ident)
    row = df[df["run_dir"] == made["set"]].iloc[0]
    assert (
        json.loads(row["overrides"]) == {"lr": "0.5"} and row["skip_bad"] is False and pd.isna(row["epochs"])
    )
