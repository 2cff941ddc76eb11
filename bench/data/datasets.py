"""The dataset registry: name -> ``DatasetSource`` (layouts it reads, how to index a split, flags).

``create_dataset("jester", root, "train", ClipSpec(8), train=True)`` finds the layout under ``root``,
parses the split's list, and returns a ``VideoDataset``.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Type

from bench.data.dataset import VideoDataset
from bench.data.layouts import SPLITS, Layout, arnet_lists, sthv2_json, tsm_lists, twentybn_csv
from bench.data.types import ClipSpec, DatasetInfo, Index
from bench.errors import DataError, DatasetNotFoundError, UsageError
from bench.registry import Registry

DATASETS = Registry("dataset")


class DatasetSource:
    """A registered dataset: its ``info``, the ``layouts`` it reads, and the dataset class it builds."""

    dataset_class: Type[VideoDataset] = VideoDataset
    generated = False                  # True: needs no --data-root (``default_root`` generates the data)

    def __init__(self, info: DatasetInfo, layouts: Sequence[Layout]) -> None:
        self.layouts = list(layouts)
        self.info = DatasetInfo(info.name, [lay.text for lay in self.layouts], info.multilabel, info.flip,
                                info.scales, info.description)

    def default_root(self) -> Optional[Path]:
        """Where the data is when no root is given: None (a root is needed), or, for a ``generated``
        dataset (the synthetic benchmarks), its default set, generated into the cache on first use."""
        return None

    def detect(self, root: Optional[Path]) -> Layout:
        """The layout found under ``root``; one-line ``DatasetNotFoundError`` when there is none."""
        name = self.info.name
        if root is None:
            raise DatasetNotFoundError(f"dataset '{name}' needs --data-root")
        root = Path(root)
        if not root.is_dir():
            raise DatasetNotFoundError(f"{root}: data root not found (dataset '{name}')")
        for layout in self.layouts:
            if layout.found(root):
                return layout
        wanted = " or ".join(lay.marker for lay in self.layouts)
        raise DatasetNotFoundError(
            f"{root}: no {name} layout found (expected {wanted}; see `adabench data list`)")

    def index(self, root: Path, split: str) -> Index:
        if split not in SPLITS:
            raise UsageError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}")
        return self.detect(root).index(Path(root), split)

    def __call__(self, root: Path, split: str, spec: ClipSpec, *, train: bool, backend: str = "auto",
                 skip_bad: bool = False) -> VideoDataset:
        index = self.index(root, split)
        missing = [p for p in index.problems if p.endswith(": file not found")]
        if missing:  # a missing list or label file is a layout problem, not a bad item
            raise DatasetNotFoundError(f"{missing[0].rsplit(': ', 1)[0]}: file not found "
                                       f"(dataset '{self.info.name}', layout {index.layout})")
        if index.problems and not skip_bad:
            more = f" (and {len(index.problems) - 1} more problems)" if len(index.problems) > 1 else ""
            raise DataError(f"{index.problems[0]}{more}; run `adabench data check --dataset {self.info.name} "
                            f"--data-root {root}` to list them, or skip bad items")
        if not index.records:
            raise DataError(f"{root}: split '{split}' of {self.info.name} has no usable videos")
        return self.dataset_class(self.info, index, Path(root), split, spec, train=train, backend=backend,
                                  skip_bad=skip_bad)


def _register(source: DatasetSource) -> DatasetSource:
    DATASETS.register(source.info.name)(source)
    return source


_NO_FLIP = "labels depend on direction, so training never flips"

JESTER = _register(DatasetSource(
    DatasetInfo("jester", [], flip=False, description=f"20BN Jester v1 hand gestures (27 classes); {_NO_FLIP}"),
    [twentybn_csv("jester-v1", "20bn-jester-v1", "{:05d}.jpg"), tsm_lists("20bn-jester-v1", "{:05d}.jpg")]))

STHV1 = _register(DatasetSource(
    DatasetInfo("sthv1", [], flip=False, description=f"Something-Something V1 (174 classes); {_NO_FLIP}"),
    [twentybn_csv("something-something-v1", "20bn-something-something-v1", "{:05d}.jpg"),
     tsm_lists("20bn-something-something-v1", "{:05d}.jpg")]))

STHV2 = _register(DatasetSource(
    DatasetInfo("sthv2", [], flip=False, description=f"Something-Something V2 (174 classes); {_NO_FLIP}"),
    # Frames first: a root holding both the official JSON and TSM lists was extracted to be read as frames.
    [tsm_lists("20bn-something-something-v2-frames", "{:06d}.jpg"), sthv2_json("20bn-something-something-v2")]))

ACTNET = _register(DatasetSource(
    DatasetInfo("actnet", [], multilabel=True, description="ActivityNet v1.3 (200 classes, mAP)"),
    [arnet_lists("classInd.txt", ("actnet_train_split.txt", "actnet_val_split.txt"), ",",
                 [("frames", "image_{:05d}.jpg")], multilabel=True)]))

FCVID = _register(DatasetSource(
    DatasetInfo("fcvid", [], multilabel=True, description="FCVID (239 classes, mAP)"),
    [arnet_lists("classInd.txt", ("fcvid_train_split.txt", "fcvid_val_split.txt"), ",",
                 [("frames", "image_{:05d}.jpg")], multilabel=True)]))

MINIK = _register(DatasetSource(
    DatasetInfo("minik", [], description="Mini-Kinetics (200 classes of Kinetics-400, AR-Net splits, top-1)"),
    [arnet_lists("minik_classInd.txt", ("mini_train_videofolder.txt", "mini_val_videofolder.txt"), None,
                 [("frames", "image_{:05d}.jpg"), ("", "img_{:05d}.jpg")], multilabel=False)]))


def _source(name: str) -> DatasetSource:
    import bench.data.synthetic_dataset  # noqa: F401  (registers "synthetic" and "synthetic_video")

    return DATASETS.get(name)


def create_dataset(name: str, root, split: str, spec: ClipSpec, *, train: bool, backend: str = "auto",
                   skip_bad: bool = False) -> VideoDataset:
    """Build split ``split`` ("train" | "val") of dataset ``name`` read from ``root``.

    Items are dicts with ``frames`` float32 ``[T, 3, S, S]`` (see ``bench.data.dataset``). ``train`` picks
    random TSN offsets and the training augmentation; otherwise segment centres and resize + centre crop.
    With ``skip_bad`` broken list lines and unreadable items are recorded in ``dataset.bad_items`` and
    replaced by the next readable item; without it they raise a one-line ``DataError``.
    """
    return _source(name)(root, split, spec, train=train, backend=backend, skip_bad=skip_bad)


def list_datasets() -> List[str]:
    """Registered dataset names."""
    _source("synthetic")
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """Name, on-disk layouts (human text), multilabel and flip flags of a registered dataset."""
    return _source(name).info


def dataset_source(name: str) -> DatasetSource:
    return _source(name)


def resolve_data_root(name: str, data_root=None) -> Path:
    """The root to read ``name`` from: ``data_root`` when given; for a generated dataset (``synthetic``,
    ``synthetic_video``) without one, its default benchmark generated once into the cache (``$ADABENCH_CACHE``
    or ``./.cache``); otherwise a usage error."""
    source = _source(name)
    if data_root is not None:
        source.detect(Path(data_root))
        return Path(data_root)
    root = source.default_root()
    if root is not None:
        return root
    raise DatasetNotFoundError(f"dataset '{name}' needs --data-root (see `adabench data list` for its layouts)")
