"""Results store: every complete run's ``summary.json`` (plus its ``config.yaml`` switches and its
configuration identity, ``bench.runs.identity``) as one row of a pandas table, written as ``results.csv``
and ``results.parquet``.

A run counts only when its ``summary.json`` exists, parses and has the identity keys;
``summary.json`` is written atomically and last, so a run in progress or killed is never
read half-written: it is skipped and named with the reason. The columns are ``SCHEMA``
(also rendered in ``docs/results-schema.md``).
"""

from __future__ import annotations

import io as _stdio
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import pandas as pd

from bench import io
from bench.errors import UsageError
from bench.methods import all_columns
from bench.runs import identity

# column -> (kind, meaning). Kinds: str, int (nullable Int64), float (float64, NaN = missing),
# bool (True/False/None), json (JSON text or None). Fractions are in [0, 1].
SCHEMA: Dict[str, Tuple[str, str]] = {
    "kind": (
        "str",
        "trained (adabench run) or evaluated (adabench evaluate of a checkpoint; never pooled with "
        "trained runs)",
    ),
    "method": ("str", "training method (its registered name)"),
    "dataset": ("str", "dataset name"),
    "preset": ("str", "hyper-parameter preset: paper or tiny"),
    "arch": ("str", "matched (same networks for both methods) or paper (each paper's own)"),
    "patch_size": ("int", "patch side P in pixels"),
    "seed": ("int", "random seed"),
    "top1": ("float", "top-1 accuracy of the learned policy, fraction"),
    "map": ("float", "mean average precision over classes with positives, fraction; NaN if single-label"),
    "gflops_per_video": ("float", "inference GFLOPs (multiply-adds) per video, full model"),
    "train_seconds": ("float", "training wall-clock over all stages, evaluation excluded, s"),
    "train_seconds_no_pretrain": (
        "float",
        "train_seconds less the method's backbone pre-training stages on the "
        "target data (its entry's pretraining_stages; V1: stage 0), s",
    ),
    "regime": (
        "json",
        "the scale model's quantities for this run next to the paper preset's: {kept, epochs, "
        "sgd_lr, tuned} -> {name: [value, paper value]} (bench.regime)",
    ),
    "epoch_seconds": ("float", "mean training wall-clock per epoch, s"),
    "data_wait_share": ("float", "share of training time spent waiting for data, fraction"),
    "peak_memory_mb": ("float", "peak memory: CUDA tensors, or process peak RSS on CPU, MiB"),
    "patch_eval_learned": ("float", "top-1 with the learned policy's patches, fraction"),
    "patch_eval_random": ("float", "top-1 of the same model with uniformly random patches, fraction"),
    "patch_eval_centre": ("float", "top-1 of the same model with centre patches, fraction"),
    "coverage": ("float", "frames whose patch covers the object (synthetic data), fraction; else NaN"),
    "tracking": (
        "json",
        "does the learned patch follow the object from video to video (synthetic data): "
        "{corr, distance, constant_distance, spread} "
        "(bench.training.metrics.location_tracking)",
    ),
    "device": ("str", "device the run trained on, e.g. cpu, cuda:0"),
    "world_size": ("int", "number of training processes"),
    "config_hash": (
        "str",
        "8-hex hash of the run's identity with its seed (config.yaml; names the run directory)",
    ),
    "group_hash": (
        "str",
        "8-hex hash of `identity`: runs with equal group_hash differ only in their seed, "
        "and only they are pooled over seeds",
    ),
    "data_root": (
        "str",
        "dataset root the run read, absolute (manifest.json dataset_root, else config.yaml "
        "data_root; a relative one is joined to the directory the run was started from)",
    ),
    "epochs": ("int", "--epochs given to the run (config.yaml); missing = the preset's schedule"),
    "overrides": ("json", "every --set override, {field: value} (config.yaml)"),
    "skip_bad": ("bool", "--skip-bad: unreadable items replaced (config.yaml)"),
    "holdout": (
        "float",
        "fraction of the train split held out and evaluated on instead of val (`adabench tune`; "
        "config.yaml); missing = val",
    ),
    "protocol": (
        "str",
        "adabench or official (--protocol: model selection, early-exit calibration, view "
        "augmentation; config.yaml); missing = adabench",
    ),
    "precision": ("str", "numeric precision, when the run records one (manifest.json or config.yaml)"),
    "git_commit": ("str", "code version: the git commit the run trained with (manifest.json)"),
    "git_dirty": ("bool", "the checkout had uncommitted changes (manifest.json)"),
    "deterministic": ("bool", "deterministic algorithms requested (config.yaml)"),
    "stage_seconds": ("json", "training seconds per stage, {stage: s}"),
    "stage_device_seconds": (
        "json",
        "device-seconds per stage: training seconds x devices used (world size), {stage: s}",
    ),
    "train_device_seconds": ("float", "training device-seconds over all stages: train_seconds x world size"),
    "patch_eval": ("json", "{learned, random, centre} top-1, as in summary.json"),
    "early_exit": ("json", "early-exit curve of a method that has one: list of {budget, gflops, top1}"),
    "curve": ("json", "accuracy over training: list of {train_seconds, top1}"),
    "epochs_trained": ("json", "epochs the run trained, summary.json's `epochs` (V1: all stages)"),
    "identity": (
        "json",
        "what group_hash hashes: what the run computes (bench.runs.config.computation_identity, "
        "the definition its run directory's hash uses) flattened to section.key, without "
        "the "
        "seed, plus data_root and manifest.json's git_commit, git_dirty, precision, "
        "protocol "
        "(bench/runs/identity.py)",
    ),
    "skipped_items": (
        "json",
        "--skip-bad: {train: [paths], val: [paths]} of the items the run dropped (never "
        "replaced); missing or empty = none",
    ),
    "selected_checkpoint": (
        "json",
        "--protocol official: the stage and epoch whose weights the run reports (its "
        "best validation point) and the last epoch's scores",
    ),
    "checkpoint": ("str", "evaluated: the checkpoint file evaluated"),
    "checkpoint_sha256": ("str", "evaluated: its SHA-256"),
    "source": (
        "json",
        "evaluated: where the checkpoint came from (the official file and SHA-256 it was imported "
        "from, or the run directory, stage and epoch)",
    ),
    "run_dir": ("str", "where the run directory was found"),
}
METHOD_COLUMNS_AFTER = "git_dirty"  # each registered method's own columns (Method.columns) follow this one


