"""Every file the trainers, the run directory and the reports write goes through ``bench.io``'s atomic
writers (temporary file in the same directory + ``os.replace``), so a kill never leaves a half-written
checkpoint, metrics file, summary, report or plot. This scans the sources for raw writers; the few
that remain are listed below with the reason they are safe."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCES = [
    "cli.py",
    *[
        str(p.relative_to(REPO))
        for d in ("commands", "bench", "adafocus_v1", "adafocus_v2", "reports")
        for p in sorted((REPO / d).rglob("*.py"))
    ],
]
RAW_WRITERS = re.compile(
    r"torch\.save\(|np\.save\(|json\.dump\(|\.savefig\((?!buf)|\.to_(csv|parquet)\((?!index=|buf)"
    r"|\.write_(text|bytes)\(|open\([^)]*[\"'][wax]b?[\"']"
)
# file -> why its raw writes are safe
ALLOWED = {
    "bench/io.py": "the atomic writers themselves (temp file + fsync + os.replace)",
    "bench/runs/rundir.py": "log.txt: appends one whole line per write call",
    "bench/data/dataset.py": "a per-process temp log of skipped items (appends whole lines)",
    "bench/data/synthetic_files.py": "writes into a temporary directory that is renamed into place "
    "when complete",
    "bench/data/synthetic_dataset.py": "frame cache: mkstemp in the same directory + os.replace",
    "bench/runs/experiment.py": "shared initial weights: a pid-named temp file hard-linked into place "
    "(first writer wins)",
    "bench/models/pretrain.py": "cached texture weights: mkstemp in the same directory + os.replace",
}


def test_no_raw_writers_outside_the_atomic_ones():
    offenders = []
    for rel in SOURCES:
        if rel in ALLOWED:
            continue
        for no, line in enumerate((REPO / rel).read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if RAW_WRITERS.search(code) and "av.open(" not in code and "Image.open(" not in code:
                offenders.append(f"{rel}:{no}: {line.strip()}")
    assert not offenders, "write through bench.io (atomic):\n" + "\n".join(offenders)


def test_the_allowed_files_still_exist():
    assert all((REPO / rel).is_file() for rel in ALLOWED)
