"""How a command ends when it fails: one ``error: ...`` line and an exit code, never a traceback.

``describe_failure`` maps every expected failure to a ``Failure``: our own errors (``AdabenchError``: 2 usage
or environment, 1 data or training), file-system errors (2; ``bench.errors.os_error_message`` names the path
and what was expected there), Ctrl-C (130, with how to resume), SIGTERM (143, the same) and a distributed rank
that lost its peers (1). Anything else is a bug and keeps its traceback.

Ctrl-C is noticed by a SIGINT handler (``watch_interrupts``) rather than by the exception type alone:
an interrupt that lands inside a library call can surface as another exception (``torch.save`` cut
short raises a RuntimeError, a DataLoader whose workers got the same signal reports them dead).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Iterator, Optional, Type

from bench.errors import AdabenchError, os_error_message

INTERRUPTED = "interrupted; re-run the same command to resume"
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C
# SIGTERM: what Slurm and Kubernetes send before killing a job; handled like Ctrl-C (the last checkpoint
# kept, run.lock released), so a requeued job resumes
TERMINATED = (
    "terminated (SIGTERM); the last completed epoch's checkpoint is kept: re-run the same command to resume"
)
TERMINATED_EXIT = 143  # 128 + SIGTERM
ENVIRONMENT_EXIT = 2

_interrupted = False


@dataclass(frozen=True)
class Failure:
    message: str  # one line, without the "error: " prefix
    exit_code: int


def quiet_startup_interrupts() -> None:
    """A Ctrl-C while the command's modules still import (before ``watch_interrupts``; torch takes
    seconds) prints one line instead of a traceback of the import machinery; nothing ran, nothing to
    resume."""
    previous = sys.excepthook

    def hook(kind: Type[BaseException], value: BaseException, tb: Optional[TracebackType]) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.stderr.write("error: interrupted\n")
        else:
            previous(kind, value, tb)

    sys.excepthook = hook


_terminated = False


def _on_sigint(signum: int, frame: object) -> None:
    global _interrupted, _terminated
    _interrupted = True
    _terminated = _terminated or signum == signal.SIGTERM
    raise KeyboardInterrupt


@contextlib.contextmanager
def watch_interrupts() -> Iterator[None]:
    """Within the block, a SIGINT or SIGTERM is remembered and raises KeyboardInterrupt (SIGINT's default),
    so both unwind alike: checkpoint kept, lock released."""
    global _interrupted, _terminated
    _interrupted = _terminated = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def describe_failure(exc: BaseException) -> Optional[Failure]:
    """The one line and exit code for ``exc``; None when it is not an expected failure."""
    if _terminated:
        return Failure(TERMINATED, TERMINATED_EXIT)
    if _interrupted or isinstance(exc, KeyboardInterrupt):
        return Failure(INTERRUPTED, INTERRUPTED_EXIT)
    if isinstance(exc, AdabenchError):
        return Failure(str(exc).replace("\n", " "), exc.exit_code)
    if isinstance(exc, OSError) and exc.filename is not None:
        return Failure(os_error_message(exc), ENVIRONMENT_EXIT)
    from bench.training.launch import peer_failure_message

    peer = peer_failure_message(exc)
    return Failure(peer, 1) if peer is not None else None
