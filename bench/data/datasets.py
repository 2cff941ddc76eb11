"""The six benchmark datasets' registrations, and the registry's public functions.

``create_dataset("jester", root, "train", ClipSpec(8), train=True)`` finds the layout under ``root``,
parses the split's list, and returns a ``VideoDataset``. Each entry's ``DatasetInfo`` carries the
dataset's facts (class count, model variant, flip, multi-label, layouts); ``dataset_info(name)`` reads them.
"""

from __future__ import annotations

from typing import List

import bench.data.synthetic_dataset  # noqa: F401  (registers "synthetic")
from bench.data.dataset import VideoDataset
from bench.data.layouts import arnet_lists, sthv2_json, tsm_lists, twentybn_csv
from bench.data.sources import DATASETS, DatasetSource, register_source
from bench.data.types import ClipSpec, DatasetInfo

_NO_FLIP = "labels depend on direction, so training never flips"
# training-split sizes (``adabench project``): not in the facts sheet; the datasets' own published splits
_TWENTYBN = "20BN's official train split of {}, as the TSM lists count it"

JESTER = register_source(
    DatasetSource(
        DatasetInfo(
            "jester",
            [],
            flip=False,
            num_classes=27,
            variant="video",
            train_videos=118_562,
            train_videos_source=_TWENTYBN.format("Jester v1 (148,092 videos)"),
            description=f"20BN Jester v1 hand gestures (27 classes); {_NO_FLIP}",
        ),
        [
            twentybn_csv("jester-v1", "20bn-jester-v1", "{:05d}.jpg"),
            tsm_lists("20bn-jester-v1", "{:05d}.jpg"),
        ],
    )
)

STHV1 = register_source(
    DatasetSource(
        DatasetInfo(
            "sthv1",
            [],
            flip=False,
            num_classes=174,
            variant="video",
            train_videos=86_017,
            train_videos_source=_TWENTYBN.format("Something-Something V1 (108,499 videos)"),
            description=f"Something-Something V1 (174 classes); {_NO_FLIP}",
        ),
        [
            twentybn_csv("something-something-v1", "20bn-something-something-v1", "{:05d}.jpg"),
            tsm_lists("20bn-something-something-v1", "{:05d}.jpg"),
        ],
    )
)

STHV2 = register_source(
    DatasetSource(
        DatasetInfo(
            "sthv2",
            [],
            flip=False,
            num_classes=174,
            variant="video",
            train_videos=168_913,
            train_videos_source=_TWENTYBN.format("Something-Something V2 (220,847 videos)"),
            description=f"Something-Something V2 (174 classes); {_NO_FLIP}",
        ),
        # Frames first: a root holding both the official JSON and TSM lists was extracted to be read as
        # frames.
        [
            tsm_lists("20bn-something-something-v2-frames", "{:06d}.jpg"),
            sthv2_json("20bn-something-something-v2"),
        ],
    )
)

ACTNET = register_source(
    DatasetSource(
        DatasetInfo(
            "actnet",
            [],
            multilabel=True,
            num_classes=200,
            variant="frame",
            train_videos=10_024,
            train_videos_source="activity-net.org/download.html, release 1.3: 10,024 training videos",
            description="ActivityNet v1.3 (200 classes, mAP)",
        ),
        [
            arnet_lists(
                "classInd.txt",
                ("actnet_train_split.txt", "actnet_val_split.txt"),
                ",",
                [("frames", "image_{:05d}.jpg")],
                multilabel=True,
            )
        ],
    )
)

FCVID = register_source(
    DatasetSource(
        DatasetInfo(
            "fcvid",
            [],
            multilabel=True,
            num_classes=239,
            variant="frame",
            train_videos=45_611,
            train_videos_source="FCVID (Jiang et al., TPAMI 2018): 91,223 videos split 45,611 train / "
            "45,612 test",
            description="FCVID (239 classes, mAP)",
        ),
        [
            arnet_lists(
                "classInd.txt",
                ("fcvid_train_split.txt", "fcvid_val_split.txt"),
                ",",
                [("frames", "image_{:05d}.jpg")],
                multilabel=True,
            )
        ],
    )
)

MINIK = register_source(
    DatasetSource(
        DatasetInfo(
            "minik",
            [],
            num_classes=200,
            variant="frame",
            train_videos=121_215,
            train_videos_source="AR-Net's Mini-Kinetics lists (mini_train_videofolder.txt): 121,215 videos",
            description="Mini-Kinetics (200 classes of Kinetics-400, AR-Net splits, top-1)",
        ),
        [
            arnet_lists(
                "minik_classInd.txt",
                ("mini_train_videofolder.txt", "mini_val_videofolder.txt"),
                None,
                [("frames", "image_{:05d}.jpg"), ("", "img_{:05d}.jpg")],
                multilabel=False,
            )
        ],
    )
)


def create_dataset(
    name: str, root, split: str, spec: ClipSpec, *, train: bool, backend: str = "auto", skip_bad: bool = False
) -> VideoDataset:
    """Build split ``split`` ("train" | "val") of dataset ``name`` read from ``root``.

    Items are dicts with ``frames`` float32 ``[T, 3, S, S]`` (see ``bench.data.dataset``). ``train`` picks
    random TSN offsets and the training augmentation; otherwise segment centres and resize + centre crop.
    With ``skip_bad`` broken list lines and unreadable items are recorded in ``dataset.bad_items`` and
    replaced by the next readable item; without it they raise a one-line ``DataError``.
    """
    return dataset_source(name)(root, split, spec, train=train, backend=backend, skip_bad=skip_bad)


def list_datasets() -> List[str]:
    """Registered dataset names."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """A registered dataset's facts: layouts (human text), ``num_classes``, ``variant``, ``multilabel``,
    ``flip``, ``scales``, ``description``. Unknown names are a one-line ``UsageError``."""
    return dataset_source(name).info


def dataset_source(name: str) -> DatasetSource:
    return DATASETS.get(name)