def schema() -> Dict[str, Tuple[str, str]]:
    """``SCHEMA`` with every registered method's own columns (``bench.methods.Column``) inserted."""
    out: Dict[str, Tuple[str, str]] = {}
    for name, entry in SCHEMA.items():
        out[name] = entry
        if name == METHOD_COLUMNS_AFTER:
            out.update({c.column: (c.kind, c.meaning) for c in all_columns()})
    return out


# Columns created per stage name, after the fixed ones (e.g. stage_seconds_stage1, stage_seconds_train).
STAGE_PREFIX = "stage_seconds_"
STAGE_MEANING = "training seconds of one stage (one column per stage name), s"

REQUIRED = ("method", "dataset", "preset", "patch_size", "seed", "top1")
CONFIG_KEYS = ("config_hash", "deterministic")
RENAMED = {"epochs": "epochs_trained"}  # summary keys whose name a configuration column takes
# configuration columns -> the identity keys they show (first present wins)
IDENTITY_COLUMNS = {
    # else config.yaml (_spelling)
    "data_root": (identity.ROOT,),
    "epochs": ("run.epochs",),
    "overrides": ("run.overrides",),
    "skip_bad": ("run.skip_bad",),
    "holdout": ("run.holdout",),
    "protocol": ("run.protocol", "manifest.protocol", "preset.protocol"),
    "precision": ("manifest.precision", "run.precision", "preset.precision"),
    "git_commit": ("manifest.git_commit",),
    "git_dirty": ("manifest.git_dirty",),
}
MARKER_FILES = ("summary.json", "config.yaml", "manifest.json", "metrics.csv")


def _json_text(v: Any) -> Optional[str]:
    return None if v is None else json.dumps(io.to_jsonable(v), sort_keys=True)


def _read(path: Path, reader) -> Any:
    try:
        return reader(path)
    except UsageError:  # missing or malformed: the run still counts, with what is known
        return None


def _config_columns(cfg: Any) -> Dict[str, Any]:
    """Switches from config.yaml: ``run:`` section of RunDir.write_config, or a flat mapping."""
    if not isinstance(cfg, dict):
        return {}
    flat = dict(cfg.get("run", cfg)) if isinstance(cfg.get("run", cfg), dict) else {}
    train = (cfg.get("preset") or {}).get("train") if isinstance(cfg.get("preset"), dict) else None
    if isinstance(train, dict):  # the method's own switches (e.g. V2's ablations) live in the preset
        flat.update(train)
    if "config_hash" in cfg:
        flat["config_hash"] = cfg["config_hash"]
    out = {k: flat[k] for k in CONFIG_KEYS if k in flat}
    out.update({c.column: flat[c.field] for c in all_columns() if c.field in flat})
    return out


def identity_columns(ident: Mapping[str, Any]) -> Dict[str, Any]:
    """``group_hash``, the configuration columns and ``identity`` (JSON text) of one run."""
    cols = {c: identity.first(ident, *keys) for c, keys in IDENTITY_COLUMNS.items()}
    cols["overrides"] = _json_text(cols["overrides"])
    return {"group_hash": identity.group_hash(ident), **cols, "identity": _json_text(ident)}


