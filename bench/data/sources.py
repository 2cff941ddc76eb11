"""The dataset registry itself: ``DATASETS`` (name -> ``DatasetSource``) and the ``DatasetSource`` class.

Kept apart from the registrations (``datasets.py``, ``synthetic_dataset.py``) so that both import this
module and nothing in bench/data imports in a circle.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional, Sequence, Type, TypeVar

from bench.data.dataset import VideoDataset
from bench.data.layouts import SPLITS, Layout
from bench.data.types import ClipSpec, DatasetInfo, Index
from bench.errors import DataError, DatasetNotFoundError, UsageError
from bench.registry import Registry

DATASETS: Registry[DatasetSource] = Registry("dataset")


class DatasetSource:
    """A registered dataset: its ``info``, the ``layouts`` it reads, and the dataset class it builds."""

    dataset_class: Type[VideoDataset] = VideoDataset
    generated = False  # True: needs no --data-root (``default_root`` generates the data)

    def __init__(self, info: DatasetInfo, layouts: Sequence[Layout]) -> None:
        self.layouts = list(layouts)
        self.info = dataclasses.replace(info, layouts=[lay.text for lay in self.layouts])

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
        if root.exists() and not root.is_dir():
            raise DatasetNotFoundError(
                f"{root}: is a file, not a directory; expected the data root directory of dataset '{name}'"
            )
        if not root.is_dir():
            raise DatasetNotFoundError(f"{root}: data root not found (dataset '{name}')")
        for layout in self.layouts:
            if layout.found(root):
                return layout
        raise DatasetNotFoundError(
            f"{root}: no {name} layout found (expected {self.markers()}; see `adabench data list`)"
        )

    def markers(self) -> str:
        """The marker files that identify this dataset's layouts, as text ("a or b")."""
        return " or ".join(lay.marker for lay in self.layouts)

    def index(self, root: Path, split: str) -> Index:
        if split not in SPLITS:
            raise UsageError(f"unknown split '{split}'; expected one of: {', '.join(SPLITS)}")
        return self.detect(root).index(Path(root), split)

    def __call__(
        self,
        root: Path,
        split: str,
        spec: ClipSpec,
        *,
        train: bool,
        backend: str = "auto",
        skip_bad: bool = False,
    ) -> VideoDataset:
        index = self.index(root, split)
        missing = [p for p in index.problems if p.endswith(": file not found")]
        if missing:  # a missing list or label file is a layout problem, not a bad item
            raise DatasetNotFoundError(
                f"{missing[0].rsplit(': ', 1)[0]}: file not found "
                f"(dataset '{self.info.name}', layout {index.layout})"
            )
        if index.problems and not skip_bad:
            more = f" (and {len(index.problems) - 1} more problems)" if len(index.problems) > 1 else ""
            raise DataError(
                f"{index.problems[0]}{more}; run `adabench data check --dataset {self.info.name} "
                f"--data-root {root}` to list them, or skip bad items"
            )
        if not index.records:
            where = index.list_file or str(root)
            raise DataError(f"{where}: split '{split}' of {self.info.name} has no usable videos")
        return self.dataset_class(
            self.info, index, Path(root), split, spec, train=train, backend=backend, skip_bad=skip_bad
        )


S = TypeVar("S", bound=DatasetSource)


def register_source(source: S) -> S:
    """Add ``source`` to ``DATASETS`` under its ``info.name``."""
    DATASETS.register(source.info.name)(source)
    return source
