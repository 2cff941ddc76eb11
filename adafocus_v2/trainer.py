"""AdaFocusV2 one-stage training: glance, focus, classifier and policy together, end to end.

The loop (per epoch): SGD steps on ``V2Objective`` (both passes, the three switchable
techniques), the cosine factor stepped once, an optional cheap evaluation for the
accuracy-vs-time curve (excluded from the training seconds), then ``checkpoints/last.pt``
and a ``metrics.csv`` row. A re-run resumes after the last completed epoch.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch
from torch import nn
from tqdm import tqdm

from adafocus_v2.objective import V2Objective
from bench.checkpoint import load_checkpoint, save_checkpoint
from bench.errors import UsageError
from bench.models import AdaFocusNet
from bench.rundir import RunDir
from bench.runtime import (DistEnv, all_reduce_mean, amp_context, broadcast_module_state, make_grad_scaler,
                           maybe_channels_last, wrap_ddp)
from bench.timing import EpochTimer, EpochTimes, StageClock
from bench.training import check_finite, check_finite_params, clip_gradients, cosine_schedule, make_sgd

STAGE = "v2"
LOG_EVERY = 10  # steps between loss reads (each read synchronises on CUDA)


def lr_ratios(preset: Any) -> Dict[str, float]:
    """Parameter-name prefix -> lr ratio (V2 scripts: glance 0.5, policy 0.1 or 0.01, classifier 5)."""
    return {"glance": preset.glance_lr_ratio, "focus": preset.focus_lr_ratio,
            "policy": preset.policy_lr_ratio, "classifier": preset.classifier_lr_ratio}


def make_optimizer(net: nn.Module, preset: Any) -> torch.optim.SGD:
    return make_sgd(net, base_lr=preset.lr, weight_decay=preset.weight_decay, ratios=lr_ratios(preset),
                    momentum=preset.momentum)


def show_progress(enabled: bool, env: Optional[DistEnv] = None) -> bool:
    """A bar only when asked for, on rank 0, and when stderr is a terminal."""
    return bool(enabled) and (env is None or env.is_main) and sys.stderr.isatty()


def set_data_epoch(loader: Any, epoch: int, seed: int) -> None:
    """Make the data order and augmentation a function of (seed, epoch), not of how many epochs this
    process has run, so a resumed run sees the same batches as an uninterrupted one."""
    for obj in (loader, getattr(loader, "sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)  # DistributedSampler
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):  # shuffling and the workers' base seed
        generator.manual_seed(int(seed) * 1_000_003 + epoch)


@dataclass
class EpochStats:
    losses: Dict[str, float]
    times: EpochTimes


def train_one_epoch(objective: nn.Module, loader: Iterable[Mapping[str, torch.Tensor]],
                    optimizer: torch.optim.Optimizer, scaler: Any, device: torch.device, *,
                    amp: bool = False, grad_clip: Optional[float] = None, epoch: int = 0,
                    env: Optional[DistEnv] = None, progress: bool = False) -> EpochStats:
    """One pass over ``loader``. objective: ``V2Objective`` (maybe DDP-wrapped). Returns the mean
    of every loss part over the epoch's steps (averaged over ranks) and the epoch's times."""
    objective.train()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    sums: Dict[str, torch.Tensor] = {}
    timer = EpochTimer(device)
    steps = 0
    bar = tqdm(timer.iterate(loader), total=_len(loader), desc=f"v2 epoch {epoch + 1}", leave=False,
               disable=not progress, dynamic_ncols=True)
    for batch in bar:
        frames = batch["frames"].to(device, non_blocking=True)
        glance = batch["glance"].to(device, non_blocking=True) if "glance" in batch else None
        labels = batch["label"].to(device, non_blocking=True)
        with amp_context(device, amp):
            parts = objective(frames, glance, labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(parts["total"]).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            clip_gradients(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v.detach().float()
        steps += 1
        if steps % LOG_EVERY == 0:
            check_finite(parts["total"], f"epoch {epoch + 1}, step {steps}")
            bar.set_postfix(loss=f"{float(sums['total']) / steps:.3f}")
    bar.close()
    if steps == 0:
        raise UsageError("no training batches: each process has fewer training videos than one batch (the last "
                         "partial batch is dropped); lower it with --set batch_size=N")
    losses = {k: float(all_reduce_mean(v / steps, env)) if env is not None else float(v / steps)
              for k, v in sums.items()}
    check_finite(losses["total"], f"epoch {epoch + 1}")
    return EpochStats(losses, timer.result(env))


def _len(loader: Any) -> Optional[int]:
    try:
        return len(loader)
    except TypeError:
        return None


@dataclass
class TrainState:
    """What survives a restart (stored in the checkpoint's ``extra``)."""

    epoch: int = -1                          # last completed epoch (0-based), -1 before training
    clock: StageClock = field(default_factory=StageClock)
    curve: List[Dict[str, Any]] = field(default_factory=list)   # {epoch, train_seconds, top1, map}
    history: List[Dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    epoch_seconds: List[float] = field(default_factory=list)

    def extra(self) -> Dict[str, Any]:
        return {"clock": self.clock.as_dict(), "curve": self.curve, "history": self.history,
                "epoch_seconds": self.epoch_seconds}

    @classmethod
    def from_checkpoint(cls, info: Mapping[str, Any]) -> "TrainState":
        extra = info.get("extra") or {}
        return cls(int(info["epoch"]), StageClock.from_dict(extra.get("clock")), list(extra.get("curve", [])),
                   list(extra.get("history", [])), list(extra.get("epoch_seconds", [])))


EvalFn = Callable[[int], Dict[str, Optional[float]]]  # epoch -> {"top1", "map"}


class V2Trainer:
    """Holds the network, objective, optimiser, schedule and scaler of one run and trains it.

    ``fit(run, epochs, evaluate_fn, eval_epochs)`` resumes from ``run``'s ``last.pt`` if present.
    """

    def __init__(self, net: AdaFocusNet, preset: Any, device: torch.device, *, aux_supervision: bool = True,
                 diversity: bool = True, stop_gradient: bool = True, env: Optional[DistEnv] = None,
                 progress: bool = False, seed: int = 0) -> None:
        self.preset, self.device, self.env, self.seed = preset, device, env or DistEnv(device=device), seed
        self.net = maybe_channels_last(net.to(device), device)
        self.objective = V2Objective(self.net, aux_supervision=aux_supervision, diversity=diversity,
                                     stop_gradient=stop_gradient)
        # without the auxiliary losses the aux heads get no gradient, which DDP must be told about
        self.model = wrap_ddp(self.objective, self.env, find_unused_parameters=not aux_supervision)
        self.optimizer = make_optimizer(self.net, preset)
        self.scheduler = cosine_schedule(self.optimizer, preset.epochs)
        self.amp = bool(preset.amp) and device.type == "cuda"
        self.scaler = make_grad_scaler(device, self.amp)
        self.progress = show_progress(progress, self.env)
        self.state = TrainState()

    def resume(self, run: RunDir) -> TrainState:
        """Load ``last.pt`` when it exists; the state says which epoch completed last."""
        if run.has_checkpoint():
            info = load_checkpoint(run.last_checkpoint, {"net": self.net}, {"sgd": self.optimizer},
                                   {"cosine": self.scheduler}, self.scaler, env=self.env)
            self.state = TrainState.from_checkpoint(info)
        return self.state

    def save(self, run: RunDir) -> None:
        """``last.pt`` and metrics.csv; collective when distributed (RNG states of all ranks), rank 0 writes."""
        save_checkpoint(run.last_checkpoint, modules={"net": self.net}, optimizers={"sgd": self.optimizer},
                        schedulers={"cosine": self.scheduler}, scaler=self.scaler, stage=STAGE,
                        epoch=self.state.epoch, extra=self.state.extra(), env=self.env)
        if self.env.is_main:
            run.write_metrics(self.state.history)

    def fit(self, run: RunDir, train_loader: Iterable[Mapping[str, torch.Tensor]], *,
            evaluate_fn: Optional[EvalFn] = None, eval_epochs: Iterable[int] = ()) -> TrainState:
        """Train from the epoch after the last completed one to ``preset.epochs``.

        After each epoch in ``eval_epochs`` (0-based), ``evaluate_fn(epoch)`` adds a point to the
        accuracy-vs-time curve; its time does not count as training time.
        """
        self.resume(run)
        eval_epochs = set(eval_epochs)
        for epoch in range(self.state.epoch + 1, self.preset.epochs):
            set_data_epoch(train_loader, epoch, self.seed)
            lr = self.optimizer.param_groups[0]["lr"] / self.optimizer.param_groups[0].get("lr_ratio", 1.0)
            stats = train_one_epoch(self.model, train_loader, self.optimizer, self.scaler, self.device,
                                    amp=self.amp, grad_clip=self.preset.grad_clip, epoch=epoch, env=self.env,
                                    progress=self.progress)
            self.scheduler.step()
            check_finite_params(self.net, f"epoch {epoch + 1}")  # never checkpoint a diverged network
            broadcast_module_state(self.net, self.env)  # rank 0's BatchNorm statistics for eval and checkpoint
            self.state.clock.add(STAGE, stats.times)
            self.state.epoch_seconds.append(stats.times.total_seconds)
            row: Dict[str, Any] = {"stage": STAGE, "epoch": epoch + 1, "lr": lr,
                                   "train_loss": stats.losses["total"],
                                   **{f"loss_{k}": v for k, v in stats.losses.items() if k != "total"},
                                   "train_seconds": stats.times.total_seconds,
                                   "data_seconds": stats.times.data_seconds,
                                   "cumulative_train_seconds": self.state.clock.total}
            if evaluate_fn is not None and epoch in eval_epochs:
                scores = evaluate_fn(epoch)
                row.update({f"val_{k}": v for k, v in scores.items()})
                self.state.curve.append({"epoch": epoch + 1, "train_seconds": self.state.clock.total, **scores})
            self.state.history.append(row)
            self.state.epoch = epoch
            self.save(run)
            if self.env.is_main:
                run.log(f"epoch {epoch + 1}/{self.preset.epochs} loss {stats.losses['total']:.4f} "
                        f"{stats.times.total_seconds:.1f}s (data {stats.times.data_seconds:.1f}s)"
                        + (f" val top1 {row.get('val_top1'):.4f}" if row.get("val_top1") is not None else ""))
        return self.state
