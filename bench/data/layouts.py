"""On-disk layouts: how to find the class list, the split lists and the frames/videos under a root.

A ``Layout`` is recognised by one marker file; ``index(root, split)`` parses that split into an ``Index``.
Missing split files and bad lines are recorded as problems (never raised here).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bench.data.lists import (
    parse_20bn_csv,
    parse_frame_list,
    parse_sthv2_labels,
    parse_sthv2_split,
    read_class_names,
)
from bench.data.readers import is_video_path
from bench.data.types import Index

SPLITS = ("train", "val")


@dataclass(frozen=True)
class Layout:
    name: str
    text: str  # human description, shown by `adabench data list`
    marker: str  # file (relative to root) whose presence selects this layout
    index: Callable[[Path, str], Index]
    requires: Tuple[str, ...] = ()  # folders that must exist too (to tell similar layouts apart)

    def found(self, root: Path) -> bool:
        return (root / self.marker).is_file() and all((root / d).is_dir() for d in self.requires)


def _class_index(names: Sequence[str], path: Path, problems: List[str]) -> Dict[str, int]:
    seen: Dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            problems.append(f"{path}: class '{n}' is listed twice")
        seen.setdefault(n, i)
    return {n: i for i, n in enumerate(names)}


def twentybn_csv(
    prefix: str,
    frames_dir: str,
    template: str,
    videos: Optional[Tuple[str, str]] = None,
    strict: bool = False,
) -> Layout:
    """Official 20BN CSVs: ``<prefix>-labels.csv`` (names), ``<prefix>-{train,validation}.csv``
    (``id;label``).

    Classes are numbered in alphabetical order of their names (as the TSM list generator does).
    Items are frame folders ``<root>/<frames_dir>/<id>/`` or, with ``videos=(dir, ext)``, files
    ``<root>/<dir>/<id><ext>``.
    """
    marker = f"{prefix}-labels.csv"
    where = (
        f"videos <root>/{videos[0]}/<id>{videos[1]}"
        if videos
        else f"frames <root>/{frames_dir}/<id>/{template.format(1)} ... "
        f"({_printf(template)}, counted per folder)"
    )
    text = (
        f"20BN CSVs: <root>/{marker} (one label per line; class index = alphabetical rank), "
        f"{prefix}-train.csv and {prefix}-validation.csv ('id;label' lines), {where}"
    )

    def index(root: Path, split: str) -> Index:
        problems: List[str] = []
        labels_file = root / marker
        classes = sorted(set(read_class_names(labels_file, problems)))
        cidx = _class_index(classes, labels_file, problems)
        split_file = root / f"{prefix}-{'train' if split == 'train' else 'validation'}.csv"
        if videos:
            make_path = lambda vid: str(root / videos[0] / f"{vid}{videos[1]}")  # noqa: E731
        else:
            make_path = lambda vid: str(root / frames_dir / vid)  # noqa: E731
        recs = parse_20bn_csv(
            split_file, cidx, labels_file, make_path, None if videos else template, problems
        )
        return Index(
            f"20bn-csv{'-video' if videos else ''}", classes, recs, problems, list_file=str(split_file)
        )

    requires = ((videos[0] if videos else frames_dir),) if strict else ()
    return Layout(f"20bn-csv{'-video' if videos else ''}", text, marker, index, requires)


def tsm_lists(frames_dir: str, template: str) -> Layout:
    """TSM lists: ``category.txt``, ``{train,val}_videofolder.txt`` with ``folder num_frames label`` rows."""
    text = (
        f"TSM lists: <root>/category.txt (one class per line; index = line order), train_videofolder.txt "
        f"and val_videofolder.txt ('folder num_frames label' lines), frames <root>/{frames_dir}/<folder>/"
        f"{_printf(template)} (or <root>/<folder>/ when {frames_dir}/ is absent)"
    )

    def index(root: Path, split: str) -> Index:
        problems: List[str] = []
        cat = root / "category.txt"
        classes = read_class_names(cat, problems)
        _class_index(classes, cat, problems)
        base = root / frames_dir if (root / frames_dir).is_dir() else root
        split_file = root / f"{split}_videofolder.txt"
        recs, dropped = parse_frame_list(
            split_file, None, len(classes), cat, lambda p: str(base / p), template, problems
        )
        return Index("tsm-lists", classes, recs, problems, dropped, str(split_file))

    return Layout("tsm-lists", text, "category.txt", index)


def sthv2_json(videos_dir: str, ext: str = ".webm") -> Layout:
    """Official Sth-Sth V2 download: labels JSON, train/validation JSON, ``<id>.webm`` videos."""
    marker = "something-something-v2-labels.json"
    text = (
        f"20BN JSON + webm as distributed: <root>/{marker} ({{template: index}}), "
        f"something-something-v2-train.json and -validation.json (class = 'template' with brackets "
        f"removed), videos <root>/{videos_dir}/<id>{ext} (VP9)"
    )

    def index(root: Path, split: str) -> Index:
        problems: List[str] = []
        labels_file = root / marker
        classes = parse_sthv2_labels(labels_file, problems)
        cidx = {n: i for i, n in enumerate(classes)}
        split_file = root / f"something-something-v2-{'train' if split == 'train' else 'validation'}.json"
        recs = parse_sthv2_split(
            split_file, cidx, labels_file, lambda vid: str(root / videos_dir / f"{vid}{ext}"), problems
        )
        return Index("20bn-json-webm", classes, recs, problems, list_file=str(split_file))

    return Layout("20bn-json-webm", text, marker, index)


def arnet_lists(
    class_file: str,
    list_names: Tuple[str, str],
    sep: Optional[str],
    frame_roots: Sequence[Tuple[str, str]],
    multilabel: bool,
) -> Layout:
    """AR-Net style lists used by the official ActivityNet/FCVID/Mini-Kinetics code.

    ``frame_roots`` are (folder under root, template) candidates; the first whose folder exists is used
    (Mini-K: V1 ``frames/`` + ``image_%05d.jpg``, V2 the root itself + ``img_%05d.jpg``). A list path with a
    video extension is a video file relative to the root.
    """
    row = (
        "'path,num_frames,label[,label2[,label3]]' (comma; up to 3 labels)"
        if sep == ","
        else "'path num_frames label' (space; the path may contain spaces)"
    )
    roots = " or ".join(f"<root>/{d + '/' if d else ''}<path>/{_printf(t)}" for d, t in frame_roots)
    text = (
        f"AR-Net lists: <root>/{class_file} (one class per line; index = line order), {list_names[0]} and "
        f"{list_names[1]} with {row} rows; frames {roots}; rows whose path ends in a video extension "
        f"(.mp4, .webm, .mkv, .avi, ...) are video files <root>/<path>; rows with < 3 frames are dropped"
    )

    def index(root: Path, split: str) -> Index:
        problems: List[str] = []
        cls = root / class_file
        classes = read_class_names(cls, problems)
        folder, template = next(
            ((d, t) for d, t in frame_roots if (root / d).is_dir() and d), frame_roots[-1]
        )
        base = root / folder if folder else root

        def make_path(p: str) -> str:
            return str(root / p) if is_video_path(p) else str(base / p)

        split_file = root / list_names[0 if split == "train" else 1]
        recs, dropped = parse_frame_list(
            split_file,
            sep,
            len(classes),
            cls,
            make_path,
            template,
            problems,
            multilabel=multilabel,
            min_frames=3,
        )
        return Index("arnet-lists", classes, recs, problems, dropped, str(split_file))

    return Layout("arnet-lists", text, class_file, index)


def _printf(template: str) -> str:
    """``image_{:05d}.jpg`` -> ``image_%05d.jpg`` (how the README and ffmpeg spell it)."""
    return template.replace("{:", "%").replace("d}", "d")
