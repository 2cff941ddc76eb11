"""Where and how a run executes: device, seeds, determinism and the distributed env (numeric precision
and memory layout: ``bench.training.precision``).

Distributed runs follow torchrun's contract (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT): NCCL on CUDA, gloo on CPU. Without those variables everything here
degrades to a single process, and every collective helper is then the identity.
"""

from __future__ import annotations

import datetime
import os
import random
from dataclasses import dataclass
from typing import Any, Iterable, List, Tuple, TypeVar, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from bench.errors import UsageError

Number = TypeVar("Number", float, torch.Tensor)


# ---------------------------------------------------------------------- device, seeds
def resolve_device(pref: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` / ``cuda:N`` must exist."""
    pref = (pref or "auto").strip().lower()
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {pref}: CUDA is not available on this machine; use --device cpu or auto"
            )
        device = torch.device(pref)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"--device {pref}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return device
    raise UsageError(f"--device {pref}: expected auto, cpu, cuda or cuda:N")


def seed_everything(seed: int, rank: int = 0) -> int:
    """Seed python, numpy and torch (all devices) with ``seed + rank``; returns that seed."""
    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return s


def set_deterministic(flag: bool) -> None:
    """Ask PyTorch for deterministic kernels (warn, not fail, where none exists) and turn
    cudnn autotuning off. CUBLAS_WORKSPACE_CONFIG must be set before cuBLAS starts, so call
    this before the first CUDA matmul."""
    if flag:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(flag, warn_only=True)
    torch.backends.cudnn.deterministic = flag
    if flag:
        torch.backends.cudnn.benchmark = False


def configure_cuda_speed(device: torch.device) -> None:
    """On CUDA and not deterministic: cudnn autotuning and TF32 matmuls (standard practice for
    fixed-size inputs). A no-op on CPU."""
    if device.type != "cuda" or torch.are_deterministic_algorithms_enabled():
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def local_world_size() -> int:
    """Ranks on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def default_num_workers(local_world_size: int = 1) -> int:
    """DataLoader workers per process: the cores this process may use, shared among the
    local ranks, minus one for the main process; at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(0, min(8, cores // max(1, local_world_size) - 1))


def cpu_threads(num_workers: int, local_world_size: int = 1) -> int:
    """Intra-op threads for CPU training: ``OMP_NUM_THREADS`` when set (torchrun sets it to 1 when
    it starts several ranks), else this rank's share of the cores left after the DataLoader
    workers (at least 1).

    Oversubscribed cores make OpenMP threads spin against each other: on a busy 2-core machine a
    tiny-preset V1 stage-2 step took 0.35-0.55 s with 2 threads and 0.1 s with 1."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(local_world_size)) - int(num_workers))


# ---------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


DIST_TIMEOUT_ENV = "ADABENCH_DIST_TIMEOUT"
DEFAULT_DIST_TIMEOUT_S = 1800


def dist_timeout() -> datetime.timedelta:
    """How long a collective waits for the other ranks before failing (``$ADABENCH_DIST_TIMEOUT``
    seconds, default 30 min): a rank that crashed or hangs ends the run instead of blocking it forever.
    Must exceed the longest stretch one rank works alone (rank 0 writing checkpoints, FLOPs counting)."""
    raw = os.environ.get(DIST_TIMEOUT_ENV, "").strip()
    if not raw:
        return datetime.timedelta(seconds=DEFAULT_DIST_TIMEOUT_S)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise UsageError(f"{DIST_TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return datetime.timedelta(seconds=seconds)


def init_distributed(device_pref: str = "auto") -> DistEnv:
    """Read torchrun's environment; start the process group when WORLD_SIZE > 1.

    CUDA: one device per local rank (``cuda:LOCAL_RANK``) and NCCL; CPU: gloo.
    Not launched by torchrun: a single-process ``DistEnv`` on ``resolve_device(device_pref)``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistEnv(device=resolve_device(device_pref))
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise UsageError(f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; launch with torchrun")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    device = resolve_device(device_pref)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) visible"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend, init_method="env://", rank=rank, world_size=world_size, timeout=dist_timeout()
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def start_process(device_pref: str, seed: int, deterministic: bool) -> DistEnv:
    """What every run does first, in this order: join the process group (if launched by torchrun),
    fix determinism and cuDNN speed settings, seed every RNG (offset by rank)."""
    env = init_distributed(device_pref)
    set_deterministic(deterministic)
    configure_cuda_speed(env.device)
    seed_everything(seed, env.rank)
    return env


def _as_tensor(x: Union[float, torch.Tensor], env: DistEnv) -> Tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x.detach().to(env.device).clone(), True
    return torch.tensor(float(x), dtype=torch.float64, device=env.device), False


def _all_reduce(x: Number, env: DistEnv, op: Any, mean: bool = False) -> Number:
    if not env.distributed:
        return x
    t, was_tensor = _as_tensor(x, env)
    dist.all_reduce(t, op=op)
    if mean:
        t = t / env.world_size
    if isinstance(x, torch.Tensor):  # == was_tensor, spelled so the type checker narrows x
        return t.to(x.device)
    return float(t.item())


def all_reduce_mean(x: Number, env: DistEnv) -> Number:
    return _all_reduce(x, env, dist.ReduceOp.SUM, mean=True)


def all_reduce_max(x: Number, env: DistEnv) -> Number:
    """Max over ranks: wall-clock of a synchronous step is the slowest rank's."""
    return _all_reduce(x, env, dist.ReduceOp.MAX)


def all_gather_cat(x: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Concatenate every rank's ``x`` ``[n_r, ...]`` along dim 0, in rank order -> ``[sum n_r, ...]``.

    Ranks may hold different ``n_r`` (the trailing shape must agree): rows are padded to the
    largest ``n_r`` for the collective and trimmed afterwards.
    """
    if not env.distributed:
        return x
    src = x.detach().to(env.device)
    is_bool = src.dtype == torch.bool
    if is_bool:  # not every backend gathers bool
        src = src.to(torch.uint8)
    n = torch.tensor([src.shape[0]], dtype=torch.int64, device=env.device)
    sizes = [torch.zeros_like(n) for _ in range(env.world_size)]
    dist.all_gather(sizes, n)
    counts = [int(s.item()) for s in sizes]
    padded = src.new_zeros((max(counts), *src.shape[1:]))
    padded[: src.shape[0]] = src
    parts = [torch.empty_like(padded) for _ in range(env.world_size)]
    dist.all_gather(parts, padded.contiguous())
    out = torch.cat([p[:c] for p, c in zip(parts, counts)], dim=0).to(x.device)
    return out.bool() if is_bool else out


def unique_by_index(index: torch.Tensor, *tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Drop repeated items after a gather and sort by item index.

    A ``DistributedSampler`` pads the last batch by repeating items so every rank gets the
    same count; gathering ``index [N]`` with the outputs and keeping one row per index makes
    the evaluation exact. Returns ``(index [M], *tensors [M, ...])``, M = distinct indices.
    """
    order = torch.argsort(index, stable=True)
    sorted_index = index[order]
    keep = torch.ones_like(sorted_index, dtype=torch.bool)
    keep[1:] = sorted_index[1:] != sorted_index[:-1]
    rows = order[keep]
    return (index[rows], *(t[rows] for t in tensors))


def barrier(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def cleanup(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def _bare(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def broadcast_module_state(module: nn.Module, env: DistEnv, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's ``module`` in place.

    Used at start (ranks seeded differently build different initial weights) and before each
    evaluation/checkpoint: BatchNorm running statistics are updated from each rank's own
    batches, so without this the ranks would evaluate with slightly different networks."""
    if not env.distributed:
        return
    for t in _bare(module).state_dict(keep_vars=True).values():
        if not isinstance(t, torch.Tensor):
            continue
        if t.data.is_contiguous():
            dist.broadcast(t.data, src=src)
        else:  # e.g. channels_last conv weights: collectives want dense tensors
            dense = t.data.contiguous()
            dist.broadcast(dense, src=src)
            t.data.copy_(dense)


def average_gradients(params: Iterable[nn.Parameter], env: DistEnv) -> None:
    """Average the gradients of ``params`` over ranks, in place: one flat all-reduce after backward (DDP's
    arithmetic, without its bucketing). Every method's update calls it, so all are synchronised the same
    way. Every rank runs the same graph, so the same parameters have gradients on all ranks. Single
    process: a no-op."""
    if not env.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(env.world_size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def gather_objects(obj: Any, env: DistEnv) -> List[Any]:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` in a single process)."""
    if not env.distributed:
        return [obj]
    out: List[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, env: DistEnv, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``obj`` on every rank (e.g. a run directory chosen by rank 0)."""
    if not env.distributed:
        return obj
    box: List[Any] = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
