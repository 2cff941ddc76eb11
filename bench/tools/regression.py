"""The regression gate: a baseline made from >= 3 seeds, with tolerances derived from their spread, and the
comparison of fresh runs against it (pure functions, except ``gate_configs`` which plans the runs).

A baseline (``make_baseline``) holds, per run key ``<dataset>/<preset>/<arch>/<method>[-<variant>]/p<patch>``,
the mean over seeds of top-1 (and mAP), GFLOPs per video and training seconds, the per-seed values, and how to
re-run them (``experiment``: method, overrides, epochs, shared initial state); per
``<dataset>/<preset>/<arch>/p<patch>/<baseline>:<method>`` the training-time ratio of each method to the
method its claims compare against (``bench.methods``), the geometric mean of the per-seed ratios.

Tolerances (``derivation`` in the file records the formula, alpha and floors; each entry its numbers):

- accuracy: ``max(floor, k * sd * sqrt(2 / n))`` with sd the seeds' sample standard deviation, n the
  seeds and ``k = t(1 - alpha/2, n - 1)`` (Student t, alpha = 0.01). The gate re-runs the same n seeds;
  treating that as a fresh draw, the difference of the two means has sd ``sd * sqrt(2 / n)``, and the t
  quantile accounts for sd itself being estimated from n seeds, so an unchanged method fails a check
  with probability <= alpha (less when the same seeds re-run). The floor (2 points) keeps the tolerance
  from collapsing when the seeds happen to agree. With 3 seeds k = 9.92; with 5, 4.60: more seeds give a
  much tighter gate.
- training-time ratio: a factor ``max(floor, exp(k * sd(ln r) * sqrt(2 / n)))`` over the per-seed ratios
  r, floor 2 (timings on shared machines also move together, which the spread on one machine misses).
- GFLOPs: within a relative 0.1 % (deterministic: a change means the network changed).

Format 1 baselines (one seed, fixed tolerances) are still read. Baseline runs missing from the results
fail; results without a baseline entry are only noted. Runs of one key from several configurations
(``group_hash``) are never averaged: ``make_baseline`` refuses and ``compare_to_baseline`` fails that key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from bench.errors import AdabenchError, UsageError
from bench.stats import t_quantile
from bench.tools.baseline_file import DEFAULT_TOLERANCES, FORMAT

MIN_SEEDS = 3
ALPHA = 0.01
ACCURACY_FLOOR = 0.02
TIME_FACTOR_FLOOR = 2.0
REQUIRED = ("method", "dataset", "preset", "arch", "patch_size", "top1", "gflops_per_video", "train_seconds")
ACCURACY = ("top1", "map")
DERIVATION = {
    "accuracy": "tolerance = max(floor, k * sd * sqrt(2 / n)), k = t(1 - alpha / 2, n - 1)",
    "time_ratio": "factor = max(floor, exp(k * sd(ln per-seed ratio) * sqrt(2 / n))), k as above",
    "why": "the gate re-runs the baseline's n seeds; as a fresh draw, the difference of two n-seed means has "
    "sd * sqrt(2 / n); the t quantile with n - 1 degrees of freedom covers sd being estimated from n "
    "seeds, so an unchanged method fails a check with probability <= alpha",
}


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
    """The trained runs (evaluated checkpoints, ``adabench evaluate``, are not what the gate trains)."""
    rows = results.to_dict("records") if hasattr(results, "to_dict") else [dict(r) for r in results]
    rows = [r for r in rows if r.get("kind") != "evaluated"]
    for r in rows:
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise AdabenchError(f"run {r.get('run_dir', '?')} has no {', '.join(missing)} in its summary")
    return rows


def _mean(values: Iterable[Any]) -> Optional[float]:
    vals = [float(v) for v in values if not _is_missing(v)]
    return sum(vals) / len(vals) if vals else None


def _sd(values: Sequence[float]) -> float:
    if len(values) < 2 or max(values) == min(values):
        return 0.0  # equal values: exactly 0, not rounding noise
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def mixed_configurations(rows: Sequence[Mapping[str, Any]]) -> Dict[str, List[str]]:
    """{run key: its group hashes} for the keys whose runs come from more than one configuration."""
    hashes: Dict[str, set] = {}
    for r in rows:
        if not _is_missing(r.get("group_hash")):
            hashes.setdefault(run_key(r), set()).add(str(r["group_hash"]))
    return {k: sorted(v) for k, v in sorted(hashes.items()) if len(v) > 1}


def _mixed_text(key: str, hashes: Sequence[str]) -> str:
    return (
        f"{key}: the runs come from {len(hashes)} configurations (group_hash {', '.join(hashes)}); "
        "they are not averaged: use a runs directory with one configuration"
    )


def _by_seed(rows: Sequence[Mapping[str, Any]], col: str) -> Dict[int, float]:
    """{seed: value} (a seed run twice is averaged), missing values left out."""
    acc: Dict[int, List[float]] = {}
    for r in rows:
        if not _is_missing(r.get(col)) and not _is_missing(r.get("seed")):
            acc.setdefault(int(r["seed"]), []).append(float(r[col]))
    return {s: sum(v) / len(v) for s, v in sorted(acc.items())}


def accuracy_tolerance(
    values: Sequence[float], alpha: float = ALPHA, floor: float = ACCURACY_FLOOR
) -> Dict[str, Any]:
    n, sd = len(values), _sd(values)
    k = t_quantile(1 - alpha, n - 1)
    return {"value": max(floor, k * sd * math.sqrt(2 / n)), "sd": sd, "n": n, "k": k, "floor": floor}


def ratio_factor(
    ratios: Sequence[float], alpha: float = ALPHA, floor: float = TIME_FACTOR_FLOOR
) -> Dict[str, Any]:
    logs = [math.log(r) for r in ratios]
    n, sd = len(logs), _sd(logs)
    k = t_quantile(1 - alpha, n - 1) if n > 1 else math.inf
    derived = math.exp(k * sd * math.sqrt(2 / n)) if sd > 0 else 1.0
    return {"value": max(floor, derived), "log_sd": sd, "n": n, "k": k, "floor": floor}


def _aggregate(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    by_key: Dict[str, List[Mapping[str, Any]]] = {}
    for r in rows:
        by_key.setdefault(run_key(r), []).append(r)
    out = {}
    for k, rs in sorted(by_key.items()):
        per_seed = {m: _by_seed(rs, m) for m in ACCURACY}
        out[k] = {
            "top1": _mean(r["top1"] for r in rs),
            "map": _mean(r.get("map") for r in rs),
            "gflops_per_video": _mean(r["gflops_per_video"] for r in rs),
            "train_seconds": _mean(r["train_seconds"] for r in rs),
            "seeds": sorted(int(r["seed"]) for r in rs if not _is_missing(r.get("seed"))),
            "per_seed": {m: list(v.values()) if v else None for m, v in per_seed.items()},
        }
    return out


def _time_ratios(rows: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Per (dataset, preset, arch, patch) and registered comparison (full variants only), key
    ``<group>/<baseline>:<method>``: the baseline method's training seconds over its challenger's, per seed
    run by both, and their geometric mean."""
    from bench.methods import comparison_pairs

    cells: Dict[Tuple[str, str], List[Mapping[str, Any]]] = {}
    for r in rows:
        if run_variant(r) == "full":
            cells.setdefault((group_key(r), r["method"]), []).append(r)
    out = {}
    for base, method in comparison_pairs(sorted({r["method"] for r in rows})):
        for g in sorted({g for g, _ in cells}):
            a, b = (
                _by_seed(cells.get((g, base.name), []), "train_seconds"),
                _by_seed(cells.get((g, method.name), []), "train_seconds"),
            )
            seeds = [s for s in a if s in b and b[s] > 0 and a[s] > 0]
            if seeds:
                ratios = [a[s] / b[s] for s in seeds]
                out[f"{g}/{base.name}:{method.name}"] = {
                    "ratio": math.exp(sum(map(math.log, ratios)) / len(ratios)),
                    "per_seed": ratios,
                    "seeds": seeds,
                }
    return out


