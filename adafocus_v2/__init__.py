"""AdaFocusV2: one-stage end-to-end training (differentiable patch crop, auxiliary supervision,
diversity augmentation, stop-gradient) and the conditional early exit.

Importing the package registers method ``v2`` (``adafocus_v2.method.METHOD``) in ``bench.methods``.
"""

from adafocus_v2.method import METHOD

__all__ = ["METHOD"]
