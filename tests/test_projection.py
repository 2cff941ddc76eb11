"""Issue 20: `adabench project` (claim (b) at the paper's full schedule from measured step times): the
arithmetic on a fake timer, the published ratios shown next to it, the official device counts, the report's
projected rows, and timing commands that use random weights instead of downloading."""

from __future__ import annotations

import json
import math
import urllib.error

import pytest
import torch

import bench.tools.trainstep as trainstep
from bench.errors import UsageError
from bench.models.weights import timing_weights
from bench.presets import get_preset
from bench.tools.projection import parse_devices, project
from reports.measurements import projection_markdown
from tests.fixtures_runs import run_in_process

PAIR = ("v1", "v2")  # the claims these tests check are V1's against V2's
# a fake timer: seconds per timed step of each stage (batch 1)
FAKE = {"stage0": 3.0, "stage1": 1.0, "stage2": 0.5, "stage3": 0.8, "v2": 2.0}


@pytest.fixture
def fake_timer(monkeypatch):
    """Steps are never run: warm-up does nothing and every timed step takes FAKE[stage] seconds."""
    monkeypatch.setattr(trainstep, "_warm_up", lambda entries, warmup, count_flops: None)

    def fake_time(entry, device):
        entry.wall.append(FAKE[entry.step])
        entry.cpu.append(FAKE[entry.step])

    monkeypatch.setattr(trainstep, "_time", fake_time)


def _epochs(method, stage):
    hp = get_preset("synthetic", "tiny", method=method).train
    return (
        {
            "stage0": hp.pretrain_epochs,
            "stage1": hp.stage1_epochs,
            "stage2": hp.stage2_epochs,
            "stage3": hp.stage3_epochs,
        }[stage]
        if method == "v1"
        else hp.epochs
    )


def test_projected_hours_are_step_time_times_steps_times_epochs_over_devices(fake_timer):
    videos, devices = 1000, 3
    proj = project(
        "synthetic",
        "tiny",
        patch_sizes=[16, 24],
        devices=devices,
        precisions=("fp32",),
        train_videos=videos,
        batch=1,
        warmup=1,
        repeats=2,
        methods=PAIR,
    )
    assert len(proj["stages"]) == 2 * 5
    for s in proj["stages"]:
        batch = get_preset("synthetic", "tiny", method=s["method"]).train.batch_size
        assert s["epochs"] == _epochs(s["method"], s["stage"]) and s["devices"] == devices
        assert s["steps_per_epoch"] == math.ceil(videos / batch)
        assert s["s_per_step"] == pytest.approx(FAKE[s["stage"]] * batch)  # timed at batch 1, per video
        expected = FAKE[s["stage"]] * batch * s["steps_per_epoch"] * s["epochs"] / devices / 3600
        assert s["hours"] == pytest.approx(expected)
        assert s["device_hours"] == pytest.approx(expected * devices)
    # stage 0 trains on whole frames: timed at the first patch size only, repeated for the second
    assert [s["timed_at_patch"] for s in proj["stages"] if s["stage"] == "stage0"] == [None, 16]
    for r in proj["ratios"]:
        cell = [s for s in proj["stages"] if s["patch_size"] == r["patch_size"]]
        v1 = {s["stage"]: s["hours"] for s in cell if s["method"] == "v1"}
        v2 = sum(s["hours"] for s in cell if s["method"] == "v2")
        assert r["wall"] == pytest.approx(sum(v1.values()) / v2)
        assert r["wall_without_pretraining"] == pytest.approx((sum(v1.values()) - v1["stage0"]) / v2)
        assert r["device"] == pytest.approx(r["wall"])  # the same device count everywhere
        assert r["published"] == "not published"


def _fake_measure(dataset, preset_name, *, patch_sizes, precisions, methods, batch, **_):
    """Rows as bench.tools.trainstep gives them, without networks: per-video seconds equal in every stage."""
    stages = {"v1": [("stage0", 15), ("stage1", 50), ("stage2", 50), ("stage3", 10)], "v2": [("v2", 50)]}
    return [
        {
            "method": m,
            "step": s,
            "precision": p,
            "patch_size": size,
            "median_s": 1.0,
            "min_s": 0.9,
            "max_s": 1.2,
            "batch": batch,
            "preset_batch": 64 if m == "v1" else 32,
            "epochs": e,
            "timed_at_patch": None,
            "weights": None,
            "repeats": 2,
            "warmup": 1,
            "device": "cpu",
            "threads": 2,
            "frames": 16,
            "input_size": 224,
        }
        for size in patch_sizes
        for m in methods
        for s, e in stages[m]
        for p in precisions
    ]


@pytest.mark.parametrize(
    "dataset, published",
    [
        ("actnet", {96: 6.4 / 3.4, 128: 7.2 / 3.7, 160: 8.6 / 4.3}),  # V2 Table 2, 4x RTX 3090 (facts §4.3)
        ("sthv1", {144: 2.4, 160: 2.2, 176: 2.2}),  # V2 Fig. 1 speed-ups (facts §4.3)
    ],
)
def test_the_paper_ratios_shown_are_the_published_ones(dataset, published):
    proj = project(dataset, devices="official", precisions=("fp32",), measure=_fake_measure, methods=PAIR)
    assert {r["patch_size"]: r["published_ratio"] for r in proj["ratios"]} == pytest.approx(published)
    text = projection_markdown(proj)
    if dataset == "actnet":
        assert "6.4 h / 3.4 h" in text and "7.2 h / 3.7 h" in text and "8.6 h / 4.3 h" in text
    else:
        assert "2.4× [V2 Fig. 1" in text and "2.2× [V2 Fig. 1" in text


