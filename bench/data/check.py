"""``check_dataset``: validate a dataset root and list every problem (one line each), never stopping early.

A problem is anything ``run`` would stop on; a warning is something it copes with (a video whose header
promises more frames than decode: training samples over the frames that do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from bench.data.datasets import dataset_source
from bench.data.layouts import SPLITS
from bench.data.preflight import frames_problem
from bench.data.readers import frame_numbers, probe_video, read_image
from bench.data.types import CheckReport, Index, VideoRecord
from bench.errors import DataError

Found = Tuple[Optional[str], Optional[str]]  # (problem, warning)


def _decode_frames(rec: VideoRecord) -> Optional[str]:
    """Decode every frame of a folder whose frames are all present: the first undecodable one, or mixed
    sizes."""
    assert rec.template is not None  # a frame folder's record has a template
    folder = Path(rec.path)
    count = rec.num_frames if rec.num_frames is not None else max(frame_numbers(folder, rec.template))
    bad, first, shapes = 0, None, set()
    for k in range(1, count + 1):
        try:
            shapes.add(read_image(folder / rec.template.format(k)).shape)
        except DataError as e:
            bad, first = bad + 1, first or str(e)
    if first is not None:
        return f"{first} ({bad} of {count} frames undecodable; listed at {rec.source})"
    if len(shapes) > 1:
        return f"{folder}: frames have different sizes {sorted(shapes)} (listed at {rec.source})"
    return None


def _check_record(rec: VideoRecord, full: bool) -> Found:
    if rec.is_video:
        _, problem, warning = probe_video(Path(rec.path), full=full)
        return (None if problem is None else f"{problem} (listed at {rec.source})"), warning
    problem = frames_problem(rec)
    if problem is None and full:
        problem = _decode_frames(rec)
    return problem, None


def _split_problems(index: Index, split: str) -> List[str]:
    """An empty split: ``run`` has nothing to train or evaluate on (a missing list file is already a
    problem)."""
    if index.records or any(p.endswith(": file not found") for p in index.problems):
        return []
    return [f"{index.list_file or split}: split '{split}' has no videos"]


def check_dataset(
    name: str, root, *, full_decode: bool = False, progress: Optional[Callable[[str, int, int], None]] = None
) -> CheckReport:
    """Validate dataset ``name`` under ``root``: layout, list lines, labels, frames and videos.

    Missing root or an unrecognised layout raise ``DatasetNotFoundError`` (nothing else can be checked).
    Everything else is collected in ``CheckReport.problems``: missing or empty list files, malformed lines
    (``file:line``), unknown labels, missing frame folders or frames, unreadable videos. Videos are opened
    and their first frame decoded. ``full_decode`` decodes every video frame and every frame image too
    (slow on large sets); a video that decodes fewer frames than its header says is a warning.
    """
    source = dataset_source(name)
    layout = source.detect(root)
    root = Path(root)
    problems: List[str] = []
    warnings: List[str] = []
    splits = {}
    classes: List[str] = []
    for split in SPLITS:
        index = layout.index(root, split)
        classes = classes or index.classes
        problems += [p for p in index.problems if p not in problems]  # class-file problems repeat per split
        problems += _split_problems(index, split)
        splits[split] = len(index.records)
        for i, rec in enumerate(index.records):
            if progress is not None:
                progress(split, i, len(index.records))
            problem, warning = _check_record(rec, full_decode)
            problems += [problem] if problem is not None else []
            warnings += [warning] if warning is not None else []
    return CheckReport(name, str(root), layout.name, splits, len(classes), problems, warnings)
