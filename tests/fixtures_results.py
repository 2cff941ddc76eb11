"""Hand-written run summaries shaped exactly like design.md's ``summary.json`` keys.

Used by the report, claims and regression tests so they do not need a trained model.
``make_summary`` builds one summary; ``write_run`` lays it out as a run directory
(``config.yaml`` + ``summary.json``, and ``manifest.json`` when given) under ``runs/<dataset>/<method>/...``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

SUMMARY_KEYS = (
    "method",
    "dataset",
    "preset",
    "arch",
    "patch_size",
    "seed",
    "top1",
    "map",
    "gflops_per_video",
    "train_seconds",
    "stage_seconds",
    "epoch_seconds",
    "data_wait_share",
    "peak_memory_mb",
    "patch_eval",
    "coverage",
    "early_exit",
    "curve",
    "device",
    "world_size",
    "run_dir",
)

V1_STAGES = ("stage0", "stage1", "stage2", "stage3")


def make_curve(final_top1: float, train_seconds: float, epochs: int = 5) -> List[Dict[str, float]]:
    """A rising learning curve that ends exactly at (train_seconds, final_top1)."""
    return [
        {
            "train_seconds": train_seconds * (e + 1) / epochs,
            "top1": final_top1 * (0.5 + 0.5 * (e + 1) / epochs),
        }
        for e in range(epochs)
    ]


def make_early_exit(top1: float, gflops: float) -> List[Dict[str, float]]:
    """V2+ points: cheaper budgets lose a little accuracy; the last budget equals the full model."""
    return [
        {"budget": 0.4 * gflops, "gflops": 0.4 * gflops, "top1": top1 - 0.08},
        {"budget": 0.6 * gflops, "gflops": 0.6 * gflops, "top1": top1 - 0.004},
        {"budget": 0.8 * gflops, "gflops": 0.8 * gflops, "top1": top1},
        {"budget": gflops, "gflops": gflops, "top1": top1},
    ]


def make_summary(
    method: str = "v2",
    *,
    dataset: str = "synthetic",
    preset: str = "tiny",
    arch: str = "matched",
    patch_size: int = 32,
    seed: int = 0,
    top1: float = 0.60,
    map: Optional[float] = None,
    gflops_per_video: float = 0.50,
    train_seconds: float = 100.0,
    **overrides: Any,
) -> Dict[str, Any]:
    """One complete summary dict; any key can be overridden."""
    if method == "v1":
        shares = (0.3, 0.3, 0.3, 0.1)
        stage_seconds = {s: train_seconds * f for s, f in zip(V1_STAGES, shares)}
    else:
        stage_seconds = {"train": train_seconds}
    s: Dict[str, Any] = {
        "method": method,
        "dataset": dataset,
        "preset": preset,
        "arch": arch,
        "patch_size": patch_size,
        "seed": seed,
        "top1": top1,
        "map": map,
        "gflops_per_video": gflops_per_video,
        "train_seconds": train_seconds,
        "stage_seconds": stage_seconds,
        "epoch_seconds": train_seconds / 5,
        "data_wait_share": 0.2,
        "peak_memory_mb": 300.0,
        "patch_eval": {"learned": top1, "random": top1 - 0.1, "centre": top1 - 0.05},
        "coverage": 0.7,
        "early_exit": make_early_exit(top1, gflops_per_video) if method == "v2" else None,
        "curve": make_curve(top1, train_seconds),
        "device": "cpu",
        "world_size": 1,
        "run_dir": "",
    }
    s.update(overrides)
    assert set(s) == set(SUMMARY_KEYS), set(s) ^ set(SUMMARY_KEYS)
    return s


def make_config(summary: Dict[str, Any], **flags: Any) -> Dict[str, Any]:
    """A config.yaml body (bench.runs.rundir layout: "run" = RunConfig, "preset", "config_hash")."""
    run = {
        "method": summary["method"],
        "dataset": summary["dataset"],
        "preset": summary["preset"],
        "arch": summary["arch"],
        "patch_size": summary["patch_size"],
        "seed": summary["seed"],
        "aux_supervision": True,
        "diversity": True,
        "stop_gradient": True,
    }
    run.update(flags)
    return {"run": run, "preset": {"patch_size": summary["patch_size"]}, "config_hash": "0" * 8}


def write_run(
    root: Path,
    summary: Dict[str, Any],
    *,
    complete: bool = True,
    manifest: Optional[Dict[str, Any]] = None,
    preset: Optional[Dict[str, Any]] = None,
    **flags: Any,
) -> Path:
    """Lay out one run directory; ``complete=False`` leaves out summary.json (a half-written run).
    ``flags`` go into config.yaml's run section (e.g. ``epochs=1``, ``data_root=...``, ``diversity=False``),
    ``preset`` into its preset section; ``manifest`` is written as manifest.json."""
    cfg = make_config(summary, **flags)
    cfg["preset"].update(preset or {})
    tag = "".join(
        "x" if not cfg["run"][k] else "o" for k in ("aux_supervision", "diversity", "stop_gradient")
    )
    digest = hashlib.sha1(
        json.dumps([flags, preset, manifest], sort_keys=True, default=str).encode()
    ).hexdigest()
    run = (
        Path(root)
        / summary["dataset"]
        / summary["method"]
        / (
            f"{summary['preset']}-{summary['arch']}-p{summary['patch_size']}-s{summary['seed']}-"
            f"{tag}{digest[:5]}"
        )
    )
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    if manifest is not None:
        (run / "manifest.json").write_text(json.dumps(manifest))
    if complete:
        (run / "summary.json").write_text(json.dumps({**summary, "run_dir": str(run)}))
    return run


def matched_summaries(
    seeds=(0, 1, 2),
    patch_sizes=(32, 48),
    v1_top1: float = 0.50,
    v2_top1: float = 0.60,
    v1_seconds: float = 200.0,
    v2_seconds: float = 100.0,
    jitter: float = 0.01,
    **kw: Any,
) -> List[Dict[str, Any]]:
    """V1 and V2 summaries over seeds x patch sizes, with a small per-seed spread."""
    out = []
    for p in patch_sizes:
        g = 0.3 + 0.005 * p
        for s in seeds:
            d = jitter * (s - (len(seeds) - 1) / 2)
            out.append(
                make_summary(
                    "v1",
                    patch_size=p,
                    seed=s,
                    top1=v1_top1 + d,
                    gflops_per_video=g * 0.98,
                    train_seconds=v1_seconds * (1 + d),
                    **kw,
                )
            )
            out.append(
                make_summary(
                    "v2",
                    patch_size=p,
                    seed=s,
                    top1=v2_top1 + d,
                    gflops_per_video=g,
                    train_seconds=v2_seconds * (1 + d),
                    **kw,
                )
            )
    return out
