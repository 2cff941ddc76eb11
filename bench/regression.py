"""The regression gate's comparison: run results against a committed baseline JSON (pure functions).

A baseline (``make_baseline``) holds, per run key ``<dataset>/<preset>/<arch>/<method>[-<variant>]/p<patch>``,
the mean over seeds of top-1 (and mAP), GFLOPs per video and training seconds, plus per
``<dataset>/<preset>/<arch>/p<patch>/<baseline>:<method>`` the training-time ratio of each method to the
method its claims compare against (``bench.methods``). ``compare_to_baseline`` checks:

- accuracy within an absolute tolerance (fraction, default 0.05 = 5 points: tiny runs on shared CPUs
  are not bit-reproducible across machines),
- GFLOPs within a relative 0.1 % (deterministic: a change means the network changed),
- training-time ratios within a factor (default 2; absolute seconds are never compared because CI
  boxes are noisy, ecosystem-facts §4).

Baseline runs missing from the results fail; results without a baseline entry are only noted. Runs
are averaged over seeds only within one configuration: when the runs of one key come from several
configurations (``group_hash`` of ``bench.results``: other epochs, overrides, data root or code
version), ``make_baseline`` refuses and ``compare_to_baseline`` fails that key instead of averaging.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from bench.errors import AdabenchError, UsageError

FORMAT = "adabench-baseline/1"
DEFAULT_TOLERANCES = {"accuracy_abs": 0.05, "gflops_rel": 0.001, "time_ratio_factor": 2.0}
REQUIRED = ("method", "dataset", "preset", "arch", "patch_size", "top1", "gflops_per_video", "train_seconds")


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def run_variant(run: Mapping[str, Any]) -> str:
    """'full' or the ablations a run switched off (its summary's ``variant``, e.g. 'no-aux')."""
    v = run.get("variant")
    return "full" if _is_missing(v) or not v else str(v)


def group_key(run: Mapping[str, Any]) -> str:
    return f"{run['dataset']}/{run['preset']}/{run['arch']}/p{int(run['patch_size'])}"


def run_key(run: Mapping[str, Any]) -> str:
    variant = run_variant(run)
    method = run["method"] + ("" if variant == "full" else f"-{variant}")
    return f"{run['dataset']}/{run['preset']}/{run['arch']}/{method}/p{int(run['patch_size'])}"


def _records(results: Any) -> List[Dict[str, Any]]:
    rows = results.to_dict("records") if hasattr(results, "to_dict") else [dict(r) for r in results]
    for r in rows:
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise AdabenchError(f"run {r.get('run_dir', '?')} has no {', '.join(missing)} in its summary")
    return rows


def _mean(values: Iterable[Any]) -> Optional[float]:
    vals = [float(v) for v in values if not _is_missing(v)]
    return sum(vals) / len(vals) if vals else None


def mixed_configurations(rows: Sequence[Mapping[str, Any]]) -> Dict[str, List[str]]:
    """{run key: its group hashes} for the keys whose runs come from more than one configuration."""
    hashes: Dict[str, set] = {}
    for r in rows:
        if not _is_missing(r.get("group_hash")):
            hashes.setdefault(run_key(r), set()).add(str(r["group_hash"]))
    return {k: sorted(v) for k, v in sorted(hashes.items()) if len(v) > 1}


def _mixed_text(key: str, hashes: Sequence[str]) -> str:
    return (f"{key}: the runs come from {len(hashes)} configurations (group_hash {', '.join(hashes)}); "
            "they are not averaged: use a runs directory with one configuration")


def _aggregate(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    by_key: Dict[str, List[Mapping[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(run_key(r), []).append(r)
    return {
        k: {
            "top1": _mean(r["top1"] for r in rs),
            "map": _mean(r.get("map") for r in rs),
            "gflops_per_video": _mean(r["gflops_per_video"] for r in rs),
            "train_seconds": _mean(r["train_seconds"] for r in rs),
            "seeds": sorted(int(r["seed"]) for r in rs if not _is_missing(r.get("seed"))),
        }
        for k, rs in sorted(by_key.items())
    }


def _time_ratios(rows: Sequence[Mapping[str, Any]]) -> Dict[str, float]:
    """Mean training seconds of a baseline method over its challenger's, per (dataset, preset, arch, patch),
    for every registered comparison (full variants only); key ``<group>/<baseline>:<method>``."""
    from bench.methods import comparison_pairs

    secs: Dict[Tuple[str, str], List[float]] = {}
    for r in rows:
        if run_variant(r) == "full":
            secs.setdefault((group_key(r), r["method"]), []).append(float(r["train_seconds"]))
    out = {}
    for base, method in comparison_pairs(sorted({r["method"] for r in rows})):
        for g in sorted({g for g, _ in secs}):
            a, b = secs.get((g, base.name)), secs.get((g, method.name))
            if a and b and sum(b) > 0:
                out[f"{g}/{base.name}:{method.name}"] = (sum(a) / len(a)) / (sum(b) / len(b))
    return out


def baseline_methods(baseline: Mapping[str, Any]) -> List[str]:
    """The methods a baseline file has runs of (the gate trains these)."""
    return sorted({key.split("/")[3].split("-")[0] for key in baseline.get("runs", {})})


def make_baseline(results: Any, tolerances: Optional[Mapping[str, float]] = None) -> Dict[str, Any]:
    """A JSON-able baseline from run results (a ``bench.results`` DataFrame or summary dicts)."""
    rows = _records(results)
    if not rows:
        raise AdabenchError("no complete runs to make a baseline from")
    for key, hashes in mixed_configurations(rows).items():
        raise AdabenchError(_mixed_text(key, hashes))
    return {"format": FORMAT, "tolerances": {**DEFAULT_TOLERANCES, **(tolerances or {})},
            "runs": _aggregate(rows), "time_ratios": _time_ratios(rows)}


def load_baseline(path: Union[str, Path]) -> Dict[str, Any]:
    """Read and validate a baseline file; one-line UsageError naming the file otherwise."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"--baseline {p}: no such file") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"--baseline {p}: not readable JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), dict):
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
    bad = next((k for k, v in ratios.items() if not _number(v)), None)
    return None if bad is None else f"time_ratios.{bad} is {json.dumps(ratios[bad])}, expected a number >= 0"


def _line(ok: bool, text: str) -> str:
    return f"{'ok  ' if ok else 'FAIL'} {text}"


def _check_run(key: str, got: Mapping[str, Any], want: Mapping[str, Any], tol: Mapping[str, float]) -> List[str]:
    lines = []
    for metric in ("top1", "map"):
        if _is_missing(want.get(metric)):
            continue
        g = got.get(metric)
        ok = g is not None and abs(g - want[metric]) <= tol["accuracy_abs"] + 1e-12
        shown = "none" if g is None else f"{g:.4f}"
        lines.append(_line(ok, f"{key} {metric}: {shown} vs baseline {want[metric]:.4f} "
                               f"(tolerance ±{tol['accuracy_abs']:g})"))
    g, w = got["gflops_per_video"], want.get("gflops_per_video")
    if not _is_missing(w):
        rel = abs(g - w) / abs(w) if w else abs(g)
        lines.append(_line(rel <= tol["gflops_rel"] + 1e-12,
                           f"{key} GFLOPs/video: {g:.6g} vs baseline {w:.6g} ({100 * rel:.3f}% off, "
                           f"tolerance {100 * tol['gflops_rel']:g}%)"))
    if want.get("seeds") is not None and list(want["seeds"]) != list(got["seeds"]):
        lines.append(f"note {key}: seeds {got['seeds']} vs baseline {list(want['seeds'])}")
    return lines


def compare_to_baseline(
    results: Any, baseline: Mapping[str, Any], tolerances: Optional[Mapping[str, float]] = None
) -> Tuple[bool, List[str]]:
    """(ok, readable diff lines): every baseline entry checked against the results' seed means.

    Tolerances: defaults < the baseline's own ``tolerances`` < ``tolerances`` given here.
    """
    tol = {**DEFAULT_TOLERANCES, **baseline.get("tolerances", {}), **(tolerances or {})}
    rows = _records(results)
    mixed = mixed_configurations(rows)
    rows = [r for r in rows if run_key(r) not in mixed]
    got, ratios = _aggregate(rows), _time_ratios(rows)
    lines: List[str] = []
    for key, want in sorted(baseline["runs"].items()):
        if key in mixed:
            lines.append(_line(False, _mixed_text(key, mixed[key])))
        elif key in got:
            lines += _check_run(key, got[key], want, tol)
        else:
            lines.append(_line(False, f"{key}: no complete run in the results"))
    f = tol["time_ratio_factor"]
    for g, want in sorted(baseline.get("time_ratios", {}).items()):
        r = ratios.get(g)
        ok = r is not None and want / f <= r <= want * f
        shown = "missing (needs runs of both methods)" if r is None else f"{r:.2f}×"
        lines.append(_line(ok, f"{g} training-time ratio: {shown} vs baseline {want:.2f}× "
                               f"(tolerance ×/÷{f:g})"))
    for key in sorted(set(got) - set(baseline["runs"])):
        lines.append(f"note {key}: not in the baseline (not checked)")
    failed = sum(1 for ln in lines if ln.startswith("FAIL"))
    checked = sum(1 for ln in lines if ln.startswith(("ok", "FAIL")))
    lines.append(f"{checked - failed}/{checked} checks within tolerance" + (f", {failed} failed" if failed else ""))
    return failed == 0 and checked > 0, lines
