"""The published figures behind AdaFocusV2's claims against AdaFocusV1, each with its source (the
report's claims table quotes them; this module is the ``claims`` of V2's registry entry).

Only numbers printed in the papers or the official READMEs (adafocus-facts.md §4) are here.
The V2 ablation of its training techniques is not published anywhere we could read (§4.6),
so there are deliberately no ablation numbers.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

# V2 Table 2 (ActivityNet, MN2/RN, mAP %); training hours on 4x RTX 3090.
_ANET_T2 = "V2 Table 2 (ActivityNet, MN2/RN, 4x RTX 3090)"
# V1 Table 3 (Sth-Sth, top-1 %) and V2 Table 5 (Sth-Sth/Jester, top-1 %); V2 Fig. 1 speed-ups (Sth-Sth V1).
_STH_T = "V1 Table 3 / V2 Table 5"

# dataset -> patch size -> (V1 accuracy %, V2 accuracy %, source)
ACCURACY: Dict[str, Dict[int, Tuple[float, float, str]]] = {
    "activitynet": {96: (71.9, 77.4, _ANET_T2), 128: (75.0, 79.0, _ANET_T2), 160: (76.0, 79.9, _ANET_T2)},
    "sthv1": {144: (47.0, 48.2, _STH_T), 160: (47.6, 48.6, _STH_T), 176: (48.1, 49.6, _STH_T)},
    "sthv2": {144: (59.7, 60.5, _STH_T), 160: (60.2, 60.8, _STH_T), 176: (60.7, 61.3, _STH_T)},
}

# dataset -> patch size -> (V1 hours or None, V2 hours or None, V1/V2 speed-up, source)
TRAIN_TIME: Dict[str, Dict[int, Tuple[Optional[float], Optional[float], float, str]]] = {
    "activitynet": {
        96: (6.4, 3.4, 6.4 / 3.4, _ANET_T2),
        128: (7.2, 3.7, 7.2 / 3.7, _ANET_T2),
        160: (8.6, 4.3, 8.6 / 4.3, _ANET_T2),
    },
    "sthv1": {
        144: (None, None, 2.4, "V2 Fig. 1 (Sth-Sth V1)"),
        160: (None, None, 2.2, "V2 Fig. 1 (Sth-Sth V1)"),
        176: (None, None, 2.2, "V2 Fig. 1 (Sth-Sth V1)"),
    },
}

# Published context for the early-exit claim (V2+ needs no extra training).
EARLY_EXIT = (
    "V2 Table 4 (ActivityNet, MN2/RN 128²): full 79.0% mAP at 27.0 G, V2+ 74.8% at 9.9 G; "
    "V2 Fig. 5: V2+ needs 2.4×/2.8×/3.6× fewer GFLOPs than V1+ at equal mAP"
)
ABLATION = "not published in the sources; direction only"
TIME_TO_ACCURACY = "not published (V2 Fig. 1 shows final points only); direction only"

_ALIASES = {
    "activitynet": "activitynet",
    "anet": "activitynet",
    "actnet": "activitynet",
    "sthv1": "sthv1",
    "sthsthv1": "sthv1",
    "somethingsomethingv1": "sthv1",
    "something1": "sthv1",
    "sthv2": "sthv2",
    "sthsthv2": "sthv2",
    "somethingsomethingv2": "sthv2",
    "something2": "sthv2",
}


def canonical_dataset(name: str) -> Optional[str]:
    """Map a dataset name to the key of the tables above (None when the papers have no number)."""
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", str(name).lower()))


def train_time_ratio(dataset: str, patch_size: int) -> Optional[Tuple[float, str]]:
    """The published V1/V2 training-time ratio at this patch size and where it is printed, or None."""
    row = TRAIN_TIME.get(canonical_dataset(dataset) or "", {}).get(patch_size)
    return (row[2], train_time_figure(dataset, patch_size)) if row else None


def train_time_patch_sizes(dataset: str) -> Tuple[int, ...]:
    """The patch sizes with a published V1/V2 training-time ratio on ``dataset``."""
    return tuple(sorted(TRAIN_TIME.get(canonical_dataset(dataset) or "", {})))


def accuracy_figure(dataset: str, patch_size: int) -> str:
    """The published V1 -> V2 accuracy at this patch size, or all published values as context."""
    key = canonical_dataset(dataset)
    if key in ACCURACY and patch_size in ACCURACY[key]:
        v1, v2, src = ACCURACY[key][patch_size]
        return f"V1 {v1:.1f}% → V2 {v2:.1f}% (+{v2 - v1:.1f}) at {patch_size}² [{src}]"
    return (
        "no published number for this dataset/patch size; e.g. ActivityNet 128²: V1 75.0% → V2 79.0% mAP "
        f"[{_ANET_T2}]"
    )


def train_time_figure(dataset: str, patch_size: int) -> str:
    """The published V1/V2 training-time ratio at this patch size, or the published range as context."""
    key = canonical_dataset(dataset)
    if key in TRAIN_TIME and patch_size in TRAIN_TIME[key]:
        v1, v2, ratio, src = TRAIN_TIME[key][patch_size]
        hours = f"{v1:.1f} h / {v2:.1f} h = " if v1 is not None else ""
        return f"{hours}{ratio:.1f}× [{src}]"
    return (
        "about 2×: ActivityNet 6.4/3.4, 7.2/3.7, 8.6/4.3 h (96/128/160², V2 Table 2); "
        "Sth-Sth V1 2.4×/2.2×/2.2× (144/160/176², V2 Fig. 1)"
    )
