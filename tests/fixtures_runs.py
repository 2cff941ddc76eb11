"""Micro end-to-end runs through the real command line, for the reliability tests.

``micro_set`` writes a tiny synthetic-layout set (frame folders, 20BN CSVs); ``easy`` makes the two
classes separable by brightness, so a few seconds of training already reach high accuracy (the
distributed test needs an accuracy that means something). ``V2_ARGS`` / ``V1_ARGS`` shrink the tiny
preset to 32x32 frames; every run uses 0 loader workers and one intra-op thread, so it is exactly
reproducible in or out of process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SIZE, FRAMES = 32, 4

V2_ARGS = [
    "--set",
    f"frames={FRAMES}",
    "--set",
    "batch_size=4",
    "--set",
    f"input_size={SIZE}",
    "--set",
    f"resize={SIZE}",
    "--set",
    "patch_size=16",
    "--set",
    "classifier_hidden=32",
    "--set",
    "policy_hidden=[32]",
]
V1_ARGS = [
    "--set",
    f"frames={FRAMES}",
    "--set",
    f"input_size={SIZE}",
    "--set",
    f"resize={SIZE}",
    "--set",
    "patch_size=16",
    "--set",
    "glance_size=16",
    "--set",
    "classifier_hidden=16",
    "--set",
    "policy_hidden=[16]",
    "--set",
    "policy_conv_channels=8",
    "--set",
    "grid_n=3",
    "--set",
    "batch_size=4",
]


def micro_set(
    root: Path, *, train: int = 8, val: int = 4, easy: bool = False, odd_val: bool = False, seed: int = 0
) -> Path:
    """``train``/``val`` videos per class of two classes; ``easy``: dark vs bright frames + noise
    (``odd_val``: one val video fewer in the last class, so a DistributedSampler must pad)."""
    if not easy:
        from bench.data import generate_synthetic

        return generate_synthetic(
            root,
            classes=2,
            videos_per_class=(train, val),
            frames=FRAMES,
            size=SIZE,
            object_size=8,
            clutter=2,
            workers=1,
        )
    rng = np.random.default_rng(seed)
    names = ["0-dark", "1-bright"]
    (root / "frames").mkdir(parents=True)
    (root / "synthetic-labels.csv").write_text("".join(f"{n}\n" for n in names))
    for split, n, fname in (("train", train, "train"), ("val", val, "validation")):
        rows = []
        for label, name in enumerate(names):
            for k in range(n - int(odd_val and split == "val" and label == len(names) - 1)):
                vid = f"{split}-{label}-{k:03d}"
                d = root / "frames" / vid
                d.mkdir()
                base = 70 + 110 * label
                for f in range(1, FRAMES + 1):
                    img = np.clip(base + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
                    Image.fromarray(img).save(d / f"{f:05d}.jpg", quality=95)
                rows.append(f"{vid};{name}\n")
        (root / f"synthetic-{fname}.csv").write_text("".join(rows))
    return root


# focus_set: the glance must not see the class (antialiased 8x downsampling to 4x4 averages every 4-px
# checker cell away), and a 16-px patch at the centre sees only flat colour
FOCUS_ARGS = ["--set", "glance_size=4", "--set", "batch_size=8", "--set", "policy_lr_ratio=1.0"]


def focus_set(root: Path, *, train: int = 16, val: int = 8, seed: int = 0) -> Path:
    """Two classes that only a patch away from the centre tells apart: class 0 shows a high-contrast
    checkerboard (4-px cells, random colours and phase) everywhere but the central 16x16 square, which is
    flat; class 1 is flat everywhere, in the checkerboard's mean colour. A policy must learn to look off
    the centre: with the patch frozen at the centre a model is at chance."""
    rng = np.random.default_rng(seed)
    names = ["0-checker", "1-flat"]
    (root / "frames").mkdir(parents=True)
    (root / "synthetic-labels.csv").write_text("".join(f"{n}\n" for n in names))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    lo, hi = SIZE // 4, 3 * SIZE // 4
    centre = (yy >= lo) & (yy < hi) & (xx >= lo) & (xx < hi)
    for split, n, fname in (("train", train, "train"), ("val", val, "validation")):
        rows = []
        for label, name in enumerate(names):
            for k in range(n):
                vid = f"{split}-{label}-{k:03d}"
                (root / "frames" / vid).mkdir()
                a, b, phase = rng.uniform(20, 60, 3), rng.uniform(195, 235, 3), rng.integers(0, 8)
                checker = (((yy + phase) // 4 + (xx + phase) // 4) % 2 == 0)[..., None]
                flat = (centre | (label == 1))[..., None]
                img = np.where(flat, (a + b) / 2, np.where(checker, a, b))
                for f in range(1, FRAMES + 1):
                    noisy = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
                    Image.fromarray(noisy).save(root / "frames" / vid / f"{f:05d}.jpg", quality=95)
                rows.append(f"{vid};{name}\n")
        (root / f"synthetic-{fname}.csv").write_text("".join(rows))
    return root


def base_args(method: str, data_root: Path, runs_dir: Path, *extra: str) -> List[str]:
    preset_args = V2_ARGS if method == "v2" else V1_ARGS
    return [
        "run",
        "--method",
        method,
        "--data-root",
        str(data_root),
        "--runs-dir",
        str(runs_dir),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--no-progress",
        "--quiet",
        "--seed",
        "1",
        *preset_args,
        *extra,
    ]


def child_env() -> Dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


@pytest.fixture()
def one_thread(monkeypatch):
    """In-process runs: one intra-op thread (what the subprocesses get from OMP_NUM_THREADS=1), and the
    global torch flags a run sets are put back afterwards."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def run_in_process(argv: Sequence[str]) -> int:
    """``adabench <argv>`` in this process; returns the exit code."""
    from cli import main

    try:
        main(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def start(argv: Sequence[str], **kw) -> subprocess.Popen:
    """``python -m cli <argv>`` in a child process (stdout/stderr captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *argv],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (polled every 20 ms). Fails the test if the
    process ends first or ``ready`` never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed:\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    pytest.fail("the kill condition never held")


def only_run_dir(runs_dir: Path, method: str) -> Optional[Path]:
    found = sorted((runs_dir / "synthetic" / method).glob("*/config.yaml"))
    return found[0].parent if found else None
