"""``adabench check``: the regression gate's orchestration (the comparison itself is
``bench.tools.regression``).

Without ``--runs-dir`` it re-trains the runs a baseline was made from (its methods, variants, overrides and
every one of its seeds) afresh into a new ``runs-check/<UTC time>/`` (a gate must not reuse runs made by
older code), then compares; ``update`` writes a baseline from the runs instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from bench.errors import UsageError
from bench.runs.runner import run_all

GATE_RUNS_DIR = "runs-check"


def baseline_seeds(baseline: Mapping[str, Any]) -> List[int]:
    """The seeds the gate trains: the baseline's (format 1: those its entries list)."""
    return sorted({int(s) for e in baseline["runs"].values() for s in e.get("seeds") or [0]})


def recipes(baseline: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """How to re-run each key, the run that created a shared initial state first. Format 1 keys are full
    variants of one matched experiment (the methods share their initial state when there are several)."""
    out = []
    keys = sorted(baseline["runs"])
    for key in keys:
        rec = baseline["runs"][key].get("recipe")
        if rec is None:
            dataset, preset, arch, method, patch = key.split("/")
            rec = {
                "method": method.split("-")[0],
                "dataset": dataset,
                "preset": preset,
                "arch": arch,
                "patch_size": int(patch[1:]),
                "epochs": None,
                "overrides": {},
                "precision": "fp32",
                "shared_init": len(keys) > 1,
                "creates_init": key == keys[0],
            }
        out.append(dict(rec))
    return sorted(out, key=lambda r: not r["creates_init"])


def gate_configs(
    baseline: Mapping[str, Any],
    runs_dir: str,
    *,
    data_root: Optional[str] = None,
    device: str = "auto",
    workers: Optional[int] = None,
) -> List[Any]:
    """The RunConfigs that re-run the baseline: every key with every baseline seed, seeds outermost."""
    import dataclasses

    from bench.data import resolve_data_root
    from bench.runs.config import RunConfig
    from bench.runs.experiment import init_state_path

    configs = []
    roots: Dict[str, str] = {}
    for seed in baseline_seeds(baseline):
        for rec in recipes(baseline):
            if rec["dataset"] not in roots:
                roots[rec["dataset"]] = str(resolve_data_root(rec["dataset"], data_root))
            cfg = RunConfig(
                method=rec["method"],
                dataset=rec["dataset"],
                data_root=roots[rec["dataset"]],
                preset=rec["preset"],
                arch=rec["arch"],
                patch_size=rec["patch_size"],
                seed=seed,
                epochs=rec["epochs"],
                device=device,
                runs_dir=runs_dir,
                num_workers=workers,
                progress=False,
                quiet=True,
                overrides=dict(rec["overrides"]),
                precision=rec.get("precision", "fp32"),
            )
            if rec["shared_init"]:
                cfg = dataclasses.replace(cfg, init_state=str(init_state_path(cfg)))
            cfg.resolve_preset()
            configs.append(cfg)
    return configs


def run_gate_experiment(
    baseline: Dict[str, Any],
    echo: Callable[[str], None] = print,
    *,
    data_root: Optional[str] = None,
    device: str = "auto",
    workers: Optional[int] = None,
) -> str:
    """Re-train the runs a regression baseline was made from (its methods, variants, overrides and every one
    of its seeds: ``bench.tools.regression.gate_configs``) afresh into a new ``runs-check/<UTC time>/`` (a
    gate must
    not reuse runs made by older code); returns that directory."""
    import datetime

    stamp = f"{GATE_RUNS_DIR}/{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}"
    runs_dir, k = stamp, 1
    while Path(runs_dir).exists():  # two checks in one second never share (and so reuse) runs
        k += 1
        runs_dir = f"{stamp}-{k}"
    configs = gate_configs(baseline, runs_dir, data_root=data_root, device=device, workers=workers)
    echo(
        f"check: training the baseline's {len(configs)} runs (seeds "
        f"{', '.join(map(str, baseline_seeds(baseline)))})"
        f" into {runs_dir}"
    )
    run_all(configs, echo)
    return runs_dir


def check(
    baseline_path: str,
    *,
    runs_dir: Optional[str] = None,
    tolerances: Optional[Mapping[str, float]] = None,
    alpha: Optional[float] = None,
    update: bool = False,
    data_root: Optional[str] = None,
    device: str = "auto",
    workers: Optional[int] = None,
    echo: Callable[[str], None] = print,
) -> bool:
    """Compare runs (``runs_dir``, or the baseline's re-trained afresh) with the baseline; True when every
    check
    is within tolerance. ``update``: write the baseline from ``runs_dir`` instead (True)."""
    from bench.io import atomic_write_json, check_writable_dir
    from bench.runs.results import collect_results
    from bench.tools.baseline_file import load_baseline
    from bench.tools.regression import compare_to_baseline, make_baseline

    baseline = None if update else load_baseline(baseline_path)  # a bad baseline fails before any training
    if update:
        if runs_dir is None:
            raise UsageError("--update needs --runs-dir (the runs to make the baseline from)")
        check_writable_dir(Path(baseline_path).parent, for_file=baseline_path)
    if runs_dir is None:
        assert baseline is not None  # loaded: --update without --runs-dir was refused above
        runs_dir = run_gate_experiment(baseline, echo, data_root=data_root, device=device, workers=workers)
    results, skipped = collect_results(runs_dir)
    tol = dict(tolerances or {})
    if update:
        options: Dict[str, Any] = {"alpha": alpha} if alpha is not None else {}
        made = make_baseline(results, tol, **options)
        atomic_write_json(baseline_path, made)
        echo(f"baseline: {baseline_path} ({len(results)} runs, seeds {', '.join(map(str, made['seeds']))})")
        return True
    assert baseline is not None  # loaded when not --update
    ok, lines = compare_to_baseline(results, baseline, tol)
    for line in lines + [f"note skipped {run}: {why}" for run, why in skipped]:
        echo(line)
    return ok
