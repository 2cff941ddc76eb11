"""A method's stages built for a bare network and preset (no run directory, no data loaders)."""

import dataclasses

import torch

from bench.methods import PlanContext, get_method


def plan_stages(method: str, net, preset, num_classes: int):
    """``get_method(method).plan`` on a minimal context: the stages (``bench.training.driver.Stage``)."""
    ctx = dataclasses.replace(
        PlanContext.for_step(net, preset, torch.device("cpu"), "fp32"), num_classes=num_classes
    )
    return get_method(method).plan(ctx)
