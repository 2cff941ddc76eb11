"""Writing the synthetic benchmark to disk in a real layout, so it goes through the ordinary loaders.

``frames`` layout (Jester-like)::

    synthetic-labels.csv        one class name per line
    synthetic-train.csv         'id;label' lines (20BN style), likewise synthetic-validation.csv
    frames/<id>/00001.jpg ...   JPEG quality 95, no chroma subsampling (the fine patterns survive)
    boxes.json                  {id: [[x0, y0, x1, y1] per frame]} object boxes in frame pixels
    meta.json                   generator parameters and version (written last: marks a complete set)

A frame that does not show the object (``SynthParams.visible < 1``) has a null box in boxes.json.

``video`` layout: the same files with ``videos/<id>.mp4`` (lossless H.264 RGB via PyAV) instead of frames/.
Writes are atomic: everything goes to a temporary sibling directory that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from bench.data.synthetic import GENERATOR_VERSION, SynthParams, class_names
from bench.data.synthetic_render import render_video, videos
from bench.errors import UsageError
from bench.io import check_writable_dir, make_dirs, writing

LAYOUTS = ("frames", "video")
PREFIX = "synthetic"
JPEG_QUALITY = 95
FPS = 8


def save_jpeg(img: np.ndarray, path: Path) -> None:
    Image.fromarray(img).save(path, quality=JPEG_QUALITY, subsampling=0)


def save_mp4(frames: np.ndarray, path: Path, fps: int = FPS) -> None:
    """Lossless H.264 in RGB (libx264rgb, crf 0): decoded frames equal ``frames`` exactly."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def _write_videos(
    out: Path, p: SynthParams, layout: str, jobs: List[Tuple[str, str, int, int]]
) -> Dict[str, list]:
    """Render and write ``jobs`` (split, id, label, k); returns {id: boxes}. Runs in worker processes."""
    media = out / ("frames" if layout == "frames" else "videos")
    boxes = {}
    for split, vid, label, k in jobs:
        frames, bx = render_video(p, split, label, k)
        if layout == "frames":
            d = media / vid
            d.mkdir()
            for f, img in enumerate(frames, start=1):
                save_jpeg(img, d / f"{f:05d}.jpg")
        else:
            save_mp4(frames, media / f"{vid}.mp4")
        boxes[vid] = [None if np.isnan(b).any() else b.astype(int).tolist() for b in bx]  # None: no object
    return boxes


def _write_set(out: Path, p: SynthParams, layout: str, workers: int) -> None:
    names = class_names(p)
    (out / f"{PREFIX}-labels.csv").write_text("".join(f"{n}\n" for n in names))
    (out / ("frames" if layout == "frames" else "videos")).mkdir()
    jobs = [(split, vid, label, k) for split in ("train", "val") for vid, label, k in videos(p, split)]
    chunks = [jobs[i::workers] for i in range(workers)] if workers > 1 and len(jobs) >= 64 else [jobs]
    boxes: Dict[str, list] = {}
    if len(chunks) == 1:
        boxes = _write_videos(out, p, layout, jobs)
    else:  # rendering is seeded per video, so splitting the work does not change a single byte
        with ProcessPoolExecutor(len(chunks)) as pool:
            for part in pool.map(_write_videos, *zip(*[(out, p, layout, c) for c in chunks])):
                boxes.update(part)
    for split, fname in (("train", "train"), ("val", "validation")):
        rows = [f"{vid};{names[label]}\n" for vid, label, _ in videos(p, split)]
        (out / f"{PREFIX}-{fname}.csv").write_text("".join(rows))
    ordered = {vid: boxes[vid] for _, vid, _, _ in jobs}
    (out / "boxes.json").write_text(json.dumps({"format": "x0,y0,x1,y1 pixels per frame", "boxes": ordered}))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "layout": layout,
        "params": p.to_dict(),
        "classes": names,
        "frame_size": p.size,
        "jpeg_quality": JPEG_QUALITY if layout == "frames" else None,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def _fresh_dir(parent: Path, name: str) -> Path:
    """A new empty temporary directory in ``parent``, created with the umask's permissions.

    (``tempfile.mkdtemp`` creates mode 700 whatever the umask, and the rename keeps it: a shared
    cache or dataset would be unreadable for everyone else.)
    """
    tmp = parent / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def make_params(**params) -> SynthParams:
    """SynthParams from keyword arguments; unknown names are a usage error."""
    fields = set(SynthParams.__dataclass_fields__)
    unknown = sorted(set(params) - fields)
    if unknown:
        raise UsageError(
            f"synthetic: unknown parameter(s) {', '.join(unknown)}; expected: {', '.join(sorted(fields))}"
        )
    if "videos_per_class" in params and isinstance(params["videos_per_class"], int):
        n = params["videos_per_class"]
        params["videos_per_class"] = (n, max(1, n // 4))
    values: Dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return SynthParams(**values)


def generate_synthetic(
    out: Union[str, Path], *, layout: str = "frames", seed: int = 0, workers: Optional[int] = None, **params
) -> Path:
    """Render and write the synthetic benchmark into ``out`` (must not exist or be empty); returns ``out``.

    ``params`` are ``SynthParams`` fields (classes, videos_per_class, frames, size, object_size, clutter,
    noise, ...). An int ``videos_per_class`` means (n train, n // 4 val). Same parameters -> same bytes,
    whatever the number of ``workers`` (processes; default: up to 4 cores).
    """
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    p = make_params(seed=seed, **params)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: already exists and is not empty; choose a new --out directory")
    check_writable_dir(out)  # a file in the way or a read-only parent: one line naming it, before any work
    with writing(out):  # e.g. the disk filling up while rendering
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh_dir(out.parent, out.name)
        try:
            _write_set(tmp, p, layout, workers or default_workers())
            if out.exists():
                out.rmdir()
            os.rename(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out


def params_key(layout: str, p: SynthParams) -> str:
    blob = json.dumps({"v": GENERATOR_VERSION, "layout": layout, **p.to_dict()}, sort_keys=True).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def ensure_synthetic(
    cache_dir: Union[str, Path], *, layout: str = "frames", workers: Optional[int] = None, **params
) -> Path:
    """Generate the benchmark once into ``cache_dir/synthetic-<layout>-<key>`` (key = hash of the params).

    Re-using a complete set (its ``meta.json`` exists) costs nothing; concurrent callers each generate
    into a temporary directory and the first rename wins.
    """
    p = make_params(**params)
    cache_dir = Path(cache_dir)
    target = cache_dir / f"{PREFIX}-{layout}-{params_key(layout, p)}"
    if (target / "meta.json").is_file():
        return target
    make_dirs(cache_dir)
    tmp = _fresh_dir(cache_dir, target.name)
    try:
        _write_set(tmp, p, layout, workers or default_workers())
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "meta.json").is_file():  # an incomplete leftover, not a concurrent winner
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def default_cache_dir() -> Path:
    """Where the default synthetic benchmark is generated: ``$ADABENCH_CACHE`` or ``./.cache``."""
    return Path(os.environ.get("ADABENCH_CACHE", ".cache")) / "synthetic"
