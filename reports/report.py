"""``build_report(runs_dir, out_dir)``: one ``report.md`` with plots, tables and the claims table.

Only complete runs are read (``bench.runs.results.collect_results``: a run counts once its ``summary.json``
exists); the others are listed under "Skipped runs". Evaluated checkpoints (``adabench evaluate``) get their
own section, with the file, its SHA-256 and its source, and are never pooled with trained runs. Runs of
different datasets, presets, architectures (matched / paper) or configurations (data root, epochs, ``--set``
overrides, code version, ...: ``reports.frame`` ``setting``) are never compared: each gets its own section,
which says its configuration and how it differs from the other sections of the same dataset/preset/arch.

Layout of ``out_dir``::

    report.md  results.csv  results.parquet  plots/<dataset>-<preset>-<arch>-<setting>-<plot>.png
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from bench.errors import UsageError
from bench.io import atomic_write_text, check_writable_dir
from bench.methods import comparison_pairs, title
from bench.runs.results import collect_results, write_results
from reports.claims import claims_for_group, claims_markdown
from reports.frame import CELL_KEYS, GROUP_KEYS, differing, groups, runs_frame, setting_identity
from reports.measurements import regime_markdown, throughput_markdown
from reports.plots import PLOTS
from reports.projection import projection_section
from reports.sections import drop_repeats, overrides_of, words
from reports.tables import efficiency_table, markdown_table, seeds_table, stage_table
from reports.tuning import TUNING_DIR, tuning_text

PLOT_TITLES = {
    "accuracy_vs_gflops": "Accuracy vs inference GFLOPs per video (with early-exit curves)",
    "accuracy_vs_time": "Accuracy vs training wall-clock (like V2's Figure 1)",
    "patch_modes": "Learned vs random vs centre patches",
    "stage_time": "Training time per stage",
}


def _slug(*parts: Any) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.+]+", "_", str(p)) for p in parts)


def _plots(df: pd.DataFrame, key: Tuple[str, ...], out_dir: Path) -> List[str]:
    lines = []
    for name, fn in PLOTS.items():
        rel = Path("plots") / f"{_slug(*key, name)}.png"
        if fn(df, out_dir / rel) is not None:
            lines.append(f"**{PLOT_TITLES[name]}**\n\n![{PLOT_TITLES[name]}]({rel.as_posix()})\n")
    return lines


def _throughput(key: Tuple[str, ...], patch_sizes: Sequence[int], device: str) -> str:
    from bench.tools.throughput import benchmark_preset

    dataset, preset, arch = key[:3]
    parts = []
    for p in patch_sizes:
        rows = benchmark_preset(
            dataset, preset, arch=arch, patch_size=int(p), batch=4, warmup=3, repeats=10, device=device
        )
        parts.append(throughput_markdown(rows))
    return "\n".join(parts)


def _value(v: Any) -> str:
    if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)) or v == "":
        return "–"
    return str(v)


SHARED_COLUMNS = ("data_root", "epochs", "skip_bad", "protocol", "precision", "git_commit")


def _shared_sets(df: pd.DataFrame) -> str:
    """The ``--set`` fields every run of the section was given, then each method's own."""
    given = [overrides_of(r) for _, r in df.iterrows()]
    common = {k: v for k, v in given[0].items() if all(g.get(k) == v for g in given)} if given else {}
    parts = [f"`{words(common) or 'none'}`"]
    for method, sub in df.groupby("method"):
        each = [{k: v for k, v in overrides_of(r).items() if k not in common} for _, r in sub.iterrows()]
        own = {k: v for k, v in each[0].items() if all(o.get(k) == v for o in each)}
        if own:
            parts.append(f"{title(method)} also `{words(own)}`")
    return ", ".join(parts)


def _configuration(df: pd.DataFrame, differs: Dict[str, List[Any]], name: str) -> str:
    """One line with exactly what the section's runs share, and what sets it apart from its siblings."""
    shown = []
    for c in SHARED_COLUMNS:
        values = sorted({_value(v) for v in df[c]}) if c in df else ["–"]
        shown.append(
            f"{c} `{values[0]}`" if len(values) == 1 else f"{c} differs by run ({', '.join(values)})"
        )
    line = "Shared by every run of this section: " + "; ".join(shown) + f"; --set {_shared_sets(df)}."
    apart = [sect_words(differs, df)] if differs else []
    apart += [name] if name else []
    if apart:
        line += (
            " Differs from the other section(s) of this dataset, preset and architecture in: "
            + "; ".join(apart)
            + "."
        )
    return line + "\n"


