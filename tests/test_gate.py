"""The regression gate end to end on micro runs (``focus_set``: only a patch off the centre sees the class):
a baseline from 4 seeds with tolerances derived from their spread; `adabench check` re-trains the baseline's
seeds; unchanged code passes; AdaFocusV2 with its locations frozen at the centre fails on accuracy."""

from __future__ import annotations

import json
import math

import pytest
import torch
from fixtures_runs import FOCUS_ARGS, base_args, focus_set, one_thread, run_in_process  # noqa: F401 (fixture)

from bench.models.policies import PolicyOutput
from bench.stats import t_quantile

SEEDS = (0, 1, 2, 3)
KEY = "synthetic/tiny/matched/v2/p16"


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """(data root, baseline path, the baseline's run summaries) from the unbroken method."""
    tmp = tmp_path_factory.mktemp("gate")
    root, runs, baseline = focus_set(tmp / "set"), tmp / "runs", tmp / "baseline.json"
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        seeds = [a for s in SEEDS for a in ("--seed", str(s))]
        assert (
            run_in_process(
                base_args("v2", root, runs, "--epochs", "6", "--precision", "fp32", *FOCUS_ARGS, *seeds)
            )
            == 0
        )
        assert (
            run_in_process(["check", "--update", "--runs-dir", str(runs), "--baseline", str(baseline)]) == 0
        )
    torch.set_num_threads(threads)
    summaries = [json.loads(p.read_text()) for p in sorted(runs.glob("synthetic/v2/*/summary.json"))]
    return root, baseline, summaries


def _check(gate, capsys):
    root, baseline, _ = gate
    code = run_in_process(
        ["check", "--baseline", str(baseline), "--data-root", str(root), "--device", "cpu", "--workers", "0"]
    )
    return code, capsys.readouterr().out


def _retrained(tmp_path):
    return [
        json.loads(p.read_text()) for p in sorted(tmp_path.glob("runs-check/*/synthetic/v2/*/summary.json"))
    ]


def test_baseline_records_every_seed_and_the_derivation(gate):
    _, baseline, summaries = gate
    b = json.loads(baseline.read_text())
    entry = b["runs"][KEY]
    assert b["seeds"] == list(SEEDS) and entry["seeds"] == list(SEEDS)
    by_seed = {s["seed"]: s["top1"] for s in summaries}
    assert entry["per_seed"]["top1"] == pytest.approx([by_seed[s] for s in SEEDS])
    tol = entry["tolerance"]["top1"]
    sd = float(torch.tensor([by_seed[s] for s in SEEDS], dtype=torch.float64).std())
    assert tol["sd"] == pytest.approx(sd, abs=1e-12) and tol["n"] == len(SEEDS)
    expected = max(
        b["derivation"]["accuracy_floor"], t_quantile(0.99, len(SEEDS) - 1) * sd * math.sqrt(2 / len(SEEDS))
    )
    assert tol["value"] == pytest.approx(expected)
    assert entry["recipe"]["epochs"] == 6 and entry["recipe"]["overrides"]["policy_lr_ratio"] == "1.0"
    assert entry["recipe"]["precision"] == "fp32"  # re-trained in the precision the baseline computed in


def test_unchanged_code_passes_the_gate(gate, tmp_path, monkeypatch, one_thread, capsys):
    monkeypatch.chdir(tmp_path)
    code, out = _check(gate, capsys)
    assert code == 0, out
    assert "2/2 checks within tolerance" in out and f"run {len(SEEDS)}/{len(SEEDS)}" in out
    assert sorted(s["seed"] for s in _retrained(tmp_path)) == list(
        SEEDS
    )  # the baseline's seeds, not seed 0 only
    manifests = tmp_path.glob("runs-check/*/synthetic/v2/*/manifest.json")
    assert {json.loads(p.read_text())["precision"] for p in manifests} == {"fp32"}  # the baseline's, not auto


def test_locations_frozen_at_the_centre_fail_the_gate(gate, tmp_path, monkeypatch, one_thread, capsys):
    act = PolicyOutput.act

    def frozen(self, mode="greedy", generator=None):  # V2's sigmoid head: every location the centre
        if self.head != "sigmoid":
            return act(self, mode, generator)
        centre = self.params * 0 + 0.5
        return centre, centre

    monkeypatch.setattr(PolicyOutput, "act", frozen)
    monkeypatch.chdir(tmp_path)
    code, out = _check(gate, capsys)
    assert code == 1, out
    fails = [ln for ln in out.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 1 and f"{KEY} top1" in fails[0], out  # accuracy broke; the network's GFLOPs did not
    runs = _retrained(tmp_path)
    assert sorted(s["seed"] for s in runs) == list(SEEDS)
    assert all(s["patch_eval"]["learned"] == s["patch_eval"]["centre"] for s in runs)  # really frozen
