"""The regime a run trains in: the quantities the scale rule keeps (``bench.scale``), next to the paper's.

``regime_record(preset)`` measures one preset against the paper preset it corresponds to (same method and
architecture, the reference dataset of its variant, the patch side scaled back). It is stored in every run's
summary (``"regime"``) and printed by ``adabench presets``; ``regime_rows`` turns the records of a matched
experiment into table rows, normalising epochs and learning rates across its methods, so that ratios
*between* methods are compared too. A kept quantity more than ``FLAG_OFF`` off the paper's is flagged.

Record layout (every value a ``[value, paper value]`` pair):
- ``kept``: dimensionless quantities (P/S, glance input / S, glance FLOPs / focus FLOPs, ..., and each
  method's own, from its ``Method.regime`` hook);
- ``epochs``: each stage's epochs (compared as a share of the experiment's longest stage);
- ``sgd_lr``: each SGD learning rate per sample, lr ÷ batch (compared as a share of the experiment's largest);
- ``tuned``: values that move only through ``adabench tune`` (shown, never flagged).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from bench.scale import REFERENCE_DATASET, TINY, flops_ratio

FLAG_OFF = 0.10
# patch sides the papers publish results for (adafocus-facts.md §4.1): P/S is compared with the nearest
PUBLISHED_PATCHES = {"frame": (96, 128, 160), "video": (128, 144, 160, 176)}
PAPER_SIDE = 224


def paper_counterpart(preset: Any) -> Any:
    """The paper preset ``preset`` corresponds to: its variant's reference dataset, same method and
    architecture,
    the patch side scaled back to the paper's frame."""
    from bench.presets import get_preset

    side = TINY.side if preset.name == "tiny" else preset.input_size / PAPER_SIDE
    patch = int(round(preset.patch_size / side))
    return get_preset(
        REFERENCE_DATASET[preset.variant],
        "paper",
        method=preset.method,
        arch=preset.arch,
        patch_size=max(1, min(PAPER_SIDE, patch)),
    )


def shared_quantities(p: Any) -> Dict[str, float]:
    """What every method's preset keeps: geometry and the glance's share of the cost."""
    d = p.to_dict()
    out = {
        f"P/S (P={p.patch_size})": p.patch_size / p.input_size,
        "glance input side / S": (p.glance_size or p.input_size) / p.input_size,
        f"glance FLOPs / focus FLOPs (P={p.patch_size})": flops_ratio(d),
    }
    if p.glance_frames:
        out["glance frames / focus frames"] = p.glance_frames / p.frames
    return out


def _nearest_published(p: Any) -> float:
    return min(
        (q / PAPER_SIDE for q in PUBLISHED_PATCHES[p.variant]),
        key=lambda r: abs(r - p.patch_size / p.input_size),
    )


def regime_record(preset: Any) -> Dict[str, Dict[str, List[float]]]:
    """``preset`` against its paper counterpart (layout: module docstring). A quantity the paper preset does
    not
    have gets NaN as its paper value (and is flagged), never its own value."""
    from bench.methods import get_method

    paper = paper_counterpart(preset)
    mine, theirs = (_quantities(p, get_method(preset.method).regime(p)) for p in (preset, paper))
    same_p = (f"P={paper.patch_size})", f"P={preset.patch_size})")  # name P-dependent quantities alike
    record: Dict[str, Dict[str, List[float]]] = {}
    for part, values in mine.items():
        other = {k.replace(*same_p): v for k, v in theirs.get(part, {}).items()}
        record[part] = {k: [v, other.get(k, math.nan)] for k, v in values.items()}
    record["kept"][f"P/S (P={preset.patch_size})"][1] = _nearest_published(preset)
    return record


def _quantities(p: Any, own: Mapping[str, Mapping[str, float]]) -> Dict[str, Dict[str, float]]:
    """The shared quantities of preset ``p`` and its method's own (``own``: its ``Method.regime`` hook's)."""
    return {
        "kept": {**shared_quantities(p), **own.get("kept", {})},
        **{k: dict(own.get(k, {})) for k in ("epochs", "sgd_lr", "tuned")},
    }


def off_fraction(value: float, paper: float) -> float:
    if math.isnan(paper) or math.isnan(value):
        return math.inf
    if paper == 0:
        return 0.0 if value == 0 else math.inf
    return abs(value / paper - 1)


def regime_rows(
    records: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
) -> List[Tuple[str, float, float, bool]]:
    """(quantity, value, paper value, flagged) rows for the records of one experiment ({label: record}, e.g.
    {"AdaFocusV1": ..., "AdaFocusV2": ...}); the first method's shared quantities are listed once."""
    rows: List[Tuple[str, float, float, bool]] = []
    seen = set()
    for label, rec in records.items():
        for k, (v, pv) in rec.get("kept", {}).items():
            name = k if k.startswith(("P/S", "glance")) else f"{label} {k}"
            if name not in seen:
                seen.add(name)
                rows.append((name, v, pv, off_fraction(v, pv) > FLAG_OFF))
    for part, what in (
        ("epochs", "epochs ÷ the longest stage"),
        ("sgd_lr", "SGD lr per sample ÷ the largest"),
    ):
        items = [
            (f"{label} {k}", v, pv)
            for label, rec in records.items()
            for k, (v, pv) in rec.get(part, {}).items()
        ]
        top, ptop = max((v for _, v, _ in items), default=0), max((pv for _, _, pv in items), default=0)
        for name, v, pv in items:
            a, b = (v / top if top else 0.0), (pv / ptop if ptop else 0.0)
            rows.append((f"{name} {what}", a, b, off_fraction(a, b) > FLAG_OFF))
    for label, rec in records.items():
        for k, (v, pv) in rec.get("tuned", {}).items():
            rows.append((f"{label} {k} (tuned: not kept)", v, pv, False))
    return rows


def quantities_off(records: Mapping[str, Mapping[str, Any]], tol: float = FLAG_OFF) -> List[str]:
    """The kept quantities more than ``tol`` off the paper's, each as "name: value vs paper"."""
    return [
        f"{name}: {v:.4g} vs paper {pv:.4g}"
        for name, v, pv, _ in regime_rows(records)
        if "(tuned" not in name and off_fraction(v, pv) > tol
    ]


def experiment_records(
    dataset: str, preset: str, methods: Sequence[str], patch_sizes: Sequence[Any] = (None,), **overrides: Any
) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """{method title: record merged over ``patch_sizes``} of a matched experiment (``adabench presets``); each
    override goes to the methods that have the field (as ``plan_runs`` does)."""
    from bench.methods import title
    from bench.presets import get_preset, preset_keys

    arch = overrides.pop("arch", "matched")
    records: Dict[str, Dict[str, Dict[str, Any]]] = {}
    for m in methods:
        keys = set(preset_keys(dataset, preset, m, arch))
        own = {k: v for k, v in overrides.items() if k in keys}
        for p in patch_sizes:
            sets = dict(own, arch=arch, **({"patch_size": p} if p else {}))
            merged = records.setdefault(title(m), {})
            for part, values in regime_record(get_preset(dataset, preset, method=m, **sets)).items():
                merged.setdefault(part, {}).update(values)
    return records
