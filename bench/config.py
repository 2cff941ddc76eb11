"""RunConfig: everything a single run needs, resolved before the run starts.

The hyper-parameters live in the Preset (``bench.presets``); RunConfig adds what
the user chose on the command line. Its resolved form is written to the run
directory as ``config.yaml`` and hashed into the run directory's name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple


@dataclass
class RunConfig:
    method: str                     # "v1" | "v2"
    dataset: str = "synthetic"
    data_root: Optional[str] = None  # None: the synthetic benchmark's cache, or an error for real datasets
    preset: str = "tiny"            # "paper" | "tiny"
    arch: str = "matched"           # "matched" | "paper"
    patch_size: Optional[int] = None  # None: the preset's
    seed: int = 0
    epochs: Optional[int] = None    # None: the preset's (V2 epochs; V1 stage-1 epochs scale the others)
    device: str = "auto"            # "auto" | "cpu" | "cuda"
    runs_dir: str = "runs"
    deterministic: bool = False
    skip_bad: bool = False
    num_workers: Optional[int] = None  # None: chosen from the machine
    init_state: Optional[str] = None   # shared initial weights (matched experiments)
    progress: bool = True
    # V2 ablation switches (issue 4)
    aux_supervision: bool = True
    diversity: bool = True
    stop_gradient: bool = True
    # V1 options (issue 5)
    rl: str = "ppo"                 # "reinforce" | "ppo"
    reward: str = "random"          # "random" | "prev" | "conf"
    stages: Tuple[int, ...] = (0, 1, 2, 3)
    stage3: str = "paper"           # "paper": focus + classifier; "official": classifier only
    overrides: Dict[str, Any] = field(default_factory=dict)  # preset field overrides (key=value)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = list(self.stages)
        return d

    def identity(self) -> Dict[str, Any]:
        """The fields that define *what* is run (not where or how it is displayed)."""
        d = self.to_dict()
        for k in ("runs_dir", "progress", "num_workers", "device", "stages"):
            d.pop(k)
        return d

    def config_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        return hashlib.sha1(blob).hexdigest()[:8]
