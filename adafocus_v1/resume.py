"""Where a V1 run starts: a fresh start, a stage's checkpoint, or the middle of a stage.

Rules (``stages`` is the contiguous list the user asked for, e.g. [2, 3]):

1. ``checkpoints/last.pt`` exists and belongs to a requested stage: continue after its last
   completed epoch; if that stage had finished, start the next requested stage (or, if there is
   none, the run is already complete).
2. ``last.pt`` is the finished stage just before the first requested one: start there from it.
3. ``last.pt`` is past the last requested stage: a one-line error (retraining earlier stages would
   silently discard later ones).
4. Otherwise: the first requested stage starts from ``checkpoints/stage<k-1>.pt`` (stage 0 starts
   from scratch); a missing file is a one-line error.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from bench.checkpoint import read_checkpoint
from bench.errors import UsageError
from bench.rundir import RunDir

from adafocus_v1.stages import STAGE_NAMES


@dataclass(frozen=True)
class StartPoint:
    stage: Optional[int]            # None: every requested stage is already done
    epoch: int                      # first epoch to train in ``stage``
    weights: Optional[Path]         # checkpoint to load the network (and RNG, state) from; None = fresh
    mid_stage: bool                 # ``weights`` is a last.pt of ``stage`` itself (restore its optimiser)


def parse_stages(stages: Sequence[int] | str) -> Tuple[int, ...]:
    """``(2, 3)`` or ``"2,3"`` -> (2, 3); must be a contiguous increasing run within 0..3."""
    if isinstance(stages, str):
        try:
            stages = [int(s) for s in stages.replace(" ", "").split(",") if s != ""]
        except ValueError:
            raise UsageError(f"--stages {stages!r}: expected comma-separated stage numbers, e.g. 2,3") from None
    out = tuple(int(s) for s in stages)
    if not out or any(s not in range(4) for s in out) or list(out) != list(range(out[0], out[-1] + 1)):
        raise UsageError(f"--stages {','.join(map(str, out))}: expected consecutive stages from 0-3, "
                         "e.g. 0,1,2,3 or 2,3")
    return out


def _stage_index(name: str) -> int:
    if name not in STAGE_NAMES:
        raise UsageError(f"checkpoint stage {name!r} is not a V1 stage; delete the run directory to restart")
    return STAGE_NAMES.index(name)


def find_start(run: RunDir, stages: Tuple[int, ...], epochs: dict) -> StartPoint:
    """Apply the rules above. ``epochs``: {stage index: epochs of that stage}."""
    first, last = stages[0], stages[-1]
    if run.has_checkpoint():
        blob = read_checkpoint(run.last_checkpoint)
        k, epoch = _stage_index(blob["stage"]), int(blob["epoch"])
        done = bool(blob.get("extra", {}).get("stage_done")) or epoch + 1 >= epochs[k]
        if k in stages and not done:
            return StartPoint(k, epoch + 1, run.last_checkpoint, True)
        if k > last:
            raise UsageError(f"{run.path} has already trained stage {k}; running --stages "
                             f"{','.join(map(str, stages))} again would discard it. Delete the run directory "
                             "(or its checkpoints) to retrain")
        if done and (k in stages or k == first - 1):
            if k == last:
                return StartPoint(None, 0, run.last_checkpoint, False)
            return StartPoint(k + 1, 0, run.last_checkpoint, False)
    if first == 0:
        return StartPoint(0, 0, None, False)
    previous = run.stage_checkpoint(STAGE_NAMES[first - 1])
    if not previous.is_file():
        raise UsageError(f"--stages {','.join(map(str, stages))} needs {previous} from stage {first - 1}; "
                         f"run the earlier stages first (e.g. --stages {','.join(map(str, range(first)))}) "
                         "with the same options")
    return StartPoint(first, 0, previous, False)
