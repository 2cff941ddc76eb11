"""Issue 21 case 6: ``--deterministic`` gives identical metrics for every ``--workers`` value.

The main process's torch thread count used to be the cores left after the loader workers (2 threads with
``--workers 0``, 1 with ``--workers 2`` on 2 cores), and float reductions over a different number of
threads round differently. Under ``--deterministic`` it no longer depends on the workers. The machine is
made to look like 3 cores, so the old rule would give 3 threads against 1.
"""

from __future__ import annotations

import json

import pytest

from bench.io import read_csv_rows
from tests.fixtures_runs import base_args, micro_set, only_run_dir, run_in_process


@pytest.fixture()
def three_cores(monkeypatch):
    import torch

    import bench.training.runtime

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(bench.training.runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def test_deterministic_metrics_do_not_depend_on_the_number_of_workers(tmp_path, three_cores):
    root = micro_set(tmp_path / "set", train=4, val=2)
    results = []
    for workers in ("0", "2"):
        runs = tmp_path / f"runs-{workers}"
        argv = base_args("v2", root, runs, "--deterministic", "--set", "epochs=2", "--workers", workers)
        assert run_in_process(argv) == 0
        run = only_run_dir(runs, "v2")
        summary = json.loads((run / "summary.json").read_text())
        manifest = json.loads((run / "manifest.json").read_text())
        losses = [r["train_loss"] for r in read_csv_rows(run / "metrics.csv")]
        results.append(
            (manifest["torch_threads"], losses, summary["top1"], summary["patch_eval"], summary["early_exit"])
        )
    assert results[0] == results[1]
