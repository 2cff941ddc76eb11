"""Uni-AdaFocus's cost model over fvcore's per-module counts: the official table's components and the cost of
each exit (``adafocus_uni.flops`` measures; ``UniNet.step_flops`` answers ``bench.models.flops`` with
these)."""

from __future__ import annotations

from typing import Dict, List


def components(by_module: Dict[str, int]) -> Dict[str, int]:
    """The official table's components (FLOPs per video): glance, spatial and temporal policy, focus, crop and
    the classifier's glance and focus branches."""
    m = lambda name: by_module.get("net." + name, 0)  # noqa: E731
    comp = {
        "glance": m("glance"),
        "spatial_policy": m("policy.spatial"),
        "temporal_policy": m("policy.temporal"),
        "focus": m("focus"),
        "classifier_glance": m("classifier.glance_mlp") + m("classifier.glance_heads"),
        "classifier_focus": m("classifier.focus_mlp") + m("classifier.focus_heads"),
    }
    comp["other"] = by_module.get("", 0) - sum(comp.values())  # the crop and the actions' interpolation
    return comp


def exit_costs(comp: Dict[str, int], focus_steps: int) -> List[float]:
    """GFLOPs of exits k = 0..Tf (k focus frames processed)."""
    fixed = comp["glance"] + comp["classifier_glance"]
    per_focus = (comp["focus"] + comp["classifier_focus"] + comp["other"]) / focus_steps
    policies = comp["spatial_policy"] + comp["temporal_policy"]
    return [(fixed + (policies if k else 0) + k * per_focus) * 1e-9 for k in range(focus_steps + 1)]
