"""Registry of training methods.

``adafocus_v1`` and ``adafocus_v2`` register their runners here when imported, so
``bench`` (and the matched-experiment code) can run them without importing them.
A runner has the signature ``run(cfg: RunConfig, run: RunDir) -> dict`` and returns
the summary it also wrote to ``summary.json``.
"""
from bench.registry import Registry

METHODS = Registry("method")
