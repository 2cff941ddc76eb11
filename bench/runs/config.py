"""RunConfig: everything a single run needs, resolved before the run starts.

The hyper-parameters live in the Preset (``bench.presets``); RunConfig adds what the user chose on the
command line. Its resolved form (with the resolved preset) is written to the run directory as
``config.yaml`` and hashed into the run directory's name, so two commands that resolve to the same
configuration, however they were spelled, share a run directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

# "adabench": this harness's protocol (last-epoch model, softmax early exit, thresholds from
# evaluation-transform training logits, glance and focus views cropped alike); "official": the official code's
# (docs/design.md §Protocols). The protocol is part of a run's identity; the default is left out of the hash
# so run directories named before the option existed keep their names.
PROTOCOLS = ("adabench", "official")
DEFAULT_PROTOCOL = "adabench"
MAX_SEED = 2**31 - 1  # every seed consumer (torch, numpy, the item RNG) takes it

# The one definition of what changes what a run computes (``computation_identity``): the run directory's
# hash and the report's grouping (``bench.runs.identity``) both read it, so they agree by construction.
# NOT_COMPUTATION: where or how a run is shown, how fast it runs, which stages one invocation ran
# (``init_state`` is a path: whether one exists is ``shared_init``).
NOT_COMPUTATION = (
    "runs_dir",
    "progress",
    "quiet",
    "num_workers",
    "device",
    "stages",
    "init_state",
    "preflight",
    "channels_last",
    "compile",
)
# SPELLING: how the preset was asked for; the resolved preset (``preset``) holds what they change
SPELLING = ("overrides", "epochs", "patch_size")
PRESENTATION = NOT_COMPUTATION + SPELLING  # left out of the identity (and so of the hash)


@dataclass
class RunConfig:
    method: str  # a registered method name (``adabench methods``)
    dataset: str = "synthetic"
    data_root: Optional[str] = None  # absolute; None: the synthetic benchmark's cache
    preset: str = "tiny"  # "paper" | "tiny"
    arch: str = "matched"  # "matched" | "paper"
    patch_size: Optional[int] = None  # None: the preset's
    seed: int = 0
    epochs: Optional[int] = None  # --epochs (None: the preset's; the method decides how it applies)
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    runs_dir: str = "runs"
    deterministic: bool = False
    skip_bad: bool = False
    preflight: bool = True  # open every item's header before training (--no-preflight)
    num_workers: Optional[int] = None  # None: chosen from the machine
    init_state: Optional[str] = None  # shared initial weights (matched experiments)
    progress: bool = True  # progress bars on a terminal
    quiet: bool = False  # no per-epoch console lines
    stages: Optional[Tuple[int, ...]] = None  # multi-stage methods: the stages to run (None: all)
    # PROTOCOLS: model selection, early exit, augmentation (part of the identity)
    protocol: str = DEFAULT_PROTOCOL
    overrides: Dict[str, Any] = field(default_factory=dict)  # preset fields (--set key=value, method options)
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16" (bench.training.precision); hashed resolved
    channels_last: str = "auto"  # "auto" | "on" | "off": memory layout of the network (speed only)
    compile: bool = False  # torch.compile the backbones (speed only, opt-in)
    # > 0: train on the rest of the train split and evaluate on this fraction of it instead of val
    # (bench.data.holdout; `adabench tune` scores candidates this way, never on val)
    holdout: float = 0.0

    def __post_init__(self) -> None:
        from bench.errors import UsageError

        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed {self.seed}: expected an integer in 0..{MAX_SEED}")
        if not 0.0 <= float(self.holdout) < 1.0:
            raise UsageError(f"--holdout {self.holdout}: expected a fraction of the training split in [0, 1)")
        if self.protocol not in PROTOCOLS:
            raise UsageError(f"unknown protocol {self.protocol!r}; expected one of: {', '.join(PROTOCOLS)}")

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = None if self.stages is None else list(self.stages)
        return d

    def resolve_preset(self) -> Any:
        """The run's preset: the named one with the command line's patch size, epochs and overrides."""
        from bench.presets import get_preset

        overrides = dict(self.overrides)
        if self.patch_size is not None:
            overrides["patch_size"] = self.patch_size
        return get_preset(
            self.dataset,
            self.preset,
            method=self.method,
            arch=self.arch,
            epochs_option=self.epochs,
            **overrides,
        )

    def resolved_precision(self) -> str:
        """The precision this run computes in on its device (``auto`` resolved, bench.training.precision)."""
        from bench.training.precision import resolve_precision
        from bench.training.runtime import resolve_device

        return resolve_precision(self.precision, resolve_device(self.device))

    def identity(self) -> Dict[str, Any]:
        """What defines *what* is computed (``computation_identity`` of the options and the resolved
        preset)."""
        return computation_identity(
            {**self.to_dict(), "precision": self.resolved_precision()}, self.resolve_preset().to_dict()
        )

    def config_hash(self) -> str:
        return identity_hash(self.identity())


def identity_hash(identity: Mapping[str, Any]) -> str:
    """The 8-hex name part of a run directory: a hash of its ``computation_identity``."""
    return hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:8]


def computation_identity(run: Mapping[str, Any], preset: Mapping[str, Any]) -> Dict[str, Any]:
    """What a run computes, from its options (``RunConfig.to_dict()``, precision resolved) and its resolved
    preset: the options without ``PRESENTATION``, the default protocol and a zero holdout left out (older run
    directories keep their names), whether it starts from a matched experiment's shared initial weights, and
    the preset. ``RunConfig.config_hash`` hashes it; ``bench.runs.identity`` reads it back from
    config.yaml."""
    d = {k: v for k, v in run.items() if k not in PRESENTATION}
    if d.get("protocol", DEFAULT_PROTOCOL) == DEFAULT_PROTOCOL:
        d.pop("protocol", None)
    if not d.get("holdout"):
        d.pop("holdout", None)
    d["shared_init"] = run.get("init_state") is not None
    d["preset"] = dict(preset)
    return d
