"""Where a run starts: afresh, from a finished stage's checkpoint, or in the middle of a stage.

A method's stages are an ordered list of names; a command trains a contiguous range ``first..last`` of
them (all by default; ``--stages`` picks fewer). Rules:

1. ``checkpoints/last.pt`` exists and belongs to a requested stage that has not finished: continue after
   its last completed epoch. If that stage finished, start the next requested stage (or, if there is none,
   every requested stage is done).
2. ``last.pt`` is the finished stage just before ``first``: start ``first`` from it.
3. ``last.pt`` is past ``last``: a one-line error (retraining earlier stages would silently discard later
ones).
4. Otherwise: ``first`` starts from ``checkpoints/<stage before first>.pt`` (the first stage starts from
   scratch); a missing file is a one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from bench.errors import UsageError
from bench.runs.rundir import RunDir
from bench.training.checkpoint import read_checkpoint


@dataclass(frozen=True)
class StartPoint:
    stage: Optional[int]  # None: every requested stage is already done
    epoch: int  # first epoch to train in ``stage``
    weights: Optional[Path]  # checkpoint to load the network (and RNG, state) from; None = fresh
    mid_stage: bool  # ``weights`` is a last.pt of ``stage`` itself (restore its optimiser)


def parse_stage_list(value: Sequence[int] | str) -> Tuple[int, ...]:
    """``"2,3"`` or ``(2, 3)`` -> (2, 3): consecutive, increasing stage numbers from 0 (``--stages``)."""
    if isinstance(value, str):
        try:
            value = [int(s) for s in value.replace(" ", "").split(",") if s != ""]
        except ValueError:
            raise UsageError(
                f"--stages {value!r}: expected comma-separated stage numbers, e.g. 2,3"
            ) from None
    out = tuple(int(s) for s in value)
    if not out or out[0] < 0 or list(out) != list(range(out[0], out[-1] + 1)):
        raise UsageError(
            f"--stages {','.join(map(str, out))}: expected consecutive stage numbers, e.g. 0,1,2 or 2,3"
        )
    return out


def parse_stages(value: Sequence[int] | str, count: int) -> Tuple[int, int]:
    """``--stages`` of a method with ``count`` stages -> (first, last) indices."""
    out = parse_stage_list(value)
    if out[-1] >= count:
        raise UsageError(f"--stages {','.join(map(str, out))}: this method has stages 0-{count - 1}")
    return out[0], out[-1]


def find_start(
    run: RunDir, names: Sequence[str], epochs: Mapping[str, int], first: int, last: int
) -> StartPoint:
    """Apply the rules above to stages ``names`` (with ``epochs`` each) for the range ``first..last``."""
    if run.has_checkpoint():
        blob = read_checkpoint(run.last_checkpoint)
        if blob.get("stage") not in names:
            raise UsageError(
                f"{run.last_checkpoint}: stage {blob.get('stage')!r} is not one of this method's "
                f"({', '.join(names)}); delete the run directory to restart"
            )
        k, epoch = names.index(blob["stage"]), int(blob["epoch"])
        done = bool((blob.get("extra") or {}).get("stage_done")) or epoch + 1 >= epochs[names[k]]
        if first <= k <= last and not done:
            return StartPoint(k, epoch + 1, run.last_checkpoint, True)
        if k > last:
            raise UsageError(
                f"{run.path} has already trained stage {k}; running --stages "
                f"{','.join(map(str, range(first, last + 1)))} again would discard it. Delete the run "
                "directory (or its checkpoints) to retrain"
            )
        if done and first - 1 <= k <= last:
            return StartPoint(None if k == last else k + 1, 0, run.last_checkpoint, False)
    if first == 0:
        return StartPoint(0, 0, None, False)
    previous = run.stage_checkpoint(names[first - 1])
    if not previous.is_file():
        raise UsageError(
            f"--stages {','.join(map(str, range(first, last + 1)))} needs {previous} from stage "
            f"{first - 1}; run the earlier stages first (e.g. --stages "
            f"{','.join(map(str, range(first)))}) with the same options"
        )
    return StartPoint(first, 0, previous, False)
