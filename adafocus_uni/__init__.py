"""Uni-AdaFocus (TPAMI 2024), frame variant: a temporal policy choosing the focus frames, a spatial policy
choosing each patch's position and scale, and the sample-wise early exit.

Importing the package registers method ``uni`` (``adafocus_uni.method.METHOD``) in ``bench.methods``.
"""

from adafocus_uni.method import METHOD

__all__ = ["METHOD"]
