"""AdaFocusV2: one-stage end-to-end training (differentiable patch crop, auxiliary supervision,
diversity augmentation, stop-gradient) and the conditional early exit.

Importing the package registers ``run_v2`` as method ``"v2"`` in ``bench.methods.METHODS``.
"""
from adafocus_v2.run import run_v2

__all__ = ["run_v2"]