def sect_words(differs: Dict[str, List[Any]], df: pd.DataFrame) -> str:
    """This section's values of the keys its sibling sections differ in, in words."""
    mine = setting_identity(df["identity"].iloc[0])
    return words({k: mine.get(k) for k in differs})


def _heading(key: Tuple[str, ...], differs: Dict[str, List[Any]], df: pd.DataFrame) -> str:
    dataset, preset, arch, _, name = key
    label = "; ".join(p for p in ((sect_words(differs, df) if differs else ""), name) if p)
    return f"## {dataset} · {preset} preset · {arch} architecture" + (f" · {label}" if label else "") + "\n"


def _section(
    key: Tuple[str, ...],
    df: pd.DataFrame,
    out_dir: Path,
    exit_tol: float,
    throughput: Optional[str],
    differs: Dict[str, List[Any]],
    tuning_dir: Any = TUNING_DIR,
) -> str:
    n_seeds = df.groupby(["method", "variant", "patch_size", "group_hash"]).size()
    pairs = [(b.name, p.name) for b, p in comparison_pairs(sorted(set(df["method"])))]
    head = [
        _heading(key, differs, df),
        _configuration(df, differs, key[4]),
        f"{len(df)} complete run{'s' if len(df) != 1 else ''}; methods "
        f"{', '.join(sorted(set(df['method'])))}; patch sizes "
        f"{', '.join(f'{p}²' for p in sorted(set(df['patch_size'])))}; seeds per cell {n_seeds.min()}–"
        f"{n_seeds.max()}; devices {', '.join(sorted(set(map(str, df['device']))))}.\n",
        "### Claims of the papers\n",
        claims_markdown(claims_for_group(df, exit_tol=exit_tol), exit_tol, pairs),
        "### Regime: the kept quantities of the scale model against the paper preset (bench/scale.py)\n",
        _regime(df),
        _skipped_items(df),
        tuning_text(df, tuning_dir),
        "### Plots\n",
        *_plots(df, key, out_dir),
        "### Training efficiency of each method against its baseline (like V2 Table 2)\n",
        efficiency_table(df),
        "### Training time per stage (evaluation excluded)\n",
        stage_table(df),
        "### All runs: mean ± std over seeds\n",
        seeds_table(df),
    ]
    if throughput is not None:
        head += [
            "### Inference throughput (random weights; measured here, now)\n",
            _throughput(key, sorted(set(df["patch_size"])), throughput),
        ]
    return "\n".join(head)


def _regime(df: pd.DataFrame) -> str:
    """The section's regime table: each method's full runs' records merged over patch sizes."""
    records: Dict[str, Dict[str, Dict[str, Any]]] = {}
    full = df[df["variant"] == "full"] if "variant" in df else df
    for _, run in full.sort_values(["method", "patch_size"]).iterrows():
        rec = run.get("regime")
        if not isinstance(rec, dict):
            continue
        merged = records.setdefault(title(run["method"]), {})
        for part, values in rec.items():
            merged.setdefault(part, {}).update(values)
    return (
        regime_markdown(records) if records else "_No regime recorded (runs from before the scale model)._\n"
    )


def _skipped_items(df: pd.DataFrame) -> str:
    """How many train / val items each run dropped with --skip-bad, and a mark on the claims when the runs
    compared did not evaluate the same validation videos."""
    items = [
        r.get("skipped_items") if isinstance(r.get("skipped_items"), dict) else {} for _, r in df.iterrows()
    ]
    if not any(any(v for v in i.values()) for i in items):
        return ""
    runs = [
        f"{r['label']} p{r['patch_size']} s{r['seed']}: {len(i.get('train') or [])} train / "
        f"{len(i.get('val') or [])} val"
        for (_, r), i in zip(df.iterrows(), items)
    ]
    text = f"**Skipped items (`--skip-bad`; listed in each run's manifest.json).** {'; '.join(runs)}.\n"
    if len({tuple(sorted(i.get("val") or [])) for i in items}) > 1:
        text += (
            "\n**Marked: the claims above compare runs that skipped different validation items**, so their "
            "accuracies are not measured on the same videos.\n"
        )
    return text


