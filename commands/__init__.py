"""The ``adabench`` commands, grouped by what they work on; ``cli.py`` registers them on the command group.

data.py: datasets (data list/synth/check); models.py: networks and checkpoints (flops, import-checkpoint,
evaluate, bench); experiments.py: training (run, tune, demo); results.py: report and check. Shared options
are in options.py. Each command is a thin layer over ``bench/`` and ``reports/``: methods are reached only
through the registry (``bench.methods``), and heavy modules are imported inside the command bodies so that
``adabench --help`` stays quick.
"""

from __future__ import annotations

INVOCATION: list[
    str
] = []  # the arguments of this invocation (``cli.main`` records them; ``--nproc`` relaunches them)
