"""The tuning sweep's tables (``tuning.md``, ``tuning.csv``, ``tuning.json``) and the report's paragraph
saying which hyper-parameters were tuned and how (``bench.tools.tune`` runs the sweep).

The committed records live in ``docs/tuning/<dataset>/`` (``TUNING_DIR``); the report matches a section
to the record of its dataset, preset and architecture and says whether its runs use the winners.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pandas as pd

from bench.io import atomic_write_json, atomic_write_text
from bench.methods import get_method, method_names, title
from bench.tools.tune import find_tunings
from reports.tables import markdown_table

TUNING_DIR = Path(__file__).resolve().parents[1] / "docs" / "tuning"


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


METRIC_NAMES = {"top1": "top-1", "map": "mAP"}


def _factors(f: Sequence[float]) -> str:
    return ", ".join(f"{x:g}" for x in f)


def procedure_text(rec: Mapping[str, Any]) -> str:
    """What was swept and how, in one paragraph."""
    h = rec.get("holdout") or {}
    sizes = (
        f": {h['train_videos']} training / {h['holdout_videos']} held-out videos"
        if "train_videos" in h
        else ""
    )
    fields = "; ".join(f"{m['title']} {', '.join(m['tunable'])}" for m in rec["methods"].values())
    n = len(rec["candidates"]) // max(1, len(rec["methods"]))
    epochs = "the preset's epochs" if rec.get("epochs") is None else f"`--epochs {rec['epochs']}`"
    metric = METRIC_NAMES.get(rec["metric"], rec["metric"])
    return (
        f"Tuned symmetrically with `adabench tune` ({fields}): each method's tunable hyper-parameters over "
        f"the "
        f"same grid, the preset's value at the time × {{{_factors(rec['factors'])}}} ({n} candidates per "
        f"method), "
        f"with the same budget ({epochs}, seeds {', '.join(map(str, rec['seeds']))}, the same `--set` "
        f"overrides and "
        f"one shared initial state per seed). Every run trained on the training split minus a held-out "
        f"{100 * float(h.get('fraction', 0)):g} % (stratified by class, fixed split seed {h.get('seed', 0)}"
        f"{sizes}) and was scored by its learned-policy {metric} on the held-out videos; the validation "
        f"split "
        f"was not used. Winner: the highest mean over seeds (ties: the factor closest to 1)."
    )


def winners_text(rec: Mapping[str, Any]) -> str:
    parts = []
    for m in rec["methods"].values():
        w = m["winner"]
        vals = ", ".join(f"{k} = {v:g} (×{f:g})" for (k, v), f in zip(w["values"].items(), w["factors"]))
        parts.append(
            f"{m['title']} {vals}"
            + (" — at the edge of the grid: the optimum may lie beyond it" if w["at_edge"] else "")
        )
    return "; ".join(parts)


def tuning_markdown(rec: Mapping[str, Any]) -> str:
    metric = METRIC_NAMES.get(rec["metric"], rec["metric"])
    rows = [
        [
            title(r["method"]),
            r["candidate"],
            "×" + "·".join(f"{f:g}" for f in r["factors"]),
            f"{_pct(r['mean'])} ± {_pct(r['std'])}",
            " / ".join(_pct(s) for s in r["scores"]),
            _pct(r["random_top1"]),
            _pct(r["centre_top1"]),
            "**winner**" if r["winner"] else "",
        ]
        for r in rec["candidates"]
    ]
    headers = [
        "method",
        "candidate",
        "of preset",
        f"held-out {metric} % (mean ± sd)",
        f"per seed ({', '.join(map(str, rec['seeds']))})",
        "random patches",
        "centre patches",
        "",
    ]
    return "\n".join(
        [
            f"# Hyper-parameter tuning: {rec['dataset']} · {rec['preset']} preset · {rec['arch']} "
            f"architecture\n",
            procedure_text(rec) + "\n",
            markdown_table(headers, rows),
            f"**Winners:** {winners_text(rec)}.\n",
            f"Reproduce at commit `{rec.get('git_commit') or 'unknown'}`"
            + (" (with uncommitted changes)" if rec.get("git_dirty") else "")
            + " (later commits may have moved the preset values the grid is centred on); re-running resumes "
            "from the runs directory:\n",
            f"```bash\n{rec['command']}\n```\n",
        ]
    )


def tuning_frame(rec: Mapping[str, Any]) -> pd.DataFrame:
    rows = []
    for r in rec["candidates"]:
        rows.append(
            {
                "method": r["method"],
                "candidate": r["candidate"],
                **r["values"],
                "factors": json.dumps(r["factors"]),
                "seeds": json.dumps(r["seeds"]),
                "scores": json.dumps(r["scores"]),
                "mean": r["mean"],
                "std": r["std"],
                "random_top1": r["random_top1"],
                "centre_top1": r["centre_top1"],
                "winner": r["winner"],
                "metric": rec["metric"],
            }
        )
    return pd.DataFrame(rows)


def write_tuning(rec: Mapping[str, Any], out_dir: Any) -> List[Path]:
    """``tuning.json`` (the record), ``tuning.md`` and ``tuning.csv`` in ``out_dir``."""
    out = Path(out_dir)
    return [
        atomic_write_json(out / "tuning.json", rec),
        atomic_write_text(out / "tuning.md", tuning_markdown(rec)),
        atomic_write_text(out / "tuning.csv", tuning_frame(rec).to_csv(index=False)),
    ]


def _run_params(df: pd.DataFrame, method: str) -> List[Dict[str, Any]]:
    out = []
    for ident in df.loc[df["method"] == method, "identity"]:
        ident = json.loads(ident) if isinstance(ident, str) else ident
        if not isinstance(ident, Mapping):
            continue
        train = ident.get("preset.train") or {
            k[len("preset.train.") :]: v for k, v in ident.items() if k.startswith("preset.train.")
        }
        if isinstance(train, dict) and train:
            out.append(train)
    return out


def _uses(df: pd.DataFrame, rec: Mapping[str, Any]) -> str:
    """Whether the section's runs use each method's winning values."""
    parts = []
    for m, info in rec["methods"].items():
        params = _run_params(df, m)
        if not params:
            continue
        for f, want in info["winner"]["values"].items():
            have = sorted({p.get(f) for p in params}, key=str)
            same = all(isinstance(v, (int, float)) and abs(v - want) <= 1e-9 * abs(want) for v in have)
            verdict = (
                "several values, e.g. the sweep's own runs"
                if len(have) > 1
                else "the winner"
                if same
                else f"not the winner {want:g}"
            )
            parts.append(f"{info['title']} {f} = {', '.join(map(str, have))} ({verdict})")
    return ("These runs use: " + "; ".join(parts) + ".") if parts else ""


def tuning_text(df: pd.DataFrame, tuning_dir: Any = TUNING_DIR) -> str:
    """The report section's paragraph on hyper-parameter tuning."""
    r = df.iloc[0]
    key = (str(r["dataset"]), str(r["preset"]), str(r["arch"]))
    recs = [t for t in find_tunings(tuning_dir) if (t["dataset"], t["preset"], t["arch"]) == key]
    held = df["holdout"].dropna() if "holdout" in df else pd.Series(dtype=float)
    note = (
        f" These runs were evaluated on a held-out {100 * float(held.iloc[0]):g} % of the training split "
        "(tuning runs), not on the validation split."
        if len(held) and float(held.iloc[0]) > 0
        else ""
    )
    if not recs:
        tunable = "; ".join(
            f"{get_method(m).title} {', '.join(get_method(m).tunable)}"
            for m in method_names()
            if m in set(df["method"]) and get_method(m).tunable
        )
        how = (
            f" `adabench tune` sweeps {tunable} symmetrically, on a held-out part of the training split."
            if tunable
            else ""
        )
        return (
            f"**Hyper-parameter tuning.** No tuning record for {'/'.join(key)} in "
            f"`{Path(tuning_dir).name}/`: "
            f"every hyper-parameter is the preset's.{how}{note}\n"
        )
    rec = recs[0]
    table = Path(rec["path"]).with_name("tuning.md")
    try:
        table = table.relative_to(Path(tuning_dir).resolve().parents[1])
    except ValueError:
        pass
    return (
        f"**Hyper-parameter tuning.** {procedure_text(rec)} Winners: {winners_text(rec)} "
        f"(table: `{table}`). {_uses(df, rec)}{note}\n"
    )
