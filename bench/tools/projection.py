"""``adabench project``: each method's training time at the paper's full schedule, projected from step times
measured here in minutes (claim (b) without training for days).

Per method and stage: the step time at the preset's shapes (``bench.tools.trainstep``, a few steps after
warm-up, all stages and patch sizes round-robin), per video = the measured step / the timed batch; at the
preset's batch B a step costs B times that; an epoch is ceil(training videos / B) steps; the stage runs its
epochs in the preset's schedule (the method's ``plan``) on ``devices`` devices with ideal data-parallel
scaling:

    hours = s/step x steps/epoch x epochs / devices / 3600,   device-hours = hours x devices.

A method's hours are the sum over its stages (they run one after another). The baseline/proposed ratios
come in wall-clock and in device-hours, with and without the baseline's pre-training stages (the method
entry's ``pretraining_stages``), next to the published ratio (the proposed method's ``claims``).
Devices: ``official`` = the official scripts' count per stage (the entry's ``official_devices``), or one
integer for every stage.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch

from bench.errors import UsageError

CPU = torch.device("cpu")
OFFICIAL = "official"
KIND = "adabench-projection"
Devices = Union[str, int]


def parse_devices(text: Any) -> Devices:
    """``official`` or a positive integer (``--devices``)."""
    value = str(text).strip().lower()
    if value == OFFICIAL:
        return OFFICIAL
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise UsageError(f"--devices {text}: expected 'official' or a positive integer")


def training_videos(dataset: str, override: Optional[int] = None) -> Tuple[int, str]:
    """The training-set size (and its source) that sets the steps per epoch."""
    from bench.data.datasets import dataset_info

    if override is not None:
        if override < 1:
            raise UsageError(f"--train-videos {override}: expected a positive number of videos")
        return int(override), "--train-videos"
    info = dataset_info(dataset)
    if not info.train_videos:
        raise UsageError(
            f"--dataset {dataset}: its training-set size is not registered; give --train-videos N"
        )
    return int(info.train_videos), info.train_videos_source


def stage_devices(method: str, variant: str, devices: Devices) -> Dict[str, Tuple[int, str]]:
    """{stage: (devices, source)} for ``method``: the official scripts' counts, or ``devices`` everywhere."""
    from bench.methods import get_method

    entry = get_method(method)
    if devices != OFFICIAL:
        return {
            s: (int(devices), "--devices (ideal data-parallel scaling assumed)") for s in entry.stage_names
        }
    if entry.official_devices is None:
        raise UsageError(
            f"--devices official: {entry.title} does not say how many devices its official code "
            "uses; give --devices N"
        )
    return dict(entry.official_devices(variant))


def project_stage(row: Dict[str, Any], videos: int, devices: int, stat: str = "median_s") -> Dict[str, Any]:
    """One stage's projection from its measured row (``bench.tools.trainstep`` fields)."""
    per_video = row[stat] / row["batch"]
    step = per_video * row["preset_batch"]
    steps = math.ceil(videos / row["preset_batch"])
    hours = step * steps * row["epochs"] / devices / 3600
    return {"s_per_step": step, "steps_per_epoch": steps, "hours": hours, "device_hours": hours * devices}


def _stage_rows(
    rows: Sequence[Dict[str, Any]], videos: int, variant: str, devices: Devices
) -> List[Dict[str, Any]]:
    allocation = {m: stage_devices(m, variant, devices) for m in dict.fromkeys(r["method"] for r in rows)}
    out = []
    for r in rows:
        if r["step"] not in allocation[r["method"]]:
            raise UsageError(f"--devices official: no device count for stage {r['step']} of {r['method']}")
        n, source = allocation[r["method"]][r["step"]]
        best = project_stage(r, videos, n, "min_s")
        out.append(
            {
                "method": r["method"],
                "stage": r["step"],
                "precision": r["precision"],
                "patch_size": r["patch_size"],
                "measured_s_per_step": r["median_s"],
                "measured_min_s": r["min_s"],
                "measured_max_s": r["max_s"],
                "timed_batch": r["batch"],
                "preset_batch": r["preset_batch"],
                "epochs": r["epochs"],
                "devices": n,
                "devices_source": source,
                "timed_at_patch": r.get("timed_at_patch"),
                **project_stage(r, videos, n),
                "hours_from_min": best["hours"],
                "device_hours_from_min": best["device_hours"],
            }
        )
    return _ordered(out)


