"""Tiny on-disk datasets in each benchmark layout, written by the tests themselves.

Every frame encodes its own 1-based number in the red channel (``R = STEP * n``) and has a left-to-right
green ramp, so a test can read back which frames were sampled and whether a clip was flipped. Builders
return a ``Fixture`` with the root and what a loader should find there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image

STEP = 6  # red value per frame number
H, W = 32, 40  # fixture frame size (not square: exercises the short-side resize)


@dataclass
class Fixture:
    root: Path
    classes: List[str]  # in class-index order
    train: Dict[str, Tuple[int, ...]] = field(default_factory=dict)  # key -> labels, list order
    val: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    frames: Dict[str, int] = field(default_factory=dict)  # key -> frame count


def frame_image(n: int, h: int = H, w: int = W) -> np.ndarray:
    """uint8 ``[h, w, 3]``: R = STEP * n, G = ramp 40..200 from left to right, B = 90."""
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[..., 0] = min(255, STEP * n)
    img[..., 1] = np.linspace(40, 200, w).round().astype(np.uint8)[None, :]
    img[..., 2] = 90
    return img


def frame_numbers_of(clip) -> np.ndarray:
    """Recover 1-based frame numbers from a normalised clip ``[T, 3, S, S]`` (torch) of fixture frames."""
    from bench.data.transforms import denormalize

    red = denormalize(clip)[:, 0].mean(dim=(1, 2)).numpy()
    return np.round(red / STEP).astype(int)


def is_flipped(clip) -> bool:
    """True when the green ramp of the first frame runs right-to-left."""
    from bench.data.transforms import denormalize

    g = denormalize(clip)[0, 1]
    return bool(g[:, 0].mean() > g[:, -1].mean())


def write_frames(folder: Path, n: int, template: str = "{:05d}.jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        Image.fromarray(frame_image(i)).save(folder / template.format(i), quality=95, subsampling=0)


def write_video(path: Path, n: int, codec: str = "libx264rgb", fps: int = 10) -> None:
    """A video whose frame i (0-based) is ``frame_image(i + 1)``. VP9 for .webm, lossless H.264 otherwise."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = W, H
        if codec == "libvpx-vp9":
            s.pix_fmt, s.options = "yuv444p", {"lossless": "1", "deadline": "realtime", "cpu-used": "8"}
        else:
            s.pix_fmt, s.options = "rgb24", {"crf": "0", "preset": "ultrafast"}
        for i in range(1, n + 1):
            for pkt in s.encode(av.VideoFrame.from_ndarray(frame_image(i), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _lines(path: Path, rows: Sequence[str]) -> None:
    path.write_text("".join(f"{r}\n" for r in rows))


# ------------------------------------------------------------------------------- Jester / Sth-Sth V1
TWENTYBN_LABELS = ["Swiping Left", "Swiping Right", "Doing other things"]  # not alphabetical on purpose


def make_20bn_csv(
    root: Path,
    prefix: str = "jester-v1",
    frames_dir: str = "20bn-jester-v1",
    counts: Sequence[int] = (12, 9, 20, 15),
    val_counts: Sequence[int] = (10, 11),
) -> Fixture:
    """The official download: ``<prefix>-labels.csv``, ``-train.csv``/``-validation.csv`` (``id;label``),
    frames ``<frames_dir>/<id>/00001.jpg``."""
    classes = sorted(TWENTYBN_LABELS)
    fx = Fixture(root, classes)
    _lines(root / f"{prefix}-labels.csv", TWENTYBN_LABELS)
    for split, ns, start in (("train", counts, 1000), ("validation", val_counts, 2000)):
        rows = []
        for i, n in enumerate(ns):
            vid, label = str(start + i), TWENTYBN_LABELS[i % len(TWENTYBN_LABELS)]
            write_frames(root / frames_dir / vid, n)
            rows.append(f"{vid};{label}")
            (fx.train if split == "train" else fx.val)[vid] = (classes.index(label),)
            fx.frames[vid] = n
        _lines(root / f"{prefix}-{split}.csv", rows)
    return fx


def make_tsm_lists(
    root: Path,
    frames_dir: str = "20bn-jester-v1",
    template: str = "{:05d}.jpg",
    counts: Sequence[int] = (12, 9, 20),
    val_counts: Sequence[int] = (10,),
) -> Fixture:
    """TSM lists: ``category.txt`` and ``{train,val}_videofolder.txt`` (``folder num_frames label``)."""
    classes = ["gesture a", "gesture b", "gesture c"]
    fx = Fixture(root, classes)
    _lines(root / "category.txt", classes)
    for split, ns, start in (("train", counts, 1), ("val", val_counts, 100)):
        rows = []
        for i, n in enumerate(ns):
            vid, label = f"{start + i}", i % len(classes)
            write_frames(root / frames_dir / vid, n, template)
            rows.append(f"{vid} {n} {label}")
            (fx.train if split == "train" else fx.val)[vid] = (label,)
            fx.frames[vid] = n
        _lines(root / f"{split}_videofolder.txt", rows)
    return fx


# ------------------------------------------------------------------------------- Sth-Sth V2 (webm)
STHV2_TEMPLATES = [
    "Pushing something from left to right",
    "Putting something on a surface",
    "Holding something next to something",
]


def make_sthv2_webm(
    root: Path, counts: Sequence[int] = (14, 9), val_counts: Sequence[int] = (12,)
) -> Fixture:
    """The official download: labels JSON, train/validation JSON (bracketed templates), VP9 ``.webm``
    videos."""
    fx = Fixture(root, list(STHV2_TEMPLATES))
    (root / "something-something-v2-labels.json").write_text(
        json.dumps({t: str(i) for i, t in enumerate(STHV2_TEMPLATES)})
    )
    bracketed = [
        "Pushing [something] from left to right",
        "Putting [something] on a surface",
        "Holding [something] next to [something]",
    ]
    for split, ns, start in (("train", counts, 50), ("validation", val_counts, 80)):
        entries = []
        for i, n in enumerate(ns):
            vid, label = str(start + i), (i + 1) % len(bracketed)
            write_video(root / "20bn-something-something-v2" / f"{vid}.webm", n, codec="libvpx-vp9")
            entries.append(
                {"id": vid, "label": "a thing", "template": bracketed[label], "placeholders": ["a thing"]}
            )
            (fx.train if split == "train" else fx.val)[vid] = (label,)
            fx.frames[vid] = n
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(entries))
    return fx


# ------------------------------------------------------------------------------- ActivityNet / FCVID / Mini-K
def make_arnet(root: Path, dataset: str = "actnet", videos: bool = False) -> Fixture:
    """AR-Net lists. actnet/fcvid: comma rows with up to 3 labels, ``frames/<path>/image_%05d.jpg``;
    minik: space rows (a path with a space), V2 layout ``<root>/<path>/img_%05d.jpg``. With ``videos`` the
    second train row points at an mp4 file instead."""
    classes = [f"class {i}" for i in range(5)]
    fx = Fixture(root, classes)
    if dataset == "minik":
        class_file, names, sep = (
            "minik_classInd.txt",
            ("mini_train_videofolder.txt", "mini_val_videofolder.txt"),
            " ",
        )
        frames_base, template = root, "img_{:05d}.jpg"
        train = [("abseiling/vid one", 12, (3,)), ("archery/vid2", 16, (1,)), ("tiny/vid3", 2, (0,))]
        val = [("archery/vid4", 10, (4,))]
    else:
        class_file, sep = "classInd.txt", ","
        names = (f"{dataset}_train_split.txt", f"{dataset}_val_split.txt")
        frames_base, template = root / "frames", "image_{:05d}.jpg"
        train = [("v_aaa", 12, (2, 4)), ("v_bbb", 16, (1,)), ("v_ccc", 18, (0, 3, 4)), ("v_short", 2, (1,))]
        val = [("v_ddd", 10, (4, 2))]
    if videos:
        train[1] = ("videos/" + train[1][0].replace("/", "_") + ".mp4", train[1][1], train[1][2])
    _lines(root / class_file, classes)
    for split, rows, name in (("train", train, names[0]), ("val", val, names[1])):
        lines = []
        for path, n, labels in rows:
            if path.endswith(".mp4"):
                write_video(root / path, n)
            else:
                write_frames(frames_base / path, n, template)
            if sep == ",":
                lines.append(",".join([path, str(n)] + [str(x) for x in labels]))
            else:
                lines.append(f"{path} {n} {labels[0]}")
            if n >= 3:  # the official loaders drop shorter rows
                (fx.train if split == "train" else fx.val)[path] = labels
            fx.frames[path] = n
        _lines(root / name, lines)
    return fx


def make_synthetic(root: Path, layout: str = "frames", **kw) -> Path:
    """A very small synthetic set (2 classes, 3 + 1 videos per class, 8 frames of 32x32)."""
    from bench.data import generate_synthetic

    params = dict(classes=2, videos_per_class=(3, 1), frames=8, size=32, object_size=8, clutter=2, workers=1)
    params.update(kw)
    return generate_synthetic(root, layout=layout, **params)


def keys_in_order(fx: Fixture, split: str) -> List[str]:
    return list((fx.train if split == "train" else fx.val).keys())


def labels_of(fx: Fixture, split: str) -> List[Tuple[int, ...]]:
    return list((fx.train if split == "train" else fx.val).values())
