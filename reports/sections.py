"""Report sections: which runs are compared with each other, how a section is named (in words, never a
hash), and the repeats that are never pooled.

A section starts as one (dataset, preset, arch, setting) group (``reports.frame``: everything but the
method, its own fields and the patch size is equal). Where one method has runs of several configurations
inside it (e.g. V2 with and without ``--set lr=0.5``), the group is split: one section per combination
of those configurations, each named by them (``lr=0.5``, ``lr=0.02 (default)``); a method with one
configuration appears in every such section (its runs are what each of those matched experiments ran).
Two runs of one method, variant, patch size and seed in one configuration are repeats: the first (by run
directory) is kept, the others are left out and named (``drop_repeats``).
"""

from __future__ import annotations

import itertools
import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, cast

import pandas as pd

PREFIXES = ("preset.train.", "preset.", "run.", "manifest.")
MAX_COMBINATIONS = 8  # more: one section per configuration of a method, not every combination
CELL = ("run.method", "preset.method", "preset.patch_size", "run.patch_size")


def field_name(key: str) -> str:
    """An identity key as the option a user knows: ``preset.train.lr`` -> ``lr``."""
    return next((key[len(p) :] for p in PREFIXES if key.startswith(p)), key)


def _text(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)


def words(items: Mapping[str, Any], overrides: Optional[Mapping[str, Any]] = None) -> str:
    """``{"preset.train.lr": 0.5}`` -> ``lr=0.5``; a field not given with ``--set`` is marked ``(default)``
    when ``overrides`` (the run's ``--set`` fields) is known."""
    parts = []
    for k, v in sorted(items.items()):
        name = field_name(k)
        default = overrides is not None and name not in overrides
        parts.append(f"{name}={_text(v)}" + (" (default)" if default else ""))
    return ", ".join(parts)


def overrides_of(row: Mapping[str, Any]) -> Dict[str, Any]:
    """The run's ``--set`` fields (the ``overrides`` column, JSON text or a dict)."""
    v = row.get("overrides")
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return {}
    return dict(v) if isinstance(v, Mapping) else {}


def own_config(identity: Mapping[str, Any], setting: Mapping[str, Any], variant_keys: Sequence[str]) -> Dict:
    """The identity keys that are the method's own (not in the section's ``setting``), without the cell
    (method, patch size) and the ablation switches (``variant_keys``: a variant is shown, not split)."""
    return {
        k: v
        for k, v in identity.items()
        if k not in setting and k not in CELL and field_name(k) not in variant_keys
    }


def _choices(df: pd.DataFrame, variant_keys: Sequence[str]) -> Dict[str, List[Dict[str, Any]]]:
    """{method: its distinct configurations, each as {varying key: value}} for methods with several."""
    out: Dict[str, List[Dict[str, Any]]] = {}
    for method, sub in df.groupby("method"):
        own = [own_config(r["identity"], r["_setting"], variant_keys) for _, r in sub.iterrows()]
        keys = sorted({k for o in own for k in o})
        varying = [k for k in keys if len({_text(o.get(k)) for o in own}) > 1]
        if varying:
            distinct = {json.dumps({k: o.get(k) for k in varying}, sort_keys=True, default=str) for o in own}
            out[str(method)] = [json.loads(d) for d in sorted(distinct)]
    return out


def _matches(row: Mapping[str, Any], choice: Mapping[str, Any], variant_keys: Sequence[str]) -> bool:
    own = own_config(row["identity"], row["_setting"], variant_keys)
    return all(_text(own.get(k)) == _text(v) for k, v in choice.items())


def split(df: pd.DataFrame, setting_of, variant_keys: Sequence[str]) -> List[Tuple[str, pd.DataFrame]]:
    """[(name in words, runs)] of one (dataset, preset, arch, setting) group: one entry when every method
    has one configuration (name ""), else one per combination of the methods' configurations (past
    ``MAX_COMBINATIONS``, one per configuration of a method, without the other methods that have several)."""
    df = df.assign(_setting=[setting_of(i) for i in df["identity"]])
    choices = _choices(df, variant_keys)
    if not choices:
        return [("", df.drop(columns="_setting"))]
    out = []
    methods = sorted(choices)
    combos: List[Dict[str, Optional[Dict[str, Any]]]] = [
        dict(zip(methods, c)) for c in itertools.product(*(choices[m] for m in methods))
    ]
    if (
        len(combos) > MAX_COMBINATIONS
    ):  # e.g. a tuning sweep: each configuration with the single-config methods
        combos = [{m: c, **{o: None for o in methods if o != m}} for m in methods for c in choices[m]]
    for picked in combos:
        keep = [
            r["method"] not in picked
            or (
                picked[r["method"]] is not None
                and _matches(r, cast(Dict[str, Any], picked[r["method"]]), variant_keys)
            )
            for _, r in df.iterrows()
        ]
        sub = df[keep]
        given = {m: c for m, c in picked.items() if c is not None}
        methods = sorted(given)
        names = []
        for m in methods:
            runs = sub[sub["method"] == m]
            names.append(words(given[m], overrides_of(runs.iloc[0]) if len(runs) else None))
        out.append(("; ".join(dict.fromkeys(n for n in names if n)), sub.drop(columns="_setting")))
    return out


def drop_repeats(df: pd.DataFrame, keys: Iterable[str]) -> Tuple[pd.DataFrame, List[Tuple[str, str]]]:
    """``df`` with one run per (``keys``, seed): the first by run directory; and [(kept, left out)]."""
    if df.empty:
        return df, []
    cols = [*keys, "seed"]
    df = df.sort_values([*cols, "run_dir"], na_position="last")
    repeated = df.duplicated(cols, keep="first")
    kept = df[~repeated].set_index(cols)["run_dir"]
    pairs = [
        (str(kept.loc[tuple(r[c] for c in cols)]), str(r["run_dir"])) for _, r in df[repeated].iterrows()
    ]
    return df[~repeated].reset_index(drop=True), pairs