def _ordered(stages: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """By precision, patch size, then each method's stages in the order they were measured."""
    order = {k: i for i, k in enumerate(dict.fromkeys((s["method"], s["stage"]) for s in stages))}
    return sorted(stages, key=lambda s: (s["precision"], s["patch_size"], order[s["method"], s["stage"]]))


def _total(stages: Sequence[Dict[str, Any]], key: str, skip: Sequence[str] = ()) -> float:
    return sum(s[key] for s in stages if s["stage"] not in skip)


def _ratios(stages: Sequence[Dict[str, Any]], dataset: str) -> List[Dict[str, Any]]:
    """Baseline/proposed ratios per (precision, patch size, compared pair)."""
    from bench.methods import comparison_pairs

    out = []
    cells = dict.fromkeys((s["precision"], s["patch_size"]) for s in stages)
    for precision, p in cells:
        cell = [s for s in stages if (s["precision"], s["patch_size"]) == (precision, p)]
        for base, prop in comparison_pairs(sorted({s["method"] for s in cell})):
            b = [s for s in cell if s["method"] == base.name]
            q = [s for s in cell if s["method"] == prop.name]
            pre = base.pretraining_stages
            published = getattr(prop.claims, "train_time_ratio", lambda d, p: None)(dataset, p)
            row = {
                "precision": precision,
                "patch_size": p,
                "baseline": base.name,
                "proposed": prop.name,
                "label": f"{base.title}/{prop.title}",
                "pretraining_stages": list(pre),
                "published_ratio": published[0] if published else None,
                "published": published[1] if published else "not published",
            }
            for key, name in (
                ("hours", "wall"),
                ("device_hours", "device"),
                ("hours_from_min", "wall_from_min"),
            ):
                row[name] = _total(b, key) / _total(q, key)
                row[f"{name}_without_pretraining"] = _total(b, key, pre) / _total(q, key)
            row.update(baseline_hours=_total(b, "hours"), proposed_hours=_total(q, "hours"))
            out.append(row)
    return out


def default_patch_sizes(dataset: str, methods: Sequence[str]) -> Sequence[Optional[int]]:
    """The patch sizes some method's paper publishes a training-time ratio for on ``dataset`` (else the
    preset's)."""
    from bench.methods import get_method

    sizes: Set[int] = set()
    for m in methods:
        sizes.update(getattr(get_method(m).claims, "train_time_patch_sizes", lambda d: ())(dataset))
    return sorted(sizes) or [None]


def project(
    dataset: str,
    preset_name: str = "paper",
    *,
    arch: str = "matched",
    patch_sizes: Optional[Sequence[int]] = None,
    devices: Devices = OFFICIAL,
    precisions: Sequence[str] = ("auto",),
    train_videos: Optional[int] = None,
    batch: int = 1,
    warmup: int = 1,
    repeats: int = 2,
    device: torch.device = CPU,
    channels_last: str = "auto",
    methods: Optional[Sequence[str]] = None,
    measure: Optional[Callable[..., List[Dict[str, Any]]]] = None,
) -> Dict[str, Any]:
    """Measure every stage's step and project the schedule: a JSON-able record
    (``reports.measurements.projection_markdown``).

    ``measure``: the step timer (default ``bench.tools.trainstep.benchmark_train_steps``; tests give a
    fake)."""
    from bench.data.datasets import dataset_info
    from bench.methods import get_method, method_names
    from bench.tools.trainstep import benchmark_train_steps

    names = list(methods) if methods else method_names()
    videos, source = training_videos(dataset, train_videos)
    variant = dataset_info(dataset).variant
    for m in names:  # a usage error before minutes of measuring
        stage_devices(m, variant, devices)
    sizes = list(patch_sizes) if patch_sizes else default_patch_sizes(dataset, names)
    once = tuple(s for m in names for s in get_method(m).pretraining_stages)
    t0 = time.perf_counter()
    rows = (measure or benchmark_train_steps)(
        dataset,
        preset_name,
        arch=arch,
        patch_sizes=[s for s in sizes if s is not None] or None,
        batch=batch,
        warmup=warmup,
        repeats=repeats,
        device=device,
        precisions=precisions,
        channels_last=channels_last,
        methods=names,
        once=once,
        count_flops=False,
    )
    stages = _stage_rows(rows, videos, variant, devices)
    r0 = rows[0]
    assumptions = [
        f"per-video step cost independent of batch size (timed at batch {batch}, projected at each preset's "
        f"batch)",
        "ideal data-parallel scaling over a stage's devices (no communication or input-pipeline cost)",
        "data loading, evaluation and checkpointing excluded (training steps only)",
        "absolute hours are for this machine; only the ratios carry over to other hardware",
    ]
    return {
        "kind": KIND,
        "dataset": dataset,
        "preset": preset_name,
        "arch": arch,
        "devices": devices,
        "train_videos": videos,
        "train_videos_source": source,
        "weights": r0.get("weights"),
        "timing": {
            k: r0[k] for k in ("batch", "warmup", "repeats", "device", "threads", "frames", "input_size")
        }
        | {"seconds": time.perf_counter() - t0},
        "assumptions": assumptions,
        "stages": stages,
        "ratios": _ratios(stages, dataset),
    }