def test_official_devices_are_the_scripts_counts_and_divide_the_wall_clock():
    proj = project(
        "actnet",
        devices="official",
        patch_sizes=[128],
        precisions=("fp32",),
        measure=_fake_measure,
        methods=PAIR,
    )
    devices = {s["stage"]: s["devices"] for s in proj["stages"]}
    assert devices == {"stage0": 2, "stage1": 2, "stage2": 1, "stage3": 1, "v2": 4}  # facts §2.2, §3.2
    r = proj["ratios"][0]
    # equal per-video cost: V1 video-epochs 15+50+50+10 on 2,2,1,1 devices vs V2 50 on 4
    assert r["wall"] == pytest.approx((15 / 2 + 50 / 2 + 50 + 10) / (50 / 4), rel=1e-3)
    assert r["device"] == pytest.approx((15 + 50 + 50 + 10) / 50, rel=1e-3)
    assert r["device_without_pretraining"] == pytest.approx((50 + 50 + 10) / 50, rel=1e-3)
    assert proj["train_videos"] == 10_024  # ActivityNet v1.3's training split


def test_bad_devices_and_unknown_training_size_are_one_line_usage_errors(tmp_path, capsys):
    assert parse_devices("official") == "official" and parse_devices("8") == 8
    for bad in ("0", "-2", "four"):
        with pytest.raises(UsageError, match="--devices"):
            parse_devices(bad)
    code = run_in_process(
        ["project", "--dataset", "synthetic", "--preset", "tiny", "--out", str(tmp_path / "p.json")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--train-videos" in err
    assert not (tmp_path / "p.json").exists()


def test_the_report_adds_projected_claim_rows(tmp_path, fake_timer):
    from reports.report import build_report

    runs = tmp_path / "runs"
    code = run_in_process(
        [
            "project",
            "--dataset",
            "synthetic",
            "--preset",
            "tiny",
            "--train-videos",
            "500",
            "--devices",
            "2",
            "--precision",
            "fp32",
            "--runs-dir",
            str(runs),
            "--method",
            "v1",
            "--method",
            "v2",
        ]
    )
    assert code == 0
    (path,) = (runs / "projections").glob("*.json")
    assert json.loads(path.read_text())["kind"] == "adabench-projection"
    text = (build_report(runs, tmp_path / "report")).read_text()
    assert "(b) at the paper's schedule, projected from measured steps" in text
    assert "synthetic 32² · fp32 · 2 devices per stage" in text


def test_timing_without_local_weights_uses_random_ones_and_never_downloads(tmp_path, monkeypatch, fake_timer):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    preset = get_preset("actnet", "paper", method="v2")
    timed, note = timing_weights(preset)
    assert (preset.glance_pretrained, preset.focus_pretrained) == ("imagenet", "imagenet")
    assert (timed.glance_pretrained, timed.focus_pretrained) == (None, None)
    assert (
        note.startswith("weights: random for glance (mbv2: imagenet), focus (res50: imagenet)")
        and "\n" not in note
    )
    rows = trainstep.benchmark_train_steps(
        "actnet",
        "paper",
        patch_size=96,
        batch=1,
        warmup=0,
        repeats=1,
        precisions=("fp32",),
        methods=["v2"],
        count_flops=False,
    )
    assert rows[0]["weights"] == note and calls == []
    # a local file is used as it is
    local = tmp_path / "res50.pt"
    local.write_bytes(b"x")
    timed, note = timing_weights(
        get_preset("actnet", "paper", method="v2", glance_pretrained=None, focus_pretrained=str(local))
    )
    assert timed.focus_pretrained == str(local) and note is None


def test_summary_device_seconds_are_wall_clock_times_world_size():
    from types import SimpleNamespace

    from bench.methods import PlanContext, RunOutcome
    from bench.runs.config import RunConfig
    from bench.runs.resolved import ResolvedRun
    from bench.runs.summary import build_summary
    from bench.training.runtime import DistEnv
    from bench.training.stage import TrainState
    from bench.training.timing import StageClock

    state = TrainState(clock=StageClock({"stage1": 30.0, "stage2": 10.0}), epoch_seconds=[1.0])
    learned = SimpleNamespace(top1=0.5, map=None, coverage=None, tracking=None, num_videos=4)
    flops = SimpleNamespace(gflops_per_video=1.0, by_component={}, per_step=[])
    run = ResolvedRun.of(RunConfig(method="v1", dataset="synthetic", precision="fp32"))
    ctx = PlanContext(None, run.preset, 6, False, DistEnv(world_size=4), "fp32", 0, "synthetic", "adabench")
    outcome = RunOutcome({"learned": learned}, flops, ("stage1", "stage2"), {})
    s = build_summary(run, ctx, outcome, state, [], {"stage1": 1, "stage2": 1}, eval_split="val", run_dir="r")
    assert s["stage_seconds"] == {"stage1": 30.0, "stage2": 10.0}
    assert s["stage_device_seconds"] == {"stage1": 120.0, "stage2": 40.0}
    assert s["train_device_seconds"] == 160.0
