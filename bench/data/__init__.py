"""The data layer: dataset registry, six benchmark loaders, the synthetic focus benchmark, sampling,
transforms.

A clip is float32 ``[T, C, H, W]`` (ImageNet-normalised, C = 3); a batch is ``[B, T, C, H, W]``.
See docs/design.md (Data) for the item dict.
"""

from bench.data.check import check_dataset
from bench.data.dataset import VideoDataset
from bench.data.datasets import create_dataset, dataset_info, dataset_source, list_datasets
from bench.data.loader import make_loader, set_epoch
from bench.data.preflight import preflight
from bench.data.roots import DATA_ENV, resolve_data_root
from bench.data.sampling import coarse2fine_order, item_rng, tsn_indices
from bench.data.sources import DATASETS, DatasetSource
from bench.data.synthetic import SynthParams
from bench.data.synthetic_files import ensure_synthetic, generate_synthetic
from bench.data.synthetic_render import render_video
from bench.data.types import CheckReport, ClipSpec, DatasetInfo

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "CheckReport",
    "ClipSpec",
    "DatasetInfo",
    "DatasetSource",
    "SynthParams",
    "VideoDataset",
    "check_dataset",
    "coarse2fine_order",
    "create_dataset",
    "dataset_info",
    "dataset_source",
    "ensure_synthetic",
    "generate_synthetic",
    "item_rng",
    "list_datasets",
    "make_loader",
    "preflight",
    "render_video",
    "resolve_data_root",
    "set_epoch",
    "tsn_indices",
]
