"""One evaluation routine for both methods: the trained network with its learned policy, and
the same network with the policy replaced by uniformly random or by centre patches.

Shapes: a batch is the data layer's dict (``frames`` [B,T,3,S,S], optional ``glance``,
``label`` [B], ``labels`` [B,L] padded with -1, ``boxes`` [B,T,4] NaN where unknown,
``index`` [B]). Results gather every rank's rows (``bench.training.runtime``) and drop the repeats a
``DistributedSampler`` adds, so a distributed evaluation equals a single-process one.

mAP is computed on softmax probabilities of the last step over the full class count
(``bench.training.metrics.mean_average_precision``); top-1 on the last step's logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, cast

import torch
from torch import nn

from bench.training import metrics
from bench.training.checkpoint import unwrap
from bench.training.precision import autocast
from bench.training.runtime import DistEnv, all_gather_cat, unique_by_index

PATCH_MODES = ("policy", "random", "centre")
# patch_eval's names for the three modes (the summary's ``patch_eval`` keys)
PATCH_EVAL_NAMES = {"learned": "policy", "random": "random", "centre": "centre"}


@dataclass
class EvalResult:
    """What one pass over a split gives. Tensors are on the CPU, rows sorted by item index.

    step_logits [N,T',K] (T' = classifier steps; the last is the prediction), labels [N],
    labels_multi [N,L] (-1 padded), locations [N,T,2] (row, col) in [0, 1], index [N].
    """

    top1: float
    map: Optional[float]
    coverage: Optional[float]
    step_logits: torch.Tensor
    labels: torch.Tensor
    labels_multi: torch.Tensor
    locations: torch.Tensor
    index: torch.Tensor
    patch_mode: str = "policy"
    tracking: Optional[Dict[str, Optional[float]]] = (
        None  # does the patch follow the object (boxes known; metrics)
    )

    @property
    def num_videos(self) -> int:
        return int(self.labels.shape[0])


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device, non_blocking=device.type == "cuda")


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def _finite_or_none(x: float) -> Optional[float]:
    return None if x != x else float(x)  # NaN -> None


@torch.no_grad()
def collect(
    net: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    device: torch.device,
    *,
    patch_mode: str = "policy",
    seed: int = 0,
    env: Optional[DistEnv] = None,
    precision: str = "fp32",
) -> Dict[str, Any]:
    """Run ``net`` over ``loader`` in eval mode and gather the raw outputs of every rank.

    Returns ``frame_hw`` (H, W) of the frames and CPU tensors: step_logits [N,T',K] float32, labels [N],
    labels_multi [N,L], locations [N,T,2], boxes [N,T,4], index [N] (deduplicated and sorted by index when
    distributed). ``random`` draws its locations from a generator seeded with ``seed`` (+ rank), so it
    repeats. ``precision``: the run's (resolved, ``bench.training.precision``); evaluation computes as
    training did.
    """
    if patch_mode not in PATCH_MODES:
        raise ValueError(f"patch_mode must be one of {PATCH_MODES}, got {patch_mode!r}")
    model = unwrap(net)
    was_training = model.training
    model.eval()
    rank = env.rank if env is not None else 0
    gen = _generator(device, seed + 7919 * rank) if patch_mode == "random" else None
    parts: Dict[str, List[torch.Tensor]] = {
        k: [] for k in ("step_logits", "labels", "labels_multi", "locations", "boxes", "index")
    }
    frame_hw = None
    try:
        for batch in loader:
            if batch is None:  # every item of it was unreadable and dropped (--skip-bad)
                continue
            frames = _to(batch["frames"], device)
            glance = _to(batch["glance"], device) if "glance" in batch else None
            with autocast(device, precision):
                out = model(frames, glance, patch_mode=patch_mode, aux=False, generator=gen)
            b, t = frames.shape[:2]
            frame_hw = tuple(frames.shape[-2:])
            parts["step_logits"].append(out["logits"].float().cpu())
            parts["locations"].append(out["locations"].float().expand(b, t, 2).cpu())
            label = batch["label"]
            parts["labels"].append(label.cpu())
            parts["labels_multi"].append(batch.get("labels", label[:, None]).cpu())
            boxes = batch.get("boxes")
            parts["boxes"].append(
                boxes.float().cpu() if boxes is not None else torch.full((b, t, 4), float("nan"))
            )
            index = batch.get("index")
            parts["index"].append(
                index.cpu() if index is not None else torch.full((b,), -1, dtype=torch.long)
            )
    finally:
        model.train(was_training)
    if not parts["labels"]:
        raise ValueError("evaluation loader yielded no batches")
    cat = {k: torch.cat(v) for k, v in parts.items()}
    if env is not None and env.distributed:
        cat = {k: all_gather_cat(v, env) for k, v in cat.items()}
        keys = [k for k in cat if k != "index"]
        index, *rest = unique_by_index(cat["index"], *(cat[k] for k in keys))
        cat = dict(zip(keys, rest), index=index)
    return {**cat, "frame_hw": frame_hw}


def summarise(
    raw: Mapping[str, Any], *, patch_size: int, num_classes: int, multilabel: bool, patch_mode: str = "policy"
) -> EvalResult:
    """Metrics of collected outputs (see ``collect``): top-1, mAP (multi-label only), coverage and
    tracking (``metrics.location_tracking``; only where object boxes are known)."""
    frame_hw = raw.get("frame_hw")
    logits = raw["step_logits"]
    last = logits[:, -1]
    top1 = metrics.top1(last, raw["labels"])
    map_ = None
    if multilabel:
        map_ = _finite_or_none(
            metrics.mean_average_precision(last.softmax(-1), raw["labels_multi"], num_classes)
        )
    coverage, tracking = None, None
    boxes = raw["boxes"]
    if frame_hw is not None and boxes.numel() and bool(torch.isfinite(boxes).all(-1).any()):
        coverage = _finite_or_none(metrics.patch_coverage(raw["locations"], boxes, patch_size, frame_hw))
        tracking = {
            k: _finite_or_none(v)
            for k, v in metrics.location_tracking(raw["locations"], boxes, patch_size, frame_hw).items()
        }
    return EvalResult(
        top1,
        map_,
        coverage,
        logits,
        raw["labels"],
        raw["labels_multi"],
        raw["locations"],
        raw["index"],
        patch_mode,
        tracking,
    )


def _dataset_attr(loader: Any, name: str, default: Any) -> Any:
    return getattr(getattr(loader, "dataset", None), name, default)


def evaluate(
    net: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    device: torch.device,
    *,
    patch_mode: str = "policy",
    seed: int = 0,
    env: Optional[DistEnv] = None,
    precision: str = "fp32",
    num_classes: Optional[int] = None,
    multilabel: Optional[bool] = None,
) -> EvalResult:
    """Evaluate ``net`` (an ``AdaFocusNet``, possibly DDP-wrapped) on ``loader``.

    patch_mode: ``policy`` (the learned locations), ``random`` (uniform, seeded by ``seed``) or
    ``centre``. ``num_classes`` / ``multilabel`` default to the loader's dataset attributes.
    """
    raw = collect(net, loader, device, patch_mode=patch_mode, seed=seed, env=env, precision=precision)
    k = num_classes or _dataset_attr(loader, "num_classes", raw["step_logits"].shape[-1])
    ml = _dataset_attr(loader, "multilabel", False) if multilabel is None else multilabel
    return summarise(
        raw,
        patch_size=cast(int, unwrap(net).patch_size),
        num_classes=k,
        multilabel=bool(ml),
        patch_mode=patch_mode,
    )


def patch_eval_results(
    net: nn.Module, loader: Iterable[Mapping[str, torch.Tensor]], device: torch.device, **kw: Any
) -> Dict[str, EvalResult]:
    """``evaluate`` with the learned, random and centre patches -> {"learned", "random", "centre"}."""
    return {
        name: evaluate(net, loader, device, patch_mode=mode, **kw) for name, mode in PATCH_EVAL_NAMES.items()
    }
