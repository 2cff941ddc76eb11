"""Stopwatch, data-wait separation, stage accumulation, peak memory, time-to-accuracy."""

from __future__ import annotations

import time

import pytest
import torch

from bench.training.timing import EpochTimer, StageClock, Stopwatch, peak_memory_mb, time_to_accuracy


class SlowLoader:
    """Each batch takes ``wait`` seconds to arrive."""

    def __init__(self, n: int, wait: float) -> None:
        self.n, self.wait = n, wait

    def __iter__(self):
        for i in range(self.n):
            time.sleep(self.wait)
            yield i


def test_stopwatch_accumulates() -> None:
    sw = Stopwatch(torch.device("cpu"))
    with sw:
        time.sleep(0.02)
    span = sw.start().stop()
    assert 0.02 <= sw.elapsed and span < 0.02
    with pytest.raises(RuntimeError):
        Stopwatch().stop()


def test_epoch_timer_separates_data_wait_from_compute() -> None:
    timer = EpochTimer(torch.device("cpu"))
    seen = []
    for batch in timer.iterate(SlowLoader(4, wait=0.03)):
        time.sleep(0.01)  # "compute"
        seen.append(batch)
    t = timer.result()
    assert seen == [0, 1, 2, 3] and t.steps == 4
    assert t.data_seconds >= 0.12 and t.compute_seconds >= 0.04
    assert t.total_seconds == pytest.approx(t.data_seconds + t.compute_seconds)
    assert 0.5 < t.data_wait_share < 0.95  # 0.75 expected; loose for a loaded machine


def test_epoch_timer_records_when_the_loop_stops_early() -> None:
    timer = EpochTimer()
    with pytest.raises(ZeroDivisionError):
        for i in timer.iterate(SlowLoader(5, 0.0)):
            if i == 2:
                raise ZeroDivisionError
    assert timer.times.steps == 3


def test_stage_clock_round_trips_through_a_checkpoint_dict() -> None:
    clock = StageClock()
    timer = EpochTimer()
    for _ in timer.iterate(SlowLoader(2, 0.01)):
        pass
    clock.add("stage1", timer.result())
    clock.add("stage1", 1.0)
    clock.add("stage2", 2.0)
    again = StageClock.from_dict(clock.as_dict())
    assert again.seconds == clock.seconds and again.total == pytest.approx(3.0 + timer.times.total_seconds)
    assert again.data_wait_share == pytest.approx(timer.times.data_seconds / again.total)
    assert timer.times.data_seconds >= 0.02
    assert StageClock.from_dict(None).total == 0.0


def test_peak_memory_cpu_is_positive_and_grows() -> None:
    before = peak_memory_mb(torch.device("cpu"))
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    block += 1
    after = peak_memory_mb(torch.device("cpu"))
    assert before > 10 and after >= before
    del block


def test_time_to_accuracy() -> None:
    curve = [(10.0, 0.2), (20.0, 0.5), (30.0, 0.45), (40.0, 0.7)]
    assert time_to_accuracy(curve, 0.5) == 20.0
    assert time_to_accuracy(curve, 0.6) == 40.0
    assert time_to_accuracy(curve, 0.8) is None
    assert time_to_accuracy(list(reversed(curve)), 0.45) == 20.0  # taken in time order
    dicts = [
        {"train_seconds": 5.0, "top1": 0.1, "map": 0.3},
        {"train_seconds": 9.0, "top1": 0.4, "map": None},
    ]
    assert time_to_accuracy(dicts, 0.3) == 9.0
    assert time_to_accuracy(dicts, 0.3, key="map") == 5.0
    assert time_to_accuracy([], 0.1) is None
