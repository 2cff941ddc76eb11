"""AdaFocusV1 (ICCV 2021): three-stage training with a reinforcement-learned patch policy.

Importing this package registers ``run_v1`` as method ``"v1"`` in ``bench.methods.METHODS``.
"""
from adafocus_v1.pipeline import run_v1

__all__ = ["run_v1"]
