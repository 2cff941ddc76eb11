"""Issue 23: ``adabench run --config experiment.yaml``: every option of ``run`` from a YAML file (command-line
options override it), an unknown key is a one-line usage error, the resolved file is saved with the runs,
and a file reproduces the command line's run (same config hash, so the same run directory)."""

from __future__ import annotations

import yaml

from tests.fixtures_runs import V2_ARGS, base_args, micro_set, one_thread, run_in_process

__all__ = ["one_thread"]


def _yaml_of(data_root, runs_dir, seed):
    sets = dict(item.split("=", 1) for item in V2_ARGS[1::2])
    sets["policy_hidden"] = [32]  # a list, as one would write it in YAML
    return {
        "method": ["v2"],
        "data_root": str(data_root),
        "runs_dir": str(runs_dir),
        "device": "cpu",
        "workers": 0,
        "no_progress": True,
        "quiet": True,
        "seed": seed,
        "epochs": 1,
        "set": {k: yaml.safe_load(v) if k != "policy_hidden" else v for k, v in sets.items()},
    }


def test_yaml_config_reproduces_the_command_line_run(tmp_path, capsys, one_thread):
    root = micro_set(tmp_path / "set", train=4, val=2)
    runs = tmp_path / "runs"
    assert run_in_process(base_args("v2", root, runs, "--epochs", "1")) == 0
    first = capsys.readouterr().out
    run_dirs = sorted((runs / "synthetic" / "v2").iterdir())
    assert len(run_dirs) == 1 and "already complete" not in first
    saved = sorted((runs / "_experiments").glob("run-*.yaml"))
    assert len(saved) == 1

    cfg = tmp_path / "experiment.yaml"
    cfg.write_text(yaml.safe_dump(_yaml_of(root, runs, seed=[1])))
    assert run_in_process(["run", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "already complete" in out and str(run_dirs[0]) in out  # same config hash: same directory
    assert sorted((runs / "v2").glob("*")) == [] and sorted((runs / "synthetic" / "v2").iterdir()) == run_dirs
    assert sorted((runs / "_experiments").glob("run-*.yaml")) == saved  # the same resolved options

    # the command line overrides the file (seed 7 in the file, 1 given); the saved file re-runs it too
    cfg.write_text(yaml.safe_dump(_yaml_of(root, runs, seed=[7])))
    assert run_in_process(["run", "--config", str(cfg), "--seed", "1"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert run_in_process(["run", "--config", str(saved[0])]) == 0
    assert "already complete" in capsys.readouterr().out
    resolved = yaml.safe_load(saved[0].read_text())
    assert resolved["seed"] == [1] and resolved["set"]["policy_hidden"] == [32] and resolved["quiet"] is True


def test_unknown_key_or_bad_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("method: [v2]\npatch_sizes: [16]\n")
    assert run_in_process(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "unknown key 'patch_sizes'" in err
    assert str(cfg) in err
    cfg.write_text("- v2\n")
    assert run_in_process(["run", "--config", str(cfg)]) == 2
    assert "expected a mapping" in capsys.readouterr().err
    assert run_in_process(["run", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read it" in capsys.readouterr().err
