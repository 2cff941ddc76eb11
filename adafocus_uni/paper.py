"""The published figures behind Uni-AdaFocus's claims against AdaFocusV2, each with its source (the report's
claims table quotes them; this module is the ``claims`` of Uni's registry entry). Only numbers printed in the
paper or the official README (adafocus-facts.md §4.5, §4.2) are here."""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

_T2 = "Uni-AdaFocus README / TPAMI Table 2 (MN2 + R50, 128², without the sample-wise exit)"

# dataset -> patch size -> (V2 accuracy %, Uni accuracy %, source); GFLOPs 27.0 (V2) and 27.2 (Uni)
ACCURACY: Dict[str, Dict[int, Tuple[float, float, str]]] = {
    "activitynet": {128: (79.0, 80.7, _T2)},
    "fcvid": {128: (85.0, 86.4, _T2)},
    "minik": {128: (75.4, 75.8, _T2)},
}

EARLY_EXIT = (
    "Uni-AdaFocus README / Table 2 (ActivityNet, 128²): full 80.7% mAP at 27.2 G; with the sample-wise "
    "exit 80.4% at 18.1 G and 78.3% at 9.1 G"
)
ABLATION = "the paper's ablations are not reproduced in the sources read here; direction only"
# the Uni paper claims accuracy at equal cost, not a shorter training than V2: no claim (b) against V2
CLAIMS_SPEEDUP = False
TIME_TO_ACCURACY = "not published; direction only"

_ALIASES = {
    "activitynet": "activitynet",
    "anet": "activitynet",
    "actnet": "activitynet",
    "fcvid": "fcvid",
    "minik": "minik",
    "minikinetics": "minik",
}


def canonical_dataset(name: str) -> Optional[str]:
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", str(name).lower()))


def accuracy_figure(dataset: str, patch_size: int) -> str:
    """The published V2 -> Uni accuracy at this patch size, or the published values as context."""
    key = canonical_dataset(dataset)
    if key in ACCURACY and patch_size in ACCURACY[key]:
        v2, uni, src = ACCURACY[key][patch_size]
        return f"V2 {v2:.1f}% (27.0 G) → Uni {uni:.1f}% (27.2 G) (+{uni - v2:.1f}) at {patch_size}² [{src}]"
    return (
        "no published number for this dataset/patch size; "
        f"e.g. ActivityNet 128²: V2 79.0% → Uni 80.7% [{_T2}]"
    )


def train_time_figure(dataset: str, patch_size: int) -> str:
    return "not published"
