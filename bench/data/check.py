"""``check_dataset``: validate a dataset root and list every problem (one line each), never stopping early."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

from bench.data.datasets import dataset_source
from bench.data.layouts import SPLITS
from bench.data.readers import frame_numbers, probe_video
from bench.data.types import CheckReport, VideoRecord


def _check_frames(rec: VideoRecord) -> Optional[str]:
    folder = Path(rec.path)
    if not folder.is_dir():
        return f"{folder}: frame folder not found (listed at {rec.source})"
    nums = set(frame_numbers(folder, rec.template))
    if not nums:
        return f"{folder}: no frames matching {rec.template.format(1).replace('1', '%')} (listed at {rec.source})"
    expected = rec.num_frames if rec.num_frames is not None else max(nums)
    missing = [i for i in range(1, expected + 1) if i not in nums]
    if missing:
        return (f"{folder / rec.template.format(missing[0])}: missing frame "
                f"({len(missing)} of {expected} missing; listed at {rec.source})")
    return None


def _check_video(rec: VideoRecord, full: bool) -> Optional[str]:
    _, problem = probe_video(Path(rec.path), full=full)
    return None if problem is None else f"{problem} (listed at {rec.source})"


def check_dataset(name: str, root, *, full_decode: bool = False,
                  progress: Optional[Callable[[str, int, int], None]] = None) -> CheckReport:
    """Validate dataset ``name`` under ``root``: layout, list lines, labels, frames and videos.

    Missing root or an unrecognised layout raise ``DatasetNotFoundError`` (nothing else can be checked).
    Everything else is collected in ``CheckReport.problems``: missing list files, malformed lines
    (``file:line``), unknown labels, missing frame folders or frames, unreadable videos. Videos are opened
    and their first frame decoded; ``full_decode`` decodes every frame (slow on large sets).
    """
    source = dataset_source(name)
    layout = source.detect(root)
    root = Path(root)
    problems: List[str] = []
    splits = {}
    classes: List[str] = []
    for split in SPLITS:
        index = layout.index(root, split)
        classes = classes or index.classes
        problems += [p for p in index.problems if p not in problems]  # class-file problems repeat per split
        splits[split] = len(index.records)
        for i, rec in enumerate(index.records):
            if progress is not None:
                progress(split, i, len(index.records))
            problem = _check_video(rec, full_decode) if rec.is_video else _check_frames(rec)
            if problem is not None:
                problems.append(problem)
    return CheckReport(name, str(root), layout.name, splits, len(classes), problems)
