"""``adabench tune``: one symmetric hyper-parameter sweep for every method, scored on a held-out part of the
training split, never on the validation split.

Procedure (the same for every method; nothing here knows a method by name):

1. Each method declares the fields of its hyper-parameters that are tuned (``Method.tunable``). Its grid is
   the preset's value of each field times each factor (``FACTORS``: 1/4, 1/2, 1, 2, 4), the product over
   its fields. Every tuned method must get a grid of the same size (refused otherwise).
2. Every candidate of every method trains with the same preset, ``--epochs``, ``--set`` overrides, data and
   seeds, through the ordinary runner (``bench.runs.runner.run_all``): one run directory per (candidate,
   seed), in a runs directory of its own, resumable. All runs of one seed start from one shared initial state
   (as in a matched experiment), so the candidates are paired by seed.
3. Each run trains on the training split minus a held-out part (``RunConfig.holdout``: stratified by
   class, a fixed split, the same for every run) and is evaluated on that part instead of val.
4. A candidate's score is its learned-policy top-1 on the held-out part (mAP on multi-label datasets), mean
   over seeds. The winner of a method has the highest mean; ties go to the factor closest to 1 (the preset's
   value), then to the smaller value. A winner at the edge of the grid is flagged (the optimum may lie
   beyond it).

Why factors of 2 over 1/4..4: learning rates act multiplicatively, so the grid is geometric; a step of 2
finds the optimum to within a factor of sqrt(2), finer than the seed spread of tiny runs can resolve;
+-4x spans the range between the published values and the CPU presets (V1's tiny policy lr is 6.7x its
paper's). Five points per method keeps a 3-seed sweep of two methods at 30 tiny runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from bench import io
from bench.errors import UsageError
from bench.runs.config import RunConfig

FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
SEEDS = (0, 1, 2)
HOLDOUT = 0.2  # as large as the synthetic val split while keeping 80 % of the training videos
RUNS_DIR = "runs-tune"
FORMAT = "adabench-tuning/1"


@dataclass(frozen=True)
class TuneSpec:
    """What to sweep: ``base`` carries dataset, data root, preset, arch, epochs, ``--set`` overrides,
    device, workers and the runs directory; ``data_root_given``: the user named the root (for the command)."""

    base: RunConfig
    methods: Tuple[str, ...]
    seeds: Tuple[int, ...] = SEEDS
    factors: Tuple[float, ...] = FACTORS
    holdout: float = HOLDOUT
    data_root_given: bool = False


@dataclass(frozen=True)
class Candidate:
    method: str
    factors: Tuple[float, ...]  # one per tunable field
    values: Tuple[Tuple[str, float], ...]  # (field, value)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in self.values)


def tuned_methods(names: Sequence[str] = ()) -> List[str]:
    """``names`` (each must declare tunable fields), or every registered method that declares some."""
    from bench.methods import get_method, method_names

    if not names:
        names = [n for n in method_names() if get_method(n).tunable]
    for n in names:
        if not get_method(n).tunable:
            raise UsageError(f"--method {n}: it declares no tunable hyper-parameters (Method.tunable)")
    if not names:
        raise UsageError("no registered method declares tunable hyper-parameters")
    return list(dict.fromkeys(names))


def _round(v: float) -> float:
    return float(f"{v:.6g}")  # 2e-3 * 0.25 is 0.0005, not 0.0005000000000000001, in names and tables


def method_configs(spec: TuneSpec) -> Dict[str, RunConfig]:
    """Each method's resolved base configuration (its share of the ``--set`` overrides validated)."""
    from bench.runs.experiment import plan_runs

    if not spec.factors or any(f <= 0 for f in spec.factors):
        raise UsageError("--factor: expected positive multipliers of the preset's value")
    plans = plan_runs(spec.base, spec.methods, seeds=[spec.seeds[0]])
    return {cfg.method: dataclasses.replace(cfg, init_state=None, holdout=spec.holdout) for cfg in plans}


