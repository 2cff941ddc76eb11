"""Matched-experiment planning and the shared initial state."""

import torch
from torch import nn

from bench.runs.config import RunConfig
from bench.runs.experiment import init_state_path, plan_runs, share_initial_state


def _net(head_out: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, head_out))


def test_plan_interleaves_methods_and_shares_one_init_per_cell(tmp_path):
    base = RunConfig(method="v2", runs_dir=str(tmp_path))
    plans = plan_runs(base, ["v1", "v2"], [16, 24], [0, 1])
    assert len(plans) == 8
    assert [p.method for p in plans[:2]] == ["v1", "v2"]
    assert plans[0].init_state == plans[1].init_state == str(init_state_path(plans[0]))
    assert plans[0].init_state != plans[2].init_state  # another seed, another cell
    assert len({p.config_hash() for p in plans}) == 8


def test_single_method_has_no_shared_init_and_takes_the_presets_patch(tmp_path):
    from bench.presets import get_preset

    plans = plan_runs(RunConfig(method="v2", runs_dir=str(tmp_path)), ["v2", "v2"], [], [0, 0])
    assert len(plans) == 1 and plans[0].init_state is None
    assert plans[0].patch_size == get_preset("synthetic", "tiny", method="v2").patch_size


def test_second_method_loads_shared_tensors_and_keeps_its_own_head(tmp_path):
    path = str(tmp_path / "init.pt")
    first, second = _net(3, seed=0), _net(5, seed=1)  # different heads, different seeds
    info1 = share_initial_state(first, path)
    info2 = share_initial_state(second, path)
    assert info1["created"] and not info2["created"]
    assert torch.equal(first[0].weight, second[0].weight)
    assert info2["kept_own"] == ["2.bias", "2.weight"]
    assert second[2].weight.shape == (5, 8)


def test_ablations_follow_the_full_runs_and_share_their_initial_weights(tmp_path):
    from bench.runs.experiment import with_ablations

    plans = with_ablations(
        plan_runs(RunConfig(method="v1", runs_dir=str(tmp_path)), ["v1", "v2"], [], [0, 1])
    )
    assert [(p.method, p.seed) for p in plans[:4]] == [("v1", 0), ("v2", 0), ("v1", 1), ("v2", 1)]
    ablations = plans[4:]
    assert sorted(next(iter(p.overrides)) for p in ablations if p.seed == 0) == [
        "aux_supervision",
        "diversity",
        "stop_gradient",
    ]
    full_v2 = {p.seed: p for p in plans[:4] if p.method == "v2"}
    assert all(p.method == "v2" and p.init_state == full_v2[p.seed].init_state for p in ablations)
    assert len({p.config_hash() for p in plans}) == len(plans) == 4 + 6