def _source_text(source: Any) -> str:
    """Where an evaluated checkpoint came from: the official file it was imported from, or its run."""
    if isinstance(source, str):
        try:
            source = json.loads(source)
        except ValueError:
            return source
    if not isinstance(source, dict):
        return "–"
    imported = source.get("imported_from") or {}
    if imported.get("source"):
        sha, layout = imported.get("sha256"), imported.get("layout")
        return f"imported from `{imported['source']}` (SHA-256 `{sha}`, {layout})"
    if source.get("run_dir"):
        return f"run `{source['run_dir']}`, {source.get('stage')} epoch {source.get('epoch')}"
    return "–"


def _evaluated(df: pd.DataFrame) -> str:
    """Evaluated checkpoints: one row each, with the file and SHA-256 evaluated and where it came from."""
    if df.empty:
        return ""
    rows = []
    for _, r in df.sort_values(["dataset", "method", "patch_size", "run_dir"]).iterrows():
        pe = r["patch_eval"] or {}
        exits = r["early_exit"] or []
        rows.append(
            [
                r["dataset"],
                r["label"],
                f"{r['preset']} · {r['arch']}",
                r["patch_size"],
                _value(r.get("protocol")),
                f"{r['acc']:.1f} ({r['metric']})",
                " / ".join(
                    f"{100 * pe[k]:.1f}" if pe.get(k) is not None else "–"
                    for k in ("learned", "random", "centre")
                ),
                f"{r['gflops_per_video']:.4g}",
                f"{min(p['gflops'] for p in exits):.3g}–{max(p['gflops'] for p in exits):.3g}"
                if exits
                else "–",
                f"`{r.get('checkpoint')}`",
                f"`{r.get('checkpoint_sha256')}`",
                _source_text(r.get("source")),
            ]
        )
    return (
        "## Evaluated checkpoints\n\nCheckpoints scored with `adabench evaluate`: the final evaluation of a "
        "trained "
        "run (whole validation split; learned / random / centre patches; the method's extras), on networks "
        "not "
        "trained in this report's runs. They are listed here only, never pooled with or compared to the "
        "trained "
        "runs above.\n\n"
        + markdown_table(
            [
                "dataset",
                "method",
                "preset · arch",
                "P",
                "protocol",
                "accuracy %",
                "learned / random / centre top-1 %",
                "GFLOPs/video",
                "early-exit GFLOPs",
                "checkpoint",
                "SHA-256",
                "source",
            ],
            rows,
        )
    )


def _repeats(repeats: Sequence[Tuple[str, str]]) -> str:
    """Runs left out because another run of the same method, seed and configuration is already counted."""
    if not repeats:
        return ""
    rows = [[f"`{dropped}`", f"`{kept}`"] for kept, dropped in repeats]
    return (
        "## Repeated runs\n\nThese runs repeat a method and seed of a configuration another run already "
        "counts; each seed is counted once, so they are left out of every table, plot and claim.\n\n"
        + markdown_table(["left out", "counted instead"], rows)
    )


def _skipped(skipped: Sequence[Tuple[str, str]]) -> str:
    if not skipped:
        return "## Skipped runs\n\nNone: every run directory found has a complete summary.json.\n"
    rows = [[f"`{d}`", why] for d, why in skipped]
    return (
        "## Skipped runs\n\nThese directories have no complete `summary.json` (still running, killed, "
        "or broken) and are not in any table or plot.\n\n" + markdown_table(["run directory", "reason"], rows)
    )


