"""Issue 21 cases 7 and 8: the last tracebacks are one-line usage errors (exit 2, before any data is read
or directory made), and an option of a method that is not selected is refused, naming its method."""

from __future__ import annotations

import pytest

from bench.methods import all_methods
from tests.fixtures_runs import run_in_process


def _one_line(argv, capsys, tmp_path) -> str:
    runs = tmp_path / "runs"
    code = run_in_process(
        ["run", "--data-root", str(tmp_path), "--runs-dir", str(runs), "--device", "cpu", *argv]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not runs.exists()
    return err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--method", "v2", "--set", "lr=1e39"], "--set lr=1e+39: out of range"),
        (
            ["--method", "v2", "--patch-size", "1", "--precision", "bf16"],
            "--patch-size 1: the focus backbone tiny accepts patches of at least 8 pixels",
        ),
        (["--method", "v1", "--patch-size", "7"], "at least 8 pixels (its stride); expected 8..56"),
        (
            ["--method", "v2", "--seed", "99999999999999999999"],
            "'--seed': 99999999999999999999 is not in the range",
        ),
        (["--method", "v2", "--seed", "-1"], "'--seed': -1 is not in the range"),
    ],
)
def test_former_tracebacks_are_one_line_usage_errors(argv, expected, capsys, tmp_path):
    assert expected in _one_line(argv, capsys, tmp_path)


def test_an_option_of_a_method_not_selected_names_its_method(capsys, tmp_path):
    """`--method v1 --no-aux`, `--method v2 --rl reinforce`, for every registered method's options."""
    methods = all_methods()
    for owner in methods:
        other = next(m for m in methods if m.name != owner.name)
        for opt in owner.options:
            value = [opt.choices[-1]] if opt.choices else []
            err = _one_line(["--method", other.name, opt.flag, *value], capsys, tmp_path)
            assert (
                f"{opt.flag} is an option of method {owner.name}" in err and f"--method {other.name}" in err
            )


def test_a_selected_methods_option_is_still_accepted(tmp_path):
    from bench.runs.config import RunConfig
    from bench.runs.experiment import plan_runs
    from commands.options import method_option_values

    v1 = next(m for m in all_methods() if any(o.flag == "--rl" for o in m.options))
    own = method_option_values({f"opt__{v1.name}__rl_algorithm": "reinforce"}, (v1.name, "v2"))
    (cfg,) = plan_runs(RunConfig(method=v1.name, runs_dir=str(tmp_path)), [v1.name], method_sets=own)
    assert cfg.resolve_preset().train.rl_algorithm == "reinforce"
