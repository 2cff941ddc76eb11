"""Reading a regression baseline (``baselines/*.json``, written by ``bench.tools.regression.make_baseline``):
the file validated as a whole, one line naming the file and the field when it is not what the gate expects."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from bench.errors import UsageError

FORMAT = "adabench-baseline/2"
FORMATS = ("adabench-baseline/1", FORMAT)
DEFAULT_TOLERANCES = {"accuracy_abs": 0.05, "gflops_rel": 0.001, "time_ratio_factor": 2.0}  # format 1


def load_baseline(path: Union[str, Path]) -> Dict[str, Any]:
    """Read and validate a baseline file (format 1 or 2); one-line UsageError naming the file otherwise."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"--baseline {p}: no such file") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"--baseline {p}: not readable JSON ({e})") from None
    if (
        not isinstance(data, dict)
        or data.get("format") not in FORMATS
        or not isinstance(data.get("runs"), dict)
    ):
        raise UsageError(f"--baseline {p}: expected an adabench baseline (format '{FORMAT}' with 'runs')")
    problem = _type_problem(data)
    if problem:
        raise UsageError(f"--baseline {p}: {problem}")
    return data


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _type_problem(data: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with a baseline that parses as JSON but does not hold what ``make_baseline`` writes."""
    tol = data.get("tolerances", {})
    if not isinstance(tol, dict):
        return f"tolerances is {json.dumps(tol)}, expected an object"
    for k, v in tol.items():
        if k not in DEFAULT_TOLERANCES:
            return f"tolerances.{k}: unknown, expected {', '.join(DEFAULT_TOLERANCES)}"
        if not _number(v):
            return f"tolerances.{k} is {json.dumps(v)}, expected a number >= 0"
    for key, run in data["runs"].items():
        parts = key.split("/")
        if len(parts) != 5 or not parts[4].startswith("p") or not parts[4][1:].isdigit():
            return f"runs key {key!r}: expected <dataset>/<preset>/<arch>/<method>/p<patch>"
        if not isinstance(run, dict):
            return f"runs.{key} is {json.dumps(run)}, expected an object"
        for metric in ("top1", "map", "gflops_per_video", "train_seconds"):
            if run.get(metric) is not None and not _number(run[metric]):
                return f"runs.{key}.{metric} is {json.dumps(run[metric])}, expected a number >= 0 or null"
        seeds = run.get("seeds")
        if seeds is not None and not (isinstance(seeds, list) and all(type(x) is int for x in seeds)):
            return f"runs.{key}.seeds is {json.dumps(seeds)}, expected a list of integers"
    ratios = data.get("time_ratios", {})
    if not isinstance(ratios, dict):
        return f"time_ratios is {json.dumps(ratios)}, expected an object"
    for k, v in ratios.items():  # format 1: the ratio; format 2: {"ratio", "factor", "per_seed", "seeds"}
        value = v.get("ratio") if isinstance(v, dict) else v
        if not _number(value):
            return f"time_ratios.{k} is {json.dumps(v)}, expected a number >= 0 (or an object with a ratio)"
    return None
