"""run_all says which run of how many is starting and how long the rest should take."""

import bench.runs.runner as runner
from bench.runs.config import RunConfig
from bench.runs.experiment import plan_runs


def test_eta_uses_each_methods_mean_so_far():
    assert runner._eta({}, ["v1", "v2"]) is None
    assert runner._eta({"v1": [10.0, 30.0]}, ["v1", "v2"]) == 20.0 + 20.0  # v2 unknown: the overall mean
    assert runner._eta({"v1": [10.0], "v2": [4.0]}, ["v2", "v2", "v1"]) == 18.0


def test_one_line_per_run_with_its_position_and_the_time_left(tmp_path, monkeypatch):
    clock = iter(float(t) for t in range(0, 1000, 5))
    monkeypatch.setattr("time.perf_counter", lambda: next(clock))
    fake = {
        "top1": 0.5,
        "gflops_per_video": 0.01,
        "train_seconds": 1.0,
        "patch_eval": {"learned": 0.5, "random": 0.4, "centre": 0.3},
    }
    monkeypatch.setattr(
        runner,
        "run_method",
        lambda r, run: {**fake, "method": r.cfg.method, "patch_size": r.cfg.patch_size, "seed": r.cfg.seed},
    )
    configs = plan_runs(
        RunConfig(method="v1", runs_dir=str(tmp_path)),
        ["v1", "v2"],
        [],
        [0, 1],
        {"v2": {"aux_supervision": False}},
    )
    lines = []
    runner.run_all(configs, lines.append)
    starts = [ln for ln in lines if ln.startswith("run ")]
    assert starts[0] == "run 1/4: v1 p32 s0"  # nothing timed yet
    assert starts[1] == "run 2/4: v2-no-aux p32 s0; about 15 s left"  # 3 runs x the one mean (5 s)
    assert starts[3].startswith("run 4/4: v2-no-aux p32 s1; about 5 s left")
