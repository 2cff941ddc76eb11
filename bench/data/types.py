"""Plain data types of the data layer: what a clip is, what a dataset reads, what a check found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

#: TSN multi-scale crop scales (fractions of the short side), as in TSN/TSM training.
MULTISCALE = (1.0, 0.875, 0.75, 0.66)


@dataclass(frozen=True)
class ClipSpec:
    """How to cut a clip out of a video.

    A clip is a float tensor ``[T, C, H, W]`` with ``H == W == input_size`` (ImageNet-normalised, C = 3).
    """

    frames: int  # focus frames T (TSN segments)
    glance_frames: Optional[int] = (
        None  # separate glance set (8 in the Sth-Sth/Jester variant); None = shared
    )
    input_size: int = 224  # crop size of the frames given to the model
    resize: int = 256  # eval: short side resized to this, then centre crop input_size
    frame_order: str = "time"  # or "coarse2fine" (V2's input order; a prefix covers the whole video)
    independent_views: bool = False  # training: the glance clip gets its own crop and flip (the official
    # Sth-Sth/Jester code's augmentation; --protocol official)

    def __post_init__(self) -> None:
        from bench.errors import UsageError

        if self.frames < 1 or (self.glance_frames is not None and self.glance_frames < 1):
            raise UsageError(f"ClipSpec: frames must be >= 1, got {self.frames}/{self.glance_frames}")
        if self.input_size < 1 or self.resize < self.input_size:
            raise UsageError(
                f"ClipSpec: need 1 <= input_size <= resize, got input_size={self.input_size} "
                f"resize={self.resize}"
            )
        if self.frame_order not in ("time", "coarse2fine"):
            raise UsageError(
                f"ClipSpec: frame_order must be 'time' or 'coarse2fine', got '{self.frame_order}'"
            )


VARIANTS = ("frame", "video")


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset is and which on-disk layouts it reads (``layouts`` is human text).

    ``num_classes`` is the dataset's known class count (FLOPs and presets use it without data; at run
    time the class list found on disk wins). ``variant`` is the model variant it calls for: "frame"
    (ActivityNet-like: shared glance/focus frames, per-frame locations) or "video" (Sth-Sth/Jester-like:
    separate glance frames, one location per video). ``train_videos``: the training split's size in the
    standard release the papers used, with its source; ``adabench project`` reads it (``--train-videos``
    overrides).
    """

    name: str
    layouts: List[str]
    multilabel: bool = False
    flip: bool = True  # horizontal flip in training (off when direction is the label)
    scales: Tuple[float, ...] = MULTISCALE  # multi-scale crop scales in training; (1.0,) = no crop jitter
    description: str = ""
    num_classes: int = 0
    variant: str = "frame"
    train_videos: Optional[int] = None  # training-split size of the standard release (``adabench project``'s
    train_videos_source: str = ""  # steps per epoch without the data), and where the number comes from

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(
                f"DatasetInfo {self.name}: variant must be one of {VARIANTS}, got '{self.variant}'"
            )


@dataclass(frozen=True)
class VideoRecord:
    """One video of a split: a frame folder (``template`` set) or a video file (``template`` None).

    ``num_frames`` is None when the list does not say (20BN CSVs, Sth-Sth V2 JSON): the reader counts.
    ``labels`` holds up to 3 class indices (multi-label lists); ``labels[0]`` is the training label.
    ``source`` is ``file:line`` of the list entry, for error messages.
    """

    path: str
    labels: Tuple[int, ...]
    num_frames: Optional[int] = None
    template: Optional[str] = None
    source: str = ""
    key: str = ""  # the video id as written in the list (synthetic boxes use it)

    @property
    def is_video(self) -> bool:
        return self.template is None


@dataclass
class Index:
    """The parsed contents of one split: records, class names, the layout found, and problems met."""

    layout: str
    classes: List[str]
    records: List[VideoRecord]
    problems: List[str] = field(default_factory=list)
    skipped: int = 0  # rows dropped on purpose (fewer than 3 frames, as the official code)
    list_file: str = ""  # the split's list file (for messages about the split as a whole)


@dataclass
class CheckReport:
    """Result of ``check_dataset``: per-split counts, class count, every problem found (one line each) and
    warnings: things ``run`` copes with (a video header promising more frames than decode), exit 0."""

    dataset: str
    root: str
    layout: str
    splits: Dict[str, int]
    num_classes: int
    problems: List[str]
    warnings: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        """What ``adabench data check`` prints: counts, warnings, then every problem or "ok"."""
        lines = [
            f"dataset  {self.dataset}",
            f"root     {self.root}",
            f"layout   {self.layout}",
            f"classes  {self.num_classes}",
            *(f"{split:<8} {n} videos" for split, n in self.splits.items()),
            *(f"warning  {w}" for w in self.warnings),
        ]
        if self.ok:
            return "\n".join(lines + ["ok: no problems found"])
        return "\n".join(lines + [f"problems {len(self.problems)}", *(f"  {p}" for p in self.problems)])
