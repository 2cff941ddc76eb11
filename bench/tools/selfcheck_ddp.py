"""The DDP check's worker: ``torchrun --nproc_per_node N -m bench.tools.selfcheck_ddp OUT.json cpu|cuda``.

Every rank joins the group the way a run does (``bench.training.runtime.init_distributed``: NCCL on CUDA, gloo
on CPU; with one rank, which a run never groups, a one-rank group on the same backend), then:

1. ``average_gradients`` on gradients that differ by rank must give their mean on every rank;
2. every registered method: the same initial weights (``broadcast_module_state``), one driver step of each
   stage on a different batch per rank; the parameters must then be identical on all ranks (the update
   averaged the gradients; BatchNorm statistics are per rank and not compared).

Rank 0 writes ``{"backend", "world_size", "grad_error", "param_spread": {method/stage: max |difference|}}``.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any, Dict, cast

import torch
import torch.distributed as dist


def _join(device_type: str) -> Any:
    from bench.training.runtime import DistEnv, dist_timeout, init_distributed

    env = init_distributed(device_type)
    if env.distributed:
        return env
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if device_type == "cuda" else env.device
    )
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        init_method="env://",
        rank=0,
        world_size=1,
        timeout=dist_timeout(),
    )
    return DistEnv(device=device)


def _forced(env: Any) -> Any:
    """``env`` as the averaging code sees it; a one-rank group still goes through the all-reduce."""
    return (
        env if env.distributed else SimpleNamespace(distributed=True, world_size=1, rank=0, device=env.device)
    )


def _gradient_error(env: Any) -> float:
    from bench.training.runtime import average_gradients

    rank, world = dist.get_rank(), dist.get_world_size()
    grads = [
        torch.full((5, 3), float(rank + 1), device=env.device),
        torch.arange(4.0, device=env.device) * rank,
    ]
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    average_gradients(params, _forced(env))
    expected = [
        torch.full((5, 3), (world + 1) / 2, device=env.device),
        torch.arange(4.0, device=env.device) * (world - 1) / 2,
    ]
    return max(
        float((cast(torch.Tensor, p.grad) - e).abs().max()) for p, e in zip(params, expected)
    )  # set above


def _param_spread(env: Any) -> Dict[str, float]:
    from bench.methods import method_names
    from bench.tools.selfcheck_runs import RUN_SETS
    from bench.tools.selfcheck_steps import build_stages, random_batch, tiny_preset
    from bench.training.runtime import broadcast_module_state

    forced = _forced(env)
    out = {}
    for name in method_names():
        preset = tiny_preset(name, RUN_SETS)
        torch.manual_seed(dist.get_rank())  # different initial weights per rank, then rank 0's everywhere
        net, stages = build_stages(name, preset, env.device, "fp32")
        broadcast_module_state(net, env)
        from bench.training.driver import make_update, train_step

        batch = {k: v.to(env.device) for k, v in random_batch(preset, 4, seed=10 + dist.get_rank()).items()}
        for stage, _, scaler in stages:
            stage.prepare()
            update = make_update(stage.optimizer(), scaler, stage.grad_clip, forced)
            train_step(stage, batch, update, env.device, "fp32")
            flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
            lo, hi = flat.clone(), flat.clone()
            dist.all_reduce(lo, op=dist.ReduceOp.MIN)
            dist.all_reduce(hi, op=dist.ReduceOp.MAX)
            out[f"{name}/{stage.name}"] = float((hi - lo).max())
    return out


def main(out: str, device_type: str) -> None:
    from bench.io import atomic_write_json

    env = _join(device_type)
    found = {
        "backend": dist.get_backend(),
        "world_size": dist.get_world_size(),
        "grad_error": _gradient_error(env),
        "param_spread": _param_spread(env),
    }
    if dist.get_rank() == 0:
        atomic_write_json(out, found)
    dist.barrier()
    from bench.training.runtime import cleanup

    cleanup(env)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