def build_report(
    runs_dir: Any,
    out_dir: Any,
    *,
    exit_tol: float = 1.0,
    throughput: Optional[str] = None,
    tuning_dir: Any = TUNING_DIR,
    echo: Optional[Callable[[str], None]] = None,
    require_runs: bool = False,
    projections: Sequence[Any] = (),
) -> Path:
    """Write ``report.md`` (+ plots, results.csv/.parquet) for every complete run under ``runs_dir``.

    exit_tol: accuracy points the V2+ early exit may lose and still count as "the full model's accuracy".
    throughput: a device name ("cpu", "cuda") to also measure inference throughput per section, or None.
    tuning_dir: where the committed tuning records are (``reports.tuning``; default docs/tuning). echo: also
    say on the console how many runs were read and name every skipped or repeated one. require_runs: a runs
    directory without any complete run is a one-line ``UsageError`` (no report). projections: ``adabench
    project`` files to add to those in ``runs_dir``/projections (``reports.projection``). Returns the path of
    report.md.
    """
    out = Path(out_dir)
    check_writable_dir(out)  # before reading every run (and measuring throughput)
    results, skipped = collect_results(runs_dir)
    if require_runs and results.empty:
        found = (
            f"{len(skipped)} incomplete run director{'y' if len(skipped) == 1 else 'ies'}, e.g. "
            f"{skipped[0][0]} ({skipped[0][1]})"
            if skipped
            else "no run directories"
        )
        raise UsageError(
            f"--runs-dir {runs_dir}: no complete runs ({found}); expected "
            "<runs-dir>/<dataset>/<method>/<run>/summary.json, written when a run finishes"
        )
    csv_path, parquet_path = write_results(results, out)
    everything = runs_frame(results)
    df, evaluated = everything, everything
    if not everything.empty:
        is_evaluated = everything["kind"] == "evaluated"
        df, evaluated = everything[~is_evaluated].reset_index(drop=True), everything[is_evaluated]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    pairs = comparison_pairs(sorted(set(df["method"]))) if not df.empty else []
    question = "; ".join(f"does {p.title} train faster and recognise better than {b.title}" for b, p in pairs)
    parts = [
        f"# adabench report: {question or 'the runs'}, here?\n",
        f"Generated {now} from `{Path(runs_dir)}`: {len(df)} complete runs, {len(evaluated)} evaluated "
        f"checkpoints, "
        f"{len(skipped)} skipped. "
        f"All runs: [{csv_path.name}]({csv_path.name}), [{parquet_path.name}]({parquet_path.name}) "
        "(schema: docs/results-schema.md).\n",
    ]
    if df.empty:
        parts.append(
            "_No complete runs found._\n" if evaluated.empty else "_No complete trained runs found._\n"
        )
    df, repeats = drop_repeats(df, GROUP_KEYS + CELL_KEYS)
    sections = [(tuple(map(str, key)), sub.reset_index(drop=True)) for key, sub in groups(df)]
    for key, sub in sections:
        siblings = [setting_identity(s["identity"].iloc[0]) for k, s in sections if k[:3] == key[:3]]
        parts.append(_section(key, sub, out, exit_tol, throughput, differing(siblings), tuning_dir))
    parts.append(projection_section(runs_dir, projections))  # claim (b) projected: rows of their own
    parts.append(_evaluated(evaluated))
    parts.append(_repeats(repeats))
    parts.append(_skipped(skipped))
    path = atomic_write_text(out / "report.md", "\n".join(parts))
    if echo is not None:
        _console(echo, len(df), len(evaluated), skipped, repeats)
    return path


def _console(
    echo: Callable[[str], None],
    runs: int,
    evaluated: int,
    skipped: Sequence[Tuple[str, str]],
    repeats: Sequence[Tuple[str, str]],
) -> None:
    """What the report read, on the console: the counts, then every run it left out and why."""
    echo(
        f"report: {runs} complete run{'s' if runs != 1 else ''}, {evaluated} evaluated checkpoint"
        f"{'s' if evaluated != 1 else ''}, {len(skipped)} skipped, {len(repeats)} repeated (left out)"
    )
    for run_dir, why in skipped:
        echo(f"  skipped {run_dir}: {why}")
    for kept, dropped in repeats:
        echo(f"  left out {dropped}: repeats {kept} (same method, seed and configuration)")


def verdict_lines(runs_dir: Any, exit_tol: float = 1.0, dataset: Optional[str] = None) -> List[str]:
    """One console line per claim of every report section under ``runs_dir`` (of ``dataset``'s sections
    only, if given): the verdict, the claim, its setting, the effect with its 95 % interval and n (what
    ``adabench demo`` prints at its end)."""
    results, _ = collect_results(runs_dir)
    df = runs_frame(results)
    if df.empty:
        return []
    df = df[(df["kind"] != "evaluated") & ((df["dataset"] == dataset) if dataset else True)]
    df, _ = drop_repeats(df, GROUP_KEYS + CELL_KEYS)
    lines: List[str] = []
    for _, sub in groups(df):
        for c in claims_for_group(sub.reset_index(drop=True), exit_tol):
            lines.append(f"{c.verdict:>15}  {c.claim} ({c.setting}): {c.effect}, n={c.n}")
    return lines
