"""Honest wall-clock measurement: synchronised on CUDA, data wait separated from compute,
per-stage totals, peak memory and time-to-accuracy.

CUDA kernels run asynchronously, so a host clock read without ``torch.cuda.synchronize``
measures launch time, not work. ``Stopwatch`` synchronises at start and stop. ``EpochTimer``
synchronises only at the epoch boundaries (a sync per step would slow training down); the
time the host spends blocked in ``next(loader)`` is the data wait, the rest is compute.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import torch

from bench.training.runtime import DistEnv, all_reduce_max, all_reduce_mean

B = TypeVar("B")


def synchronize(device: Optional[torch.device]) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Accumulating timer: ``with sw: ...`` or ``sw.start(); ...; sw.stop()``.

    ``elapsed`` is the total of all timed spans in seconds.
    """

    def __init__(self, device: Optional[torch.device] = None) -> None:
        self.device = device
        self.elapsed = 0.0
        self._t0: Optional[float] = None

    def start(self) -> "Stopwatch":
        synchronize(self.device)
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> float:
        """End the current span; returns its length."""
        if self._t0 is None:
            raise RuntimeError("Stopwatch.stop() without start()")
        synchronize(self.device)
        span = time.perf_counter() - self._t0
        self._t0 = None
        self.elapsed += span
        return span

    def __enter__(self) -> "Stopwatch":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class EpochTimes:
    total_seconds: float = 0.0  # wall-clock of the training loop (max over ranks)
    data_seconds: float = 0.0  # blocked waiting for the next batch (mean over ranks)
    steps: int = 0

    @property
    def compute_seconds(self) -> float:
        return max(0.0, self.total_seconds - self.data_seconds)

    @property
    def data_wait_share(self) -> float:
        return self.data_seconds / self.total_seconds if self.total_seconds > 0 else 0.0


class EpochTimer:
    """Times one training epoch: ``for batch in timer.iterate(loader): step(batch)``.

    Put only the training loop inside (evaluation excluded). After the loop,
    ``timer.result(env)`` gives the epoch's :class:`EpochTimes`, reduced over ranks.
    """

    def __init__(self, device: Optional[torch.device] = None) -> None:
        self.device = device
        self.times = EpochTimes()

    def iterate(self, loader: Iterable[B]) -> Iterator[B]:
        synchronize(self.device)
        start = time.perf_counter()
        data = 0.0
        steps = 0
        it = iter(loader)
        try:
            while True:
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    break
                data += time.perf_counter() - t0
                if batch is None:  # every item of it was unreadable and dropped (--skip-bad)
                    continue
                steps += 1
                yield batch
        finally:  # also when the loop body breaks or raises (e.g. the NaN guard)
            synchronize(self.device)
            self.times = EpochTimes(time.perf_counter() - start, data, steps)

    def result(self, env: Optional[DistEnv] = None) -> EpochTimes:
        """Epoch times; when distributed, total is the slowest rank's and data the mean
        (collective: every rank must call it)."""
        t = self.times
        if env is None or not env.distributed:
            return t
        return EpochTimes(
            float(all_reduce_max(t.total_seconds, env)), float(all_reduce_mean(t.data_seconds, env)), t.steps
        )


@dataclass
class StageClock:
    """Training seconds per stage, accumulated over epochs and across resumes
    (store ``as_dict()`` in the checkpoint's ``extra`` and restore with ``from_dict``)."""

    seconds: Dict[str, float] = field(default_factory=dict)
    data_seconds: Dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, times: Union[EpochTimes, float]) -> None:
        total, data = (
            (times.total_seconds, times.data_seconds) if isinstance(times, EpochTimes) else (times, 0.0)
        )
        self.seconds[stage] = self.seconds.get(stage, 0.0) + float(total)
        self.data_seconds[stage] = self.data_seconds.get(stage, 0.0) + float(data)

    @property
    def total(self) -> float:
        return float(sum(self.seconds.values()))

    @property
    def data_wait_share(self) -> float:
        return sum(self.data_seconds.values()) / self.total if self.total > 0 else 0.0

    def as_dict(self) -> Dict[str, Dict[str, float]]:
        return {"seconds": dict(self.seconds), "data_seconds": dict(self.data_seconds)}

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Mapping[str, float]]]) -> "StageClock":
        d = d or {}
        return cls(dict(d.get("seconds", {})), dict(d.get("data_seconds", {})))


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak memory allocated by tensors on ``device`` (since the last reset).
    CPU: the process's peak resident set size (everything the process touched, including
    the Python runtime and libraries; it cannot be reset)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


CurvePoint = Union[Tuple[float, float], Sequence[float], Mapping[str, float]]


def time_to_accuracy(curve: Iterable[CurvePoint], target: float, key: str = "top1") -> Optional[float]:
    """Training seconds at which the curve first reaches ``target`` (``acc >= target``), or None.

    ``curve`` points are ``(seconds, acc)`` pairs or dicts ``{"train_seconds", key}`` as in
    ``summary.json``'s ``curve``; they are taken in time order. No interpolation: accuracy
    is only known at evaluated epochs.
    """
    points = []
    for p in curve:
        if isinstance(p, Mapping):
            points.append((float(p["train_seconds"]), p.get(key)))
        else:
            points.append((float(p[0]), p[1]))
    for seconds, acc in sorted(points, key=lambda x: x[0]):
        if acc is not None and float(acc) >= target:
            return seconds
    return None
