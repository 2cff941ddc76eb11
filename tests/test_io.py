"""Atomic writes, CSV appends with growing columns, and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import io
from bench.errors import UsageError


def test_atomic_writes_round_trip(tmp_path: Path) -> None:
    io.atomic_write_text(tmp_path / "a" / "t.txt", "héllo")
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "héllo"
    io.atomic_write_json(
        tmp_path / "j.json",
        {
            "x": np.float32(0.5),
            "n": float("nan"),
            "t": torch.tensor(3),
            "arr": np.arange(3),
            "p": tmp_path,
            "tup": (1, 2),
        },
    )
    data = io.read_json(tmp_path / "j.json")
    assert data == {"x": 0.5, "n": None, "t": 3, "arr": [0, 1, 2], "p": str(tmp_path), "tup": [1, 2]}
    io.atomic_write_yaml(tmp_path / "c.yaml", {"b": 1, "a": [1, 2]})
    assert io.read_yaml(tmp_path / "c.yaml") == {"b": 1, "a": [1, 2]}
    io.atomic_torch_save({"w": torch.arange(4)}, tmp_path / "x.pt")
    assert torch.equal(torch.load(tmp_path / "x.pt")["w"], torch.arange(4))
    assert not list(tmp_path.glob(".*.tmp")), "temp files must not be left behind"


def test_failed_write_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "s.json"
    io.atomic_write_json(target, {"ok": 1})
    with pytest.raises((TypeError, AttributeError)):
        io.atomic_torch_save(lambda: 0, target)  # a lambda cannot be pickled: the write fails midway
    assert io.read_json(target) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_read_json_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "summary.json"
    bad.write_text('{"top1": 0.5,')
    with pytest.raises(UsageError) as e:
        io.read_json(bad)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError, match="not found"):
        io.read_json(tmp_path / "missing.json")
    (tmp_path / "c.yaml").write_text("a: [1, 2\n")
    with pytest.raises(UsageError, match="malformed YAML"):
        io.read_yaml(tmp_path / "c.yaml")


def _writer(directory: str, worker: int, n: int) -> None:
    d = Path(directory)
    for i in range(n):
        io.atomic_write_json(d / "summary.json", {"worker": worker, "i": i, "pad": "x" * 5000})


def test_concurrent_writers_never_corrupt(tmp_path: Path) -> None:
    workers, n = 4, 15
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    # read while they write: a reader must always see a complete JSON document
    seen = 0
    while any(p.is_alive() for p in procs):
        if (tmp_path / "summary.json").exists():
            assert json.loads((tmp_path / "summary.json").read_text())["pad"] == "x" * 5000
            seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert not list(tmp_path.glob(".*.tmp"))
    assert os.path.getsize(tmp_path / "summary.json") > 5000
