"""How many GPUs the official V1 scripts train each stage on (adafocus-facts.md §2.2, §2.3), for
``adabench project --devices official``. Each count says whether the facts sheet states it or it is
assumed."""

from __future__ import annotations

from typing import Dict, Tuple

_FRAME = "V1 ActivityNet scripts (facts §2.2)"
_VIDEO = "V1 Sth-Sth scripts (facts §2.3)"

DEVICES: Dict[str, Dict[str, Tuple[int, str]]] = {
    "frame": {
        "stage0": (
            2,
            f"{_FRAME}: f_G pre-training on 2 GPUs (DDP); f_L's count not stated, assumed the same",
        ),
        "stage1": (2, f"{_FRAME}: not stated; assumed the pre-training's 2-GPU DDP launch"),
        "stage2": (1, f"{_FRAME}: single GPU, DP/DDP forbidden"),
        "stage3": (1, f"{_FRAME}: single GPU"),
    },
    "video": {
        "stage0": (4, f"{_VIDEO}: TSM repository pre-training, count not stated; assumed stage 1's 4"),
        "stage1": (4, f"{_VIDEO}: 4 GPUs"),
        "stage2": (1, f"{_VIDEO}: 1 GPU"),
        "stage3": (4, f"{_VIDEO}: 4 GPUs (DP)"),
    },
}


def official_devices(variant: str) -> Dict[str, Tuple[int, str]]:
    """{stage: (GPUs, source)} of the official scripts for the model variant ("frame" | "video")."""
    return DEVICES[variant]
