"""How many GPUs the official V2 scripts train on (adafocus-facts.md §3.2, §4.3), for
``adabench project --devices official``."""

from __future__ import annotations

from typing import Dict, Tuple

# variant -> (GPUs, source) of the one stage
DEVICES: Dict[str, Tuple[int, str]] = {
    "frame": (4, "V2 ActivityNet scripts: DataParallel on 4 GPUs (facts §3.2); V2 Table 2: 4x RTX 3090"),
    "video": (
        4,
        "V2 Sth-Sth scripts: all visible GPUs, count not stated (facts §3.2); assumed V2 Table 2's 4",
    ),
}
