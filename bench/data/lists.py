"""Parsers for the list and label files of the six benchmark layouts.

Parsers never stop at the first bad line: every problem becomes one line ``file:line: what is wrong``
in the returned ``problems`` list, so ``adabench data check`` can show them all. A missing file is
also a problem; callers decide whether that is fatal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bench.data.readers import is_video_path
from bench.data.types import VideoRecord

MAX_LABELS = 3  # multi-label lists keep up to three labels (ActivityNet / FCVID mAP)


def read_lines(path: Path, problems: List[str]) -> List[Tuple[int, str]]:
    """Non-empty lines of a text file with their 1-based numbers; a missing/unreadable file is a problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
        return []
    except (OSError, UnicodeDecodeError) as e:
        problems.append(f"{path}: cannot read ({e})")
        return []
    return [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]


def read_class_names(path: Path, problems: List[str]) -> List[str]:
    """One class per non-empty line (20BN ``*-labels.csv``, TSM ``category.txt``, AR-Net ``classInd.txt``)."""
    names = [ln for _, ln in read_lines(path, problems)]
    if not names and path.is_file():
        problems.append(f"{path}: no classes (expected one class name per line)")
    return names


# ------------------------------------------------------------------------------------------ 20BN CSV
def parse_20bn_csv(
    path: Path,
    class_index: Dict[str, int],
    labels_file: Path,
    make_path: Callable[[str], str],
    template: Optional[str],
    problems: List[str],
) -> List[VideoRecord]:
    """``id;label`` lines of the official Jester / Sth-Sth V1 CSVs; labels are looked up by name."""
    records = []
    for no, ln in read_lines(path, problems):
        vid, sep, label = ln.partition(";")
        vid, label = vid.strip(), label.strip()
        if not sep or not vid or not label:
            problems.append(f"{path}:{no}: expected 'id;label', got '{ln}'")
            continue
        if label not in class_index:
            problems.append(f"{path}:{no}: label '{label}' is not in {labels_file}")
            continue
        records.append(
            VideoRecord(make_path(vid), (class_index[label],), None, template, f"{path}:{no}", vid)
        )
    return records


# ------------------------------------------------------------------------------------------ TSM lists
def _check_labels(
    tokens: Sequence[str], num_classes: int, where: str, class_file: Path, problems: List[str]
) -> Optional[Tuple[int, ...]]:
    labels: List[int] = []
    for t in tokens:
        try:
            v = int(t)
        except ValueError:
            problems.append(f"{where}: label '{t}' is not an integer")
            return None
        if not 0 <= v < num_classes:
            problems.append(f"{where}: label {v} is not in {class_file} ({num_classes} classes)")
            return None
        if v not in labels:
            labels.append(v)
    return tuple(labels[:MAX_LABELS])


def parse_frame_list(
    path: Path,
    sep: Optional[str],
    num_classes: int,
    class_file: Path,
    make_path: Callable[[str], str],
    template: Optional[str],
    problems: List[str],
    multilabel: bool = False,
    min_frames: int = 1,
) -> Tuple[List[VideoRecord], int]:
    """Rows ``path num_frames label`` (TSM, Mini-K; ``sep=None`` = whitespace, path may hold spaces) or
    ``path,num_frames,label[,label2[,label3]]`` (ActivityNet / FCVID, ``sep=','``, ``multilabel``).

    A path with a video extension is read as a video file (``template`` ignored). Rows with fewer than
    ``min_frames`` frames are dropped, as the official loaders do. Returns (records, rows dropped).
    """
    records, dropped = [], 0
    form = "path,num_frames,label[,label2[,label3]]" if sep == "," else "path num_frames label"
    for no, ln in read_lines(path, problems):
        where = f"{path}:{no}"
        # Whitespace rows split at the last two runs of blanks only: the path keeps its exact spelling
        # (Kinetics names can hold two spaces in a row).
        toks = [t.strip() for t in ln.split(sep)] if sep else ln.rsplit(None, 2)
        if sep == ",":
            name, rest = toks[0], toks[1:]
            if len(rest) < 2 or (not multilabel and len(rest) > 2) or not name:
                problems.append(f"{where}: expected '{form}', got '{ln}'")
                continue
            count_tok, label_toks = rest[0], [t for t in rest[1:] if t != ""]
        else:
            if len(toks) < 3:
                problems.append(f"{where}: expected '{form}', got '{ln}'")
                continue
            name, count_tok, label_toks = toks[0], toks[1], [toks[2]]
        try:
            num_frames = int(count_tok)
        except ValueError:
            problems.append(f"{where}: frame count '{count_tok}' is not an integer (expected '{form}')")
            continue
        labels = _check_labels(label_toks, num_classes, where, class_file, problems)
        if labels is None:
            continue
        if not label_toks:
            problems.append(f"{where}: no label (expected '{form}')")
            continue
        if num_frames < min_frames:
            dropped += 1
            continue
        video = is_video_path(name)
        records.append(
            VideoRecord(
                make_path(name),
                labels,
                None if video else num_frames,
                None if video else template,
                where,
                name,
            )
        )
    return records, dropped


# ------------------------------------------------------------------------------------------ Sth-Sth V2
def _load_json(path: Path, problems: List[str]):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except (OSError, ValueError) as e:
        problems.append(f"{path}: not valid JSON ({str(e).splitlines()[0]})")
    return None


def parse_sthv2_labels(path: Path, problems: List[str]) -> List[str]:
    """``something-something-v2-labels.json``: {template: "index"}; classes ordered by that index."""
    data = _load_json(path, problems)
    if data is None:
        return []
    if not isinstance(data, dict):
        problems.append(f"{path}: expected an object {{template: index}}")
        return []
    by_index: Dict[int, str] = {}
    for name, idx in data.items():
        try:
            by_index[int(idx)] = name
        except (TypeError, ValueError):
            problems.append(f"{path}: index '{idx}' of '{name}' is not an integer")
    if sorted(by_index) != list(range(len(by_index))):
        problems.append(f"{path}: indices are not 0..{len(by_index) - 1}")
    return [by_index[i] for i in sorted(by_index)]


def parse_sthv2_split(
    path: Path,
    class_index: Dict[str, int],
    labels_file: Path,
    make_path: Callable[[str], str],
    problems: List[str],
) -> List[VideoRecord]:
    """``something-something-v2-{train,validation}.json``: entries with ``id`` and ``template``.

    The class is the template with its brackets removed ("Putting [something] on a surface").
    """
    data = _load_json(path, problems)
    if data is None:
        return []
    if not isinstance(data, list):
        problems.append(f"{path}: expected a list of {{id, label, template, placeholders}} entries")
        return []
    records = []
    for i, entry in enumerate(data):
        where = f"{path}:entry {i}"
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            problems.append(f"{where}: expected an object with 'id' and 'template'")
            continue
        name = str(entry["template"]).replace("[", "").replace("]", "")
        if name not in class_index:
            problems.append(f"{where}: template '{name}' is not in {labels_file}")
            continue
        vid = str(entry["id"])
        records.append(VideoRecord(make_path(vid), (class_index[name],), None, None, where, vid))
    return records
