"""AdaFocusV1 (ICCV 2021): three-stage training with a reinforcement-learned patch policy.

Importing this package registers method ``v1`` (``adafocus_v1.method.METHOD``) in ``bench.methods``.
"""

from adafocus_v1.method import METHOD

__all__ = ["METHOD"]
