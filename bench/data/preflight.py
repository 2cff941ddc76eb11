"""``preflight``: open every item's header before training, so a broken file stops a run before its first
epoch (or, with ``skip_bad``, is removed up front) instead of in the middle of one.

Header level only (a few milliseconds per item): a frame folder exists and holds every frame its list
line promises (the files are counted, not decoded); a video container opens and reports a frame count.
``adabench data check --full-decode`` is the thorough (slow) version.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

from bench.data.readers import frame_numbers, probe_video
from bench.data.types import VideoRecord
from bench.errors import DataError

PROBE_THREADS = (
    8  # the probes wait on the file system; threads overlap that (scandir and PyAV release the GIL)
)


def frames_problem(rec: VideoRecord) -> Optional[str]:
    """Why a frame-folder record cannot be read in full (missing folder or frame), or None."""
    assert rec.template is not None  # a frame folder's record has a template
    folder = Path(rec.path)
    if not folder.is_dir():
        return f"{folder}: frame folder not found (listed at {rec.source})"
    nums = set(frame_numbers(folder, rec.template))
    if not nums:
        pattern = rec.template.format(1).replace("1", "%")
        return f"{folder}: no frames matching {pattern} (listed at {rec.source})"
    expected = rec.num_frames if rec.num_frames is not None else max(nums)
    missing = [i for i in range(1, expected + 1) if i not in nums]
    if missing:
        return (
            f"{folder / rec.template.format(missing[0])}: missing frame "
            f"({len(missing)} of {expected} missing; listed at {rec.source})"
        )
    return None


def header_problem(rec: VideoRecord) -> Optional[str]:
    """Header-level check of one record: ``"path: reason (listed at file:line)"`` or None."""
    if not rec.is_video:
        return frames_problem(rec)
    _, problem, _ = probe_video(Path(rec.path), header_only=True)
    return None if problem is None else f"{problem} (listed at {rec.source})"


def _split(problem: str) -> Tuple[str, str]:
    path, _, reason = problem.partition(": ")
    return path, reason


def preflight(dataset, skip_bad: bool = False, threads: int = PROBE_THREADS) -> List[Tuple[str, str]]:
    """Open every item's header of ``dataset`` (a ``VideoDataset``, before any loader or ``Subset`` wraps
    it); returns ``(path, reason)`` of each broken item, in list order.

    Without ``skip_bad`` a broken item raises a one-line ``DataError`` naming its file (and how many more
    there are). With ``skip_bad`` broken items are removed from the dataset and added to its
    ``bad_items``; a split left empty is a ``DataError``. Datasets that decoded every item when they were
    built (``needs_preflight = False``, the synthetic one) have nothing to check.
    """
    if not getattr(dataset, "needs_preflight", True):
        return []
    records = list(dataset.records)
    with ThreadPoolExecutor(max(1, min(threads, len(records)))) as pool:
        found = list(pool.map(header_problem, records))
    bad = [(k, _split(p)) for k, p in enumerate(found) if p is not None]
    if not bad:
        return []
    if not skip_bad:
        path, reason = bad[0][1]
        more = f" (and {len(bad) - 1} more of {len(records)} items)" if len(bad) > 1 else ""
        raise DataError(
            f"{path}: {reason}{more}; found before training by the preflight; "
            f"`adabench data check --dataset {dataset.name} --data-root {dataset.root}` lists them"
        )
    if len(bad) == len(records):
        raise DataError(
            f"{dataset.root}: no readable videos in split '{dataset.split}' "
            f"({len(bad)} broken, e.g. {bad[0][1][0]}: {bad[0][1][1]})"
        )
    dataset.drop_records(dict(bad))
    return [item for _, item in bad]
