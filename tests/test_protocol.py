"""`--protocol official` (issue 10, item 6): the official code's model selection (best validation point,
per stage), early-exit calibration (max logit, train-augmented logits, a 20k subset on Mini-Kinetics only)
and glance/focus augmentation (independent crops); the default protocol is unchanged, part of the identity
only when not the default, and every summary / results row / report section says which protocol it used."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures_data import make_20bn_csv
from fixtures_plan import plan_stages
from fixtures_runs import base_args, micro_set, one_thread, run_in_process  # noqa: F401 (fixture)

from adafocus_v2.method import EXIT_TRAIN_VIDEOS, exit_protocol
from bench.data import ClipSpec, create_dataset
from bench.errors import UsageError
from bench.models import build_network
from bench.presets import get_preset
from bench.runs.config import RunConfig
from bench.runs.rundir import RunDir
from bench.training.checkpoint import read_checkpoint, save_checkpoint
from bench.training.driver import Driver
from bench.training.runtime import DistEnv
from bench.training.stage import TrainState

K = 4


def test_protocol_is_part_of_the_identity_only_when_not_the_default():
    base = RunConfig(method="v2")
    assert (
        base.protocol == "adabench" and "protocol" not in base.identity()
    )  # old run directories keep their names
    official = dataclasses.replace(base, protocol="official")
    assert official.identity()["protocol"] == "official" and official.config_hash() != base.config_hash()
    with pytest.raises(UsageError, match="protocol"):
        RunConfig(method="v2", protocol="paper")


def test_unknown_protocol_on_the_command_line_is_a_usage_error(capsys):
    assert run_in_process(["run", "--method", "v2", "--protocol", "paper"]) == 2
    assert "--protocol" in capsys.readouterr().err


@pytest.mark.parametrize("independent", [False, True])
def test_glance_view_gets_its_own_crop_only_under_the_official_protocol(tmp_path, independent):
    fx = make_20bn_csv(tmp_path, counts=(12, 9, 20, 15))
    spec = ClipSpec(frames=3, glance_frames=2, input_size=16, resize=16, independent_views=independent)
    ds = create_dataset("jester", fx.root, "train", spec, train=True)
    same = []
    for i in range(len(ds)):
        for k in range(4):
            item = ds.load_item(i, np.random.default_rng(100 * i + k))
            # fixture frames: green is a left-to-right ramp (40..200 over 40 px), so equal crops give equal
            # column profiles up to JPEG noise (< 0.03 here), while other crops move them by 0.1 and more
            a, b = item["frames"][0, 1].mean(0), item["glance"][0, 1].mean(0)
            same.append(torch.allclose(a, b, atol=0.06))
    assert all(same) if not independent else not all(same)


def _driver(tmp_path, scores, select_best):
    """Two 3-epoch stages (V2's step twice) whose learning-curve scores are ``scores`` in order; the
    weights at each curve point are recorded."""
    preset = get_preset(
        "synthetic",
        "tiny",
        method="v2",
        frames=4,
        batch_size=4,
        input_size=32,
        resize=32,
        patch_size=16,
        classifier_hidden=32,
        policy_hidden=(32,),
    )
    torch.manual_seed(0)
    net = build_network(preset, num_classes=K)
    (stage,) = plan_stages("v2", net, preset, K)
    stages = [
        dataclasses.replace(stage, name="first", epochs=3),
        dataclasses.replace(stage, name="second", epochs=3),
    ]
    g = torch.Generator().manual_seed(0)
    batches = [
        {"frames": torch.randn(4, 4, 3, 32, 32, generator=g), "label": torch.randint(0, K, (4,), generator=g)}
    ]
    seen, queue = [], list(scores)

    def curve(modes):
        seen.append({k: v.clone() for k, v in net.state_dict().items()})
        return {"top1": queue.pop(0), "map": None}

    run = RunDir(tmp_path / ("best" if select_best else "last")).create()
    d = Driver(
        net,
        stages,
        run,
        batches,
        DistEnv(),
        seed=0,
        label="t",
        evaluate_curve=curve,
        evaluate_end=lambda: {},
        curve_epochs=lambda n: set(range(n)),
        select_best=select_best,
    )
    d.fit()
    return run, d.state, seen


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("select_best", [True, False])
def test_a_stage_continues_from_its_best_validation_point_under_the_official_protocol(tmp_path, select_best):
    # first: epochs 1-3 score .2 .9 .4 (best: epoch 2); second: epochs 1-2 score .3 .5 (epoch 3 is the
    # runner's)
    run, state, seen = _driver(tmp_path, [0.2, 0.9, 0.4, 0.3, 0.5], select_best)
    first = read_checkpoint(run.stage_checkpoint("first"))["modules"]["net"]
    if select_best:
        assert _same(first, seen[1]) and not _same(first, seen[2])  # stage 2 started from the best point
        assert state.best["first"]["epoch"] == 1 and state.best["second"]["epoch"] == 1
        best = read_checkpoint(run.best_checkpoint)
        assert (best["stage"], best["epoch"]) == ("second", 1) and _same(best["modules"]["net"], seen[4])
    else:
        assert _same(first, seen[2]) and state.best == {} and not run.best_checkpoint.exists()


def test_the_runs_final_model_is_the_last_stages_best_point(tmp_path, monkeypatch):
    import bench.runs.runner as runner

    net = torch.nn.Linear(1, 1, bias=False)
    run = RunDir(tmp_path).create()
    with torch.no_grad():
        net.weight.fill_(0.8)
    save_checkpoint(run.best_checkpoint, modules={"net": net}, stage="s", epoch=1)
    with torch.no_grad():
        net.weight.fill_(0.3)  # the final epoch's weights
    ctx = SimpleNamespace(
        net=net,
        dir=run,
        env=DistEnv(),
        data=SimpleNamespace(eval_split="val"),
        final_results=lambda: {"learned": SimpleNamespace(top1=float(net.weight.detach()), map=None)},
    )
    stage = SimpleNamespace(name="s", epochs=4)
    final = ctx.final_results()
    state = TrainState(best={"s": {"epoch": 1, "score": 0.8, "top1": 0.8, "map": None}})
    results, extra = runner._select_best(ctx, state, stage, final)
    assert results["learned"].top1 == pytest.approx(0.8)
    assert extra["selected_checkpoint"]["epoch"] == 2 and extra["selected_checkpoint"]["last_epoch"][
        "top1"
    ] == pytest.approx(0.3)
    state.best["s"]["score"] = 0.1  # the last epoch is better: it stays
    with torch.no_grad():
        net.weight.fill_(0.3)
    results, extra = runner._select_best(ctx, state, stage, ctx.final_results())
    assert results["learned"].top1 == pytest.approx(0.3) and extra["selected_checkpoint"]["epoch"] == 4


@pytest.mark.parametrize(
    "protocol,dataset,want",
    [
        ("adabench", "minik", ("softmax", False, EXIT_TRAIN_VIDEOS, False)),
        ("official", "minik", ("logit", True, EXIT_TRAIN_VIDEOS, True)),
        ("official", "actnet", ("logit", True, None, False)),
    ],
)
def test_early_exit_calibration_follows_the_protocol(protocol, dataset, want):
    how = exit_protocol(SimpleNamespace(protocol=protocol, dataset=dataset))
    assert (how["criterion"], how["augmented"], how["max_videos"], how["random_subset"]) == want


def test_official_protocol_run_says_so_everywhere_and_is_never_pooled(tmp_path, one_thread):
    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    for protocol in ("adabench", "official"):
        assert run_in_process(base_args("v2", root, runs, "--epochs", "2", "--protocol", protocol)) == 0
    summaries = {
        json.loads(p.read_text())["protocol"]: (json.loads(p.read_text()), p.parent)
        for p in runs.glob("synthetic/v2/*/summary.json")
    }
    official, run_dir = summaries["official"]
    default, _ = summaries["adabench"]
    assert official["exit_criterion"] == "logit" and default["exit_criterion"] == "softmax"
    assert official["exit_calibration"]["augmented"] and not default["exit_calibration"]["augmented"]
    chosen = official["selected_checkpoint"]
    assert chosen["stage"] == "v2" and chosen["epoch"] in (1, 2) and chosen["split"] == "val"
    assert "selected_checkpoint" not in default
    assert (run_dir / "checkpoints" / "best.pt").is_file()  # the epoch-1 point on the whole validation split
    assert run_in_process(["report", "--runs-dir", str(runs), "--out", str(tmp_path / "report")]) == 0
    df = pd.read_csv(tmp_path / "report" / "results.csv")
    assert sorted(df["protocol"]) == ["adabench", "official"] and df["group_hash"].nunique() == 2
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.count("protocol `official`") == 1 and md.count("protocol `adabench`") == 1


def test_official_sth_sth_cadence_scores_every_epoch():
    from bench.runs.config import PROTOCOLS
    from bench.runs.resolved import PROTOCOL_RULES, ResolvedRun

    def epochs(protocol, variant, preset="paper"):
        run = ResolvedRun(
            None, SimpleNamespace(name=preset, variant=variant), None, PROTOCOL_RULES[protocol], ""
        )
        return run.curve_epochs(50)

    assert set(PROTOCOL_RULES) == set(PROTOCOLS)
    assert epochs("official", "video") == set(range(50)) == epochs("adabench", "frame", "tiny")
    sparse = {4, 9, 14, 19, 24, 29, 34, 39, *range(40, 50)}
    assert epochs("official", "frame") == sparse == epochs("adabench", "video")
