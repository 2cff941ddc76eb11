"""``adabench run --nproc N``: start N ranks of the same command with ``torch.distributed.run``.

The launcher is torchrun itself (called in this process, single node, ``--standalone``: a free
rendezvous port on localhost), so ``adabench run --nproc 2 ...`` and
``torchrun --standalone --nproc_per_node 2 -m cli run ...`` start exactly the same workers. Each
worker reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK and trains with DDP (``bench.training.runtime``).
A failed rank ends the whole run (torchrun stops the others) and the launcher prints one line.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import List, Optional, Sequence

from bench.errors import AdabenchError, UsageError

LAUNCHED_ENV = "ADABENCH_LAUNCHED"  # set in the workers' environment: they must not launch again


def strip_option(argv: Sequence[str], name: str) -> List[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE`` (every occurrence)."""
    out: List[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def under_torchrun() -> bool:
    """True inside a worker started by torchrun (or by ``launch``)."""
    return (
        "TORCHELASTIC_RUN_ID" in os.environ
        or os.environ.get(LAUNCHED_ENV) == "1"
        or int(os.environ.get("WORLD_SIZE", "1")) > 1
    )


def torchrun_args(argv: Sequence[str], nproc: int, module: str = "cli") -> List[str]:
    """torchrun's arguments for ``python -m <module> <argv without --nproc>`` on ``nproc`` local ranks."""
    return [
        "--standalone",
        "--nproc_per_node",
        str(int(nproc)),
        "--module",
        module,
        *strip_option(argv, "--nproc"),
    ]


def _threads_per_rank(nproc: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // nproc)


def launch(argv: Sequence[str], nproc: int, module: str = "cli") -> None:
    """Run ``argv`` (the ``adabench`` arguments) on ``nproc`` local ranks; returns when all finished.

    Raises ``AdabenchError`` (one line, with the failed rank's exit code; 2 keeps usage errors
    usage errors) when a rank fails. The ranks print their own ``error: ...`` line.
    """
    if nproc < 2:
        raise UsageError(f"--nproc {nproc}: launch needs at least 2 processes")
    if under_torchrun():
        raise UsageError(
            "--nproc: this process is already a distributed worker; use either torchrun or --nproc"
        )
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", LAUNCHED_ENV)}
    # CPU threads per rank (torchrun would otherwise set 1 and print a warning about it)
    os.environ.setdefault("OMP_NUM_THREADS", str(_threads_per_rank(nproc)))
    os.environ[LAUNCHED_ENV] = "1"
    for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]:  # we print the one line
        if name.startswith("torch.distributed.elastic"):  # (each module's logger sets its own level)
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        run(parse_args(torchrun_args(argv, nproc, module)))
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        code = failure.exitcode if isinstance(failure.exitcode, int) else 1
        what = "stopped with a usage error" if code == 2 else f"failed with exit code {code}"
        err = AdabenchError(f"rank {rank} of {nproc} {what} (its message is above)")
        err.exit_code = 2 if code == 2 else 1
        raise err from None
    except SignalException as e:  # torchrun's own SIGINT/SIGTERM handler: the ranks were stopped
        if e.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        raise AdabenchError(
            f"stopped by signal {signal.Signals(e.sigval).name}; re-run the same command to resume"
        ) from None
    finally:  # the workers' environment, not this process's
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_PEER_LOST = (
    "Connection closed by peer",
    "Connection reset by peer",
    "Broken pipe",
    "timed out",
    "Timed out",
    "NCCL communicator was aborted",
    "Socket Timeout",
)


def peer_failure_message(exc: BaseException) -> Optional[str]:
    """One line for a collective that failed because another rank crashed or hung (the other rank
    prints the real cause); None for any other exception, and outside a distributed run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    if not any(marker in text for marker in _PEER_LOST):
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return (
        f"rank {os.environ.get('RANK', '?')}: lost the other ranks (one failed or hung; its message is the "
        f"cause): {first[:200]}"
    )


def main_rank() -> bool:
    """True in a single process and on rank 0 of a distributed run (the one that prints)."""
    return int(os.environ.get("RANK", "0")) == 0


__all__ = [
    "launch",
    "torchrun_args",
    "strip_option",
    "under_torchrun",
    "main_rank",
    "peer_failure_message",
    "LAUNCHED_ENV",
]