def _spelling(cfg: Any) -> Dict[str, Any]:
    """``epochs`` and ``overrides`` as config.yaml's run section gives them (what the user asked for; the
    identity holds the resolved preset they lead to)."""
    run = cfg.get("run") if isinstance(cfg, dict) else None
    if not isinstance(run, dict):
        return {}
    out = {k: run[k] for k in ("epochs",) if k in run}
    if "overrides" in run:
        out["overrides"] = _json_text(run["overrides"])
    return out


def summary_row(summary: Mapping[str, Any], run: Path) -> Dict[str, Any]:
    """One table row: nested dicts flattened, nested lists as JSON text, config switches and the
    configuration identity (config.yaml + manifest.json) added."""
    cfg = _read(run / "config.yaml", io.read_yaml)
    ident = identity.run_identity(run, cfg, _read(run / "manifest.json", io.read_json))
    row: Dict[str, Any] = {**_config_columns(cfg), **identity_columns(ident), **_spelling(cfg)}
    columns = schema()
    for key, value in summary.items():
        key = RENAMED.get(key, key)
        if key == "patch_eval" and isinstance(value, Mapping):
            row.update({f"patch_eval_{k}": v for k, v in value.items()})
        elif key == "stage_seconds" and isinstance(value, Mapping):
            row.update({f"{STAGE_PREFIX}{k}": v for k, v in value.items()})
        if columns.get(key, ("",))[0] == "json" or isinstance(value, (Mapping, list, tuple)):
            row[key] = _json_text(value)
        else:
            row[key] = value
    row["run_dir"] = str(run)
    return row


def _candidate_runs(root: Path) -> List[Path]:
    found = {p.parent for name in MARKER_FILES for p in root.rglob(name)}
    return sorted(found)


def collect_results(runs_dir: Any) -> Tuple[pd.DataFrame, List[Tuple[str, str]]]:
    """All complete runs under ``runs_dir`` as a table with ``SCHEMA``'s columns (plus one
    ``stage_seconds_<stage>`` column per stage seen), and the skipped run directories as
    ``(run_dir, reason)``: incomplete (no summary.json), malformed, or missing keys."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise UsageError(f"runs directory {root} not found")
    rows: List[Dict[str, Any]] = []
    skipped: List[Tuple[str, str]] = []
    for run in _candidate_runs(root):
        if not (run / "summary.json").is_file():
            skipped.append((str(run), "incomplete: no summary.json"))
            continue
        try:
            summary = io.read_json(run / "summary.json")
        except UsageError as e:
            skipped.append((str(run), str(e)))
            continue
        missing = [k for k in REQUIRED if not isinstance(summary, dict) or summary.get(k) is None]
        if missing:
            skipped.append((str(run), f"summary.json lacks {', '.join(missing)}"))
            continue
        rows.append(summary_row(summary, run))
    return _typed_frame(rows), skipped


def _mixed_types(col: pd.Series) -> bool:
    """True when the non-missing values of an object column have more than one Python type
    (Parquet needs one type per column)."""
    return col.dtype == object and col.dropna().map(type).nunique() > 1


def _typed_frame(rows: List[Dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    columns = schema()
    stage_cols = sorted(c for c in df.columns if c.startswith(STAGE_PREFIX))
    extra = [c for c in df.columns if c not in columns and c not in stage_cols]
    df = df.reindex(columns=list(columns) + stage_cols + extra)
    for col in df.columns:
        kind = columns[col][0] if col in columns else ("float" if col in stage_cols else None)
        if kind == "float":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        elif kind == "int":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        elif kind is not None:  # str / bool / json: Python objects, None when missing
            df[col] = df[col].astype(object).where(df[col].notna(), None)
        elif _mixed_types(df[col]):  # an extra key typed differently by V1 and V2 (e.g. epochs): text
            df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) or v != v else json.dumps(v))
    if df.empty:
        return df
    return df.sort_values(
        ["dataset", "method", "preset", "arch", "patch_size", "group_hash", "seed", "run_dir"],
        na_position="last",
    ).reset_index(drop=True)


def write_results(df: pd.DataFrame, out_dir: Any) -> Tuple[Path, Path]:
    """``results.csv`` and ``results.parquet`` in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    csv_path = io.atomic_write_text(out / "results.csv", df.to_csv(index=False))
    buf = _stdio.BytesIO()
    df.to_parquet(buf, index=False)
    parquet_path = io.atomic_write_bytes(out / "results.parquet", buf.getvalue())
    return csv_path, parquet_path


def schema_markdown() -> str:
    """The schema as a Markdown table (the body of docs/results-schema.md)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c}` | {kind} | {meaning} |" for c, (kind, meaning) in schema().items()]
    lines.append(f"| `{STAGE_PREFIX}<stage>` | float | {STAGE_MEANING} |")
    return "\n".join(lines) + "\n"
