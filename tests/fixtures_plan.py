"""A method's stages built for a bare network and preset (no run directory, no data loaders)."""
from types import SimpleNamespace

from bench.methods import get_method


def plan_stages(method: str, net, preset, num_classes: int):
    """``get_method(method).plan`` on a minimal context: the stages (``bench.driver.Stage``)."""
    ctx = SimpleNamespace(net=net, preset=preset, data=SimpleNamespace(num_classes=num_classes))
    return get_method(method).plan(ctx)