def _run_files(run_dir: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(config.yaml run section, manifest.json) of a run directory; empty when unreadable."""
    from bench import io

    out: List[Any] = []
    if _is_missing(run_dir) or not str(run_dir):
        return {}, {}
    for name, reader in (("config.yaml", io.read_yaml), ("manifest.json", io.read_json)):
        try:
            data = reader(Path(str(run_dir)) / name)
        except (UsageError, TypeError):
            data = None
        out.append(data if isinstance(data, dict) else {})
    return dict(out[0].get("run") or {}), out[1]


def _precision(row: Mapping[str, Any]) -> str:
    """The precision the baseline's runs computed in (the results table reads it from the manifest or the
    config; re-trained in the same one, since bf16 trajectories differ from fp32 ones); older runs: fp32."""
    value = row.get("precision")
    return value if isinstance(value, str) and value not in ("", "auto") else "fp32"


def _recipe(rs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """How the gate re-runs a key: method, patch, epochs, overrides, precision, and the shared initial
    state."""
    r = rs[0]
    run, manifest = _run_files(r.get("run_dir"))
    overrides = r.get("overrides")
    overrides = json.loads(overrides) if isinstance(overrides, str) else dict(overrides or {})
    return {
        "method": r["method"],
        "dataset": r["dataset"],
        "preset": r["preset"],
        "arch": r["arch"],
        "patch_size": int(r["patch_size"]),
        "epochs": None if _is_missing(r.get("epochs")) else int(r["epochs"]),
        "overrides": overrides,
        "precision": _precision(r),
        "shared_init": run.get("init_state") is not None,
        "creates_init": bool((manifest.get("initial_state") or {}).get("created")),
    }


def make_baseline(
    results: Any,
    tolerances: Optional[Mapping[str, float]] = None,
    *,
    alpha: float = ALPHA,
    min_seeds: int = MIN_SEEDS,
) -> Dict[str, Any]:
    """A JSON-able baseline from run results (a ``bench.runs.results`` DataFrame or summary dicts) of at least
    ``min_seeds`` seeds per key. ``tolerances`` may set the floors (``accuracy_abs``,
    ``time_ratio_factor``)."""
    rows = _records(results)
    if not rows:
        raise AdabenchError("no complete runs to make a baseline from")
    for key, hashes in mixed_configurations(rows).items():
        raise AdabenchError(_mixed_text(key, hashes))
    tol = dict(tolerances or {})
    acc_floor, time_floor = (
        tol.get("accuracy_abs", ACCURACY_FLOOR),
        tol.get("time_ratio_factor", TIME_FACTOR_FLOOR),
    )
    runs = _aggregate(rows)
    for key, entry in runs.items():
        seeds = sorted(set(entry["seeds"]))
        if len(seeds) < min_seeds:
            raise AdabenchError(
                f"{key}: {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); a baseline needs "
                f">= {min_seeds} to measure the seed spread (e.g. --seed 0 --seed 1 --seed 2)"
            )
        entry["tolerance"] = {
            m: accuracy_tolerance(v, alpha, acc_floor) for m, v in entry["per_seed"].items() if v
        }
        entry["recipe"] = _recipe([r for r in rows if run_key(r) == key])
    ratios = _time_ratios(rows)
    for entry in ratios.values():
        entry["factor"] = ratio_factor(entry["per_seed"], alpha, time_floor)
    return {
        "format": FORMAT,
        "tolerances": {"gflops_rel": DEFAULT_TOLERANCES["gflops_rel"]},
        "derivation": {
            **DERIVATION,
            "alpha": alpha,
            "accuracy_floor": acc_floor,
            "time_ratio_floor": time_floor,
        },
        "seeds": sorted({s for e in runs.values() for s in e["seeds"]}),
        "runs": runs,
        "time_ratios": ratios,
    }


def _line(ok: bool, text: str) -> str:
    return f"{'ok  ' if ok else 'FAIL'} {text}"


def _tolerance_for(want: Mapping[str, Any], metric: str, tol: Mapping[str, Any]) -> Tuple[float, str]:
    """(tolerance, how it was derived) for one accuracy check."""
    d = (want.get("tolerance") or {}).get(metric)
    if "accuracy_abs" in tol or not d:
        value = tol.get("accuracy_abs", DEFAULT_TOLERANCES["accuracy_abs"])
        return value, f"±{value:g}"
    return d["value"], (
        f"±{d['value']:.4f} = max({d['floor']:g}, {d['k']:.2f} × sd {d['sd']:.4f} × √(2/{d['n']}))"
    )


def _check_run(
    key: str, got: Mapping[str, Any], want: Mapping[str, Any], tol: Mapping[str, Any], gflops_rel: float
) -> List[str]:
    lines = []
    for metric in ACCURACY:
        if _is_missing(want.get(metric)):
            continue
        g = got.get(metric)
        t, how = _tolerance_for(want, metric, tol)
        ok = g is not None and abs(g - want[metric]) <= t + 1e-12
        shown = "none" if g is None else f"{g:.4f}"
        lines.append(_line(ok, f"{key} {metric}: {shown} vs baseline {want[metric]:.4f} (tolerance {how})"))
    g, w = got["gflops_per_video"], want.get("gflops_per_video")
    if not _is_missing(w):
        rel = abs(g - w) / abs(w) if w else abs(g)
        lines.append(
            _line(
                rel <= gflops_rel + 1e-12,
                f"{key} GFLOPs/video: {g:.6g} vs baseline {w:.6g} "
                f"({100 * rel:.3f}% off, tolerance {100 * gflops_rel:g}%)",
            )
        )
    if want.get("seeds") is not None and list(want["seeds"]) != list(got["seeds"]):
        lines.append(f"note {key}: seeds {got['seeds']} vs baseline {list(want['seeds'])}")
    return lines


def _check_ratio(key: str, got: Optional[Mapping[str, Any]], want: Any, tol: Mapping[str, Any]) -> str:
    ratio = want["ratio"] if isinstance(want, Mapping) else float(want)
    if "time_ratio_factor" in tol or not isinstance(want, Mapping):
        f = tol.get("time_ratio_factor", DEFAULT_TOLERANCES["time_ratio_factor"])
        how = f"×/÷{f:g}"
    else:
        d = want["factor"]
        f = d["value"]
        how = f"×/÷{f:.2f} = max({d['floor']:g}, exp({d['k']:.2f} × sd {d['log_sd']:.3f} × √(2/{d['n']})))"
    r = None if got is None else got["ratio"]
    ok = r is not None and ratio / f <= r <= ratio * f
    shown = "missing (needs runs of both methods)" if r is None else f"{r:.2f}×"
    return _line(ok, f"{key} training-time ratio: {shown} vs baseline {ratio:.2f}× (tolerance {how})")


def compare_to_baseline(
    results: Any, baseline: Mapping[str, Any], tolerances: Optional[Mapping[str, float]] = None
) -> Tuple[bool, List[str]]:
    """(ok, readable diff lines): every baseline entry checked against the results' seed means.

    Tolerances: ``tolerances`` given here (``accuracy_abs``, ``gflops_rel``, ``time_ratio_factor``) replace
    the baseline's derived ones; a format 1 baseline's fixed ones apply otherwise.
    """
    legacy = baseline.get("format") != FORMAT
    tol = {**(DEFAULT_TOLERANCES if legacy else {}), **baseline.get("tolerances", {}), **(tolerances or {})}
    gflops_rel = tol.pop("gflops_rel", DEFAULT_TOLERANCES["gflops_rel"])
    rows = _records(results)
    mixed = mixed_configurations(rows)
    rows = [r for r in rows if run_key(r) not in mixed]
    got, ratios = _aggregate(rows), _time_ratios(rows)
    lines: List[str] = []
    for key, want in sorted(baseline["runs"].items()):
        if key in mixed:
            lines.append(_line(False, _mixed_text(key, mixed[key])))
        elif key in got:
            lines += _check_run(key, got[key], want, tol, gflops_rel)
        else:
            lines.append(_line(False, f"{key}: no complete run in the results"))
    for key, want in sorted(baseline.get("time_ratios", {}).items()):
        got_ratio = ratios.get(key)
        if ":" not in key:  # format 1 keys name the group only (one comparison per group)
            got_ratio = next((v for k, v in sorted(ratios.items()) if k.startswith(key + "/")), None)
        lines.append(_check_ratio(key, got_ratio, want, tol))
    for key in sorted(set(got) - set(baseline["runs"])):
        lines.append(f"note {key}: not in the baseline (not checked)")
    failed = sum(1 for ln in lines if ln.startswith("FAIL"))
    checked = sum(1 for ln in lines if ln.startswith(("ok", "FAIL")))
    lines.append(
        f"{checked - failed}/{checked} checks within tolerance" + (f", {failed} failed" if failed else "")
    )
    return failed == 0 and checked > 0, lines