def grid(cfg: RunConfig, factors: Sequence[float]) -> List[Candidate]:
    """Every candidate of ``cfg.method``: its tunable fields' preset values times ``factors`` (product)."""
    from bench.methods import get_method

    fields = get_method(cfg.method).tunable
    train = cfg.resolve_preset().train
    defaults = {}
    for f in fields:
        v = getattr(train, f, None)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v == 0:
            raise UsageError(f"{cfg.method}: tunable field {f}={v!r} is not a non-zero number to scale")
        defaults[f] = float(v)
    out = []
    for combo in itertools.product(sorted(set(factors)), repeat=len(fields)):
        out.append(
            Candidate(
                cfg.method, tuple(combo), tuple((f, _round(defaults[f] * k)) for f, k in zip(fields, combo))
            )
        )
    return out


def plan_tuning(
    spec: TuneSpec, bases: Optional[Dict[str, RunConfig]] = None
) -> List[Tuple[Candidate, RunConfig]]:
    """(candidate, run) for every seed x candidate x method, methods innermost (an interrupted sweep leaves
    comparable runs behind); one shared initial state per seed."""
    from bench.runs.experiment import init_state_path

    bases = bases or method_configs(spec)
    grids = {m: grid(cfg, spec.factors) for m, cfg in bases.items()}
    sizes = {m: len(g) for m, g in grids.items()}
    if len(set(sizes.values())) > 1:
        raise UsageError(
            "the methods' grids differ in size ("
            + ", ".join(f"{m}: {n}" for m, n in sizes.items())
            + "); a symmetric sweep needs the same number of tunable fields per method"
        )
    plans = []
    for seed in dict.fromkeys(spec.seeds):
        for i in range(len(next(iter(grids.values())))):
            for m in spec.methods:
                cand = grids[m][i]
                cfg = dataclasses.replace(
                    bases[m], seed=seed, overrides={**bases[m].overrides, **dict(cand.values)}
                )
                cfg.init_state = str(init_state_path(cfg))
                cfg.resolve_preset()
                plans.append((cand, cfg))
    return plans


def score_of(summary: Dict[str, Any]) -> Tuple[str, float]:
    """(metric, value) a run is scored by: mAP when the dataset is multi-label, else top-1 (learned
    policy)."""
    if summary.get("map") is not None:
        return "map", float(summary["map"])
    return "top1", float(summary["top1"])


def _stats(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return mean, sd


def _rows(done: List[Tuple[Candidate, Dict[str, Any]]]) -> List[Dict[str, Any]]:
    by: Dict[Candidate, List[Dict[str, Any]]] = {}
    for cand, summary in done:
        by.setdefault(cand, []).append(summary)
    rows = []
    for cand, sums in by.items():
        scores = [score_of(s)[1] for s in sums]
        mean, sd = _stats(scores)
        patch = {k: _stats([s["patch_eval"][k] for s in sums])[0] for k in ("random", "centre")}
        rows.append(
            {
                "method": cand.method,
                "candidate": cand.label,
                "factors": list(cand.factors),
                "values": dict(cand.values),
                "seeds": [int(s["seed"]) for s in sums],
                "scores": scores,
                "mean": mean,
                "std": sd,
                "random_top1": patch["random"],
                "centre_top1": patch["centre"],
                "winner": False,
                "run_dirs": [s.get("run_dir") for s in sums],
            }
        )
    return rows


def pick_winners(rows: List[Dict[str, Any]], factors: Sequence[float]) -> Dict[str, Dict[str, Any]]:
    """Marks and returns each method's winner (see the module docstring for ties and edges)."""
    edge = (min(factors), max(factors))
    winners = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == m]
        best = min(
            mine,
            key=lambda r: (
                -round(r["mean"], 12),
                sum(abs(math.log(f)) for f in r["factors"]),
                tuple(r["values"].values()),
            ),
        )
        best["winner"] = True
        winners[m] = {
            "values": best["values"],
            "factors": best["factors"],
            "score": best["mean"],
            "at_edge": any(f in edge for f in best["factors"]) and len(set(factors)) > 1,
        }
    return winners


