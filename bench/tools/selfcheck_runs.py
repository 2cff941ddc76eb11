"""``adabench selfcheck``: the checks that train whole (micro) runs, and the DDP check.

- ``matched_run``: a 1-epoch matched run of every registered method on the device through the real runner
  (``bench.runs.runner.run_all``) writes a complete run directory whose summary has a time for every stage, a
  peak memory figure and the device.
- ``resume_is_exact``: every method, ``--deterministic``, interrupted right after its first checkpoint and run
  again, ends with the losses, weights and accuracy of an uninterrupted run (``tests/test_resume_kill.py``
  does the same with real SIGKILLs on the CPU).
- ``ddp_averages``: ``torchrun`` ranks of ``bench.tools.selfcheck_ddp`` (NCCL on CUDA, gloo on CPU).

Runs use a micro synthetic set (2 classes, 32x32, 4 frames) and ``RUN_SETS``, shared preset fields only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import torch

# shared preset fields (every method has them): micro networks, and no weight files (nothing is downloaded)
RUN_SETS = {
    "frames": "4",
    "input_size": "32",
    "resize": "32",
    "patch_size": "16",
    "glance_size": "16",
    "classifier_hidden": "16",
    "policy_hidden": "[16]",
    "policy_conv_channels": "8",
    "grid_n": "3",
    "batch_size": "4",
    "glance_pretrained": "null",
    "focus_pretrained": "null",
}
RUN_FILES = ("config.yaml", "manifest.json", "metrics.csv", "log.txt", "summary.json", "checkpoints/last.pt")


def micro_set(root: Path) -> Path:
    """The micro synthetic set (generated once under ``root``)."""
    from bench.data import generate_synthetic

    if (root / "meta.json").is_file():
        return root
    return generate_synthetic(
        root, classes=2, videos_per_class=(4, 2), frames=4, size=32, object_size=8, clutter=2, workers=1
    )


@contextlib.contextmanager
def torch_settings() -> Iterator[None]:
    """A run sets process-wide torch flags (threads, determinism, cuDNN/TF32); put them back afterwards."""
    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
    )
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        (
            torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark,
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
        ) = saved[2:]


def _configs(
    data_root: Path,
    runs_dir: Path,
    device: torch.device,
    *,
    epochs: int = 1,
    deterministic: bool = False,
    precision: str = "auto",
) -> List[Any]:
    """The micro matched experiment of every method; ``epochs`` for a multi-stage method is per stage
    (``--epochs`` scales its stages to at least 1 each), a single-stage method gets ``2 * epochs`` (so an
    interrupt after its
    first checkpoint falls between epochs too)."""
    from bench.methods import get_method, method_names
    from bench.runs.config import RunConfig
    from bench.runs.experiment import plan_runs

    names = method_names()
    base = RunConfig(
        method=names[0],
        dataset="synthetic",
        data_root=str(data_root),
        preset="tiny",
        epochs=epochs,
        device=str(device),
        runs_dir=str(runs_dir),
        deterministic=deterministic,
        num_workers=0,
        progress=False,
        quiet=True,
        overrides=dict(RUN_SETS),
        seed=1,
        precision=precision,
    )
    return [
        cfg if len(get_method(cfg.method).stage_names) > 1 else dataclasses.replace(cfg, epochs=2 * epochs)
        for cfg in plan_runs(base, names)
    ]


def _run(configs: List[Any]) -> List[Dict[str, Any]]:
    from bench.runs.runner import run_all

    with torch_settings():
        return run_all(configs, echo=lambda line: None)


def matched_run(device: torch.device, work: Path) -> Tuple[bool, str]:
    """1 epoch of every method; every run directory complete, with stage times and a peak-memory figure."""
    from bench.methods import get_method
    from bench.runs.rundir import RunDir

    configs = _configs(micro_set(work / "set"), work / "runs", device)
    summaries = _run(configs)
    problems, notes = [], []
    for cfg, s in zip(configs, summaries):
        path = RunDir.for_config(cfg).path
        missing = [f for f in RUN_FILES if not (path / f).is_file()]
        stages = get_method(cfg.method).stage_names
        times = s.get("stage_seconds") or {}
        if missing:
            problems.append(f"{cfg.method}: missing {', '.join(missing)}")
        if sorted(times) != sorted(stages) or not all(t > 0 for t in times.values()):
            problems.append(f"{cfg.method}: stage times {times} (expected > 0 for {', '.join(stages)})")
        if not (s.get("peak_memory_mb") or 0) > 0:
            problems.append(f"{cfg.method}: no peak memory figure")
        if not str(s.get("device", "")).startswith(device.type):
            problems.append(f"{cfg.method}: ran on {s.get('device')}")
        notes.append(
            f"{cfg.method}: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
            + f", peak {s.get('peak_memory_mb', 0):.0f} MB"
        )
    return not problems, "; ".join(problems or notes)


class Interrupted(KeyboardInterrupt):
    """Raised by ``interrupt_after_first_checkpoint`` (a Ctrl-C right after the first ``last.pt``)."""


@contextlib.contextmanager
def interrupt_after_first_checkpoint() -> Iterator[None]:
    """The driver's ``save_checkpoint``, which raises ``Interrupted`` once, right after writing the first
    ``last.pt`` of the block."""
    import bench.training.driver as driver

    real = driver.save_checkpoint
    fired: List[Any] = []

    def save(path: Any, *args: Any, **kwargs: Any) -> Any:
        out = real(path, *args, **kwargs)
        if not fired and Path(path).name == "last.pt":
            fired.append(path)
            raise Interrupted()
        return out

    driver.save_checkpoint = save
    try:
        yield
    finally:
        driver.save_checkpoint = real


def _weights(path: Path) -> Dict[str, torch.Tensor]:
    from bench.training.checkpoint import read_checkpoint

    return read_checkpoint(path / "checkpoints" / "last.pt")["modules"]["net"]


def resume_is_exact(device: torch.device, work: Path) -> Tuple[bool, str]:
    """Every method twice, deterministic, fp32: straight, and interrupted after its first checkpoint then
    resumed by
    the same call; train losses per epoch, weights and final top-1 must be identical."""
    from bench.io import read_csv_rows
    from bench.runs.rundir import RunDir
    from bench.training.checkpoint import read_checkpoint

    root = micro_set(work / "set")
    straight = _configs(root, work / "straight", device, deterministic=True, precision="fp32")
    resumed = _configs(root, work / "resumed", device, deterministic=True, precision="fp32")
    _run(straight)
    problems, notes = [], []
    for ref_cfg, cfg in zip(straight, resumed):
        with interrupt_after_first_checkpoint():
            try:
                _run([cfg])
                problems.append(f"{cfg.method}: was not interrupted")
            except Interrupted:
                pass
        run, ref = RunDir.for_config(cfg), RunDir.for_config(ref_cfg)
        blob = read_checkpoint(run.last_checkpoint)
        where = f"{blob['stage']} epoch {blob['epoch'] + 1}"
        _run([cfg])
        got, want = read_csv_rows(run.metrics_path), read_csv_rows(ref.metrics_path)
        wa, wb = _weights(run.path), _weights(ref.path)
        same_weights = wa.keys() == wb.keys() and all(torch.equal(wa[k].cpu(), wb[k].cpu()) for k in wa)
        gap = max(
            (
                float((wa[k].cpu().double() - wb[k].cpu().double()).abs().max())
                for k in wa
                if k in wb and wa[k].is_floating_point() and wa[k].shape == wb[k].shape
            ),
            default=0.0,
        )
        same_losses = [r["train_loss"] for r in got] == [r["train_loss"] for r in want]
        top1 = (run.read_summary()["top1"], ref.read_summary()["top1"])
        if not (same_weights and same_losses and top1[0] == top1[1]):
            problems.append(
                f"{cfg.method}: resumed run differs (weights "
                f"{'same' if same_weights else f'differ by {gap:.1e}'}, "
                f"losses {'same' if same_losses else 'differ'}, top-1 {top1[0]} vs {top1[1]})"
            )
        notes.append(f"{cfg.method}: interrupted after {where} of {len(want)} epochs, resumed identically")
    return not problems, "; ".join(problems or notes)


def ddp_ranks(device: torch.device) -> int:
    """Ranks of the DDP check: 2 gloo ranks on a CPU; one per GPU, at most 2, on CUDA (NCCL does not put two
    ranks on one GPU, so one GPU gives a one-rank NCCL group)."""
    return 2 if device.type == "cpu" else max(1, min(2, torch.cuda.device_count()))


def ddp_averages(device: torch.device, work: Path, timeout: float = 600.0) -> Tuple[bool, str]:
    """``torchrun --nproc_per_node N -m bench.tools.selfcheck_ddp``: see that module; rank 0 writes its
    findings."""
    n = ddp_ranks(device)
    out = work / "ddp.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", ADABENCH_DIST_TIMEOUT="120")
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(n),
        "--module",
        "bench.tools.selfcheck_ddp",
        str(out),
        device.type,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not out.is_file():
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:])
        return False, f"{n} rank(s) exited with {proc.returncode}: {tail[:400]}"
    found = json.loads(out.read_text())
    ok = (
        found["grad_error"] <= 1e-6
        and all(v == 0.0 for v in found["param_spread"].values())
        and found["world_size"] == n
    )
    spreads = ", ".join(f"{k} {v:g}" for k, v in found["param_spread"].items())
    return ok, (
        f"{found['world_size']} rank(s), backend {found['backend']}: averaged gradient error "
        f"{found['grad_error']:.1e}; parameter spread over ranks after one driver step: {spreads}"
    )


__all__ = [
    "RUN_SETS",
    "matched_run",
    "resume_is_exact",
    "ddp_averages",
    "ddp_ranks",
    "micro_set",
    "torch_settings",
]
