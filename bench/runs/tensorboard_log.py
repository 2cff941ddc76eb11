"""TensorBoard event files next to ``metrics.csv`` (``<run>/tb/``), fed the same rows; ``metrics.csv`` stays
the
source of truth and this only mirrors it.

``RunDir.write_metrics`` calls ``log_metrics`` with the run's full history (one row per epoch, all stages),
and ``RunDir.write_summary`` calls ``log_summary`` with the summary. Step = the row's position in the history
(epochs counted across stages), so a multi-stage method's stages follow each other on one axis and
``stage/index`` marks their boundaries. Every numeric column becomes a scalar (``_tag``: ``lr_<group>`` ->
``lr/<group>``, ``train_loss`` -> ``train/loss``, ``val_top1`` -> ``val/top1``, ``*_seconds`` -> ``time/*``).
The summary is read generically: numbers -> ``final/<key>``, mappings of numbers -> ``final/<key>/<sub>``
(e.g. the learned / random / centre accuracies), lists of mappings -> ``<key>/<field>`` per point (e.g. an
early-exit curve).

A process writes a run's events once from its history and then only what is new, so a resumed run (whose
history comes back from its checkpoint) starts its event files afresh and never shows an epoch twice.
``tensorboard --logdir runs`` shows every run, named by its directory (method, patch, seed, hash).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Set, Tuple, cast

TB_DIR = "tb"
_enabled = True
_warned = False
_writers: Dict[Path, Tuple[Any, Set[Tuple[str, int]]]] = {}  # run directory -> (writer, (tag, step) written)


def configure(enabled: bool) -> None:
    """On (the default) or off (``--no-tensorboard``) for the runs of this process."""
    global _enabled
    _enabled = bool(enabled)


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _tag(column: str) -> str:
    """The scalar's tag of a metrics.csv column (groups related curves in TensorBoard)."""
    if column.endswith("_seconds"):
        return f"time/{column}"
    head, sep, rest = column.partition("_")
    return f"{head}/{rest}" if sep else f"metrics/{column}"


def row_scalars(rows: Sequence[Mapping[str, Any]]) -> Iterable[Tuple[str, int, float]]:
    """(tag, step, value) of every numeric cell of the metrics rows, plus each row's stage index."""
    stages: Dict[str, int] = {}
    for step, row in enumerate(rows, start=1):
        if "stage" in row:
            yield "stage/index", step, float(stages.setdefault(str(row["stage"]), len(stages)))
        for key, value in row.items():
            v = _number(value)
            if v is not None:
                yield ("stage/epoch" if key == "epoch" else _tag(key)), step, v


def summary_scalars(summary: Mapping[str, Any], step: int) -> Iterable[Tuple[str, int, float]]:
    """(tag, step, value) read generically from a run's summary (see the module docstring)."""
    for key, value in summary.items():
        if _number(value) is not None:
            yield f"final/{key}", step, cast(float, _number(value))
        elif isinstance(value, Mapping):
            yield from ((f"final/{key}/{tag}", step, v) for tag, v in _flat(value))
        elif isinstance(value, list) and value and all(isinstance(p, Mapping) for p in value):
            for i, point in enumerate(value):
                yield from ((f"{key}/{tag}", i, v) for tag, v in _flat(point))


def _flat(d: Mapping[str, Any], prefix: str = "") -> Iterable[Tuple[str, float]]:
    for k, v in d.items():
        if _number(v) is not None:
            yield f"{prefix}{k}", cast(float, _number(v))
        elif isinstance(v, Mapping):
            yield from _flat(v, f"{prefix}{k}/")


def _writer(run_path: Path) -> Optional[Tuple[Any, Set[Tuple[str, int]]]]:
    """This process's writer of ``run_path`` (the first call starts its event files afresh); None when off."""
    global _warned
    if not _enabled:
        return None
    run_path = Path(run_path)
    if run_path not in _writers:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the runs go on, metrics.csv has everything
            if not _warned:
                print(
                    "note: tensorboard is not installed: no TensorBoard logs (metrics.csv has every value)",
                    file=sys.stderr,
                )
                _warned = True
            return None
        tb = run_path / TB_DIR
        for old in tb.glob("events.out.tfevents.*"):  # a resumed run rewrites its whole history
            old.unlink()
        _writers[run_path] = (SummaryWriter(log_dir=str(tb)), set())
    return _writers[run_path]


def _write(run_path: Path, scalars: Iterable[Tuple[str, int, float]]) -> None:
    entry = _writer(run_path)
    if entry is None:
        return
    writer, written = entry
    for tag, step, value in scalars:
        if (tag, step) not in written:
            writer.add_scalar(tag, value, step)
            written.add((tag, step))
    writer.flush()


def log_metrics(run_path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Mirror metrics.csv's rows (the full history; only new cells are written)."""
    _write(run_path, row_scalars(rows))


def log_summary(run_path: Path, summary: Mapping[str, Any]) -> None:
    """The end-of-run values, at the run's last step; closes the run's writer."""
    metrics = Path(run_path) / "metrics.csv"
    step = max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0
    _write(run_path, summary_scalars(summary, step))
    entry = _writers.pop(Path(run_path), None)
    if entry is not None:
        entry[0].close()