def _manifest(done: List[Tuple[Candidate, Dict[str, Any]]]) -> Dict[str, Any]:
    """The first run's manifest.json: the held-out split and the code version the sweep ran."""
    run_dir = done[0][1].get("run_dir")
    return dict(io.read_json(Path(run_dir) / "manifest.json")) if run_dir else {}


def tuning_command(spec: TuneSpec, out: str) -> str:
    """The command line that reproduces the sweep (resumes it when its runs directory exists)."""
    b = spec.base
    parts = ["adabench tune"] + [f"--method {m}" for m in spec.methods] + [f"--dataset {b.dataset}"]
    if spec.data_root_given and b.data_root:
        parts.append(f"--data-root {shlex.quote(str(b.data_root))}")
    parts += [f"--preset {b.preset}", f"--arch {b.arch}"] + [f"--seed {s}" for s in spec.seeds]
    parts += [f"--factor {f:g}" for f in spec.factors] + [f"--holdout {spec.holdout:g}"]
    if b.epochs is not None:
        parts.append(f"--epochs {b.epochs}")
    parts += [f"--set {shlex.quote(f'{k}={v}')}" for k, v in b.overrides.items()]
    parts += [f"--runs-dir {shlex.quote(str(b.runs_dir))}", f"--out {shlex.quote(str(out))}"]
    return " ".join(parts)


def run_tuning(spec: TuneSpec, out: str, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Train (or resume, or reuse) every planned run, score it, and return the tuning record (JSON-able)."""
    from bench.methods import get_method
    from bench.runs.runner import run_all

    bases = method_configs(spec)
    plans = plan_tuning(spec, bases)
    echo(
        f"tune: {len(plans)} runs: "
        + "; ".join(
            f"{m} {', '.join(c.label for c in dict.fromkeys(c for c, cfg in plans if c.method == m))}"
            for m in spec.methods
        )
        + f"; seeds {', '.join(map(str, dict.fromkeys(spec.seeds)))}"
    )
    done = list(zip([c for c, _ in plans], run_all([cfg for _, cfg in plans], echo)))
    order = {m: i for i, m in enumerate(spec.methods)}
    rows = sorted(_rows(done), key=lambda r: (order[r["method"]], r["factors"]))
    winners = pick_winners(rows, spec.factors)
    first, manifest = plans[0][1], _manifest(done)
    preset = first.resolve_preset()
    methods = {}
    for m, cfg in bases.items():
        train, fields = cfg.resolve_preset().train, get_method(m).tunable
        methods[m] = {
            "title": get_method(m).title,
            "tunable": list(fields),
            "defaults": {f: getattr(train, f) for f in fields},
            "winner": winners[m],
        }
    return {
        "format": FORMAT,
        "dataset": first.dataset,
        "preset": first.preset,
        "arch": first.arch,
        "variant": preset.variant,
        "patch_size": preset.patch_size,
        "epochs": spec.base.epochs,
        "overrides": dict(spec.base.overrides),
        "seeds": list(dict.fromkeys(spec.seeds)),
        "factors": sorted(set(spec.factors)),
        "holdout": dict(manifest.get("holdout") or {}),
        "metric": score_of(done[0][1])[0],
        "command": tuning_command(spec, out),
        "git_commit": manifest.get("git_commit"),
        "git_dirty": manifest.get("git_dirty"),
        "methods": methods,
        "candidates": rows,
    }


def load_tuning(path: Any) -> Dict[str, Any]:
    data = io.read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path}: expected an adabench tuning record (format '{FORMAT}')")
    return data


def find_tunings(directory: Any) -> List[Dict[str, Any]]:
    """Every readable tuning record (``tuning.json``) under ``directory`` (none when it does not exist)."""
    root = Path(directory)
    out = []
    for p in sorted(root.rglob("tuning.json")) if root.is_dir() else []:
        try:
            out.append({**load_tuning(p), "path": str(p)})
        except UsageError:
            continue
    return out
