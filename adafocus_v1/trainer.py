"""The epoch loop of one V1 stage, with per-epoch checkpoints and timing.

``StageRunner.run_stage(spec, start_epoch)`` trains epochs ``start_epoch .. spec.epochs - 1`` of one
stage. Each epoch: apply the stage's modes, train (timed by ``EpochTimer``: evaluation is
outside the timed span), step the cosine schedule, evaluate on a validation subset, then write
``checkpoints/last.pt`` and ``metrics.csv``. The stage's last epoch also writes
``checkpoints/stage<k>.pt``. The global RNG state is stored in every checkpoint and all training
randomness (random patches, action sampling) draws from it, so a resumed run repeats exactly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch
from torch import nn

from adafocus_v1 import rl
from adafocus_v1.stage2 import rl_step
from adafocus_v1.stages import StageSpec, apply_stage_modes, check_stage_modes
from adafocus_v1.steps import stage0_loss, stage1_loss, stage3_loss
from bench.checkpoint import load_checkpoint, save_checkpoint
from bench.errors import UsageError
from bench.models import AdaFocusNet
from bench.rundir import RunDir
from bench.runtime import (DistEnv, GradientAverager, all_reduce_mean, amp_context, broadcast_module_state,
                           make_grad_scaler)
from bench.timing import EpochTimer, StageClock
from bench.training import check_finite, check_finite_params, clip_gradients, cosine_schedule, make_sgd

Batch = Mapping[str, torch.Tensor]
EvalFn = Callable[[StageSpec, int], Dict[str, Any]]   # (stage, epoch) -> metrics for the row/curve
StageEndFn = Callable[[StageSpec], Optional[Dict[str, Any]]]  # stage -> results kept in the state


@dataclass
class V1State:
    """What survives a restart (the checkpoint's ``extra``)."""

    clock: StageClock = field(default_factory=StageClock)
    curve: List[Dict[str, Any]] = field(default_factory=list)
    history: List[Dict[str, Any]] = field(default_factory=list)
    epoch_seconds: List[float] = field(default_factory=list)
    stage_done: bool = False                     # the checkpoint's stage finished its last epoch
    results: Dict[str, Any] = field(default_factory=dict)   # e.g. the patch evaluation after stage 2

    def extra(self) -> Dict[str, Any]:
        return {"clock": self.clock.as_dict(), "curve": self.curve, "history": self.history,
                "epoch_seconds": self.epoch_seconds, "stage_done": self.stage_done, "results": self.results}

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "V1State":
        return cls(StageClock.from_dict(extra.get("clock")), list(extra.get("curve", [])),
                   list(extra.get("history", [])), list(extra.get("epoch_seconds", [])),
                   bool(extra.get("stage_done", False)), dict(extra.get("results", {})))


def _to_device(batch: Batch, device: torch.device) -> Dict[str, torch.Tensor]:
    keys = ("frames", "glance", "label")
    return {k: batch[k].to(device, non_blocking=device.type == "cuda") for k in keys if k in batch}


def _set_epoch(loader: Any, key: int, seed: int) -> None:
    """Make the data order a function of (seed, stage, epoch), not of how many epochs this process
    has already iterated, so a resumed run sees the same batches as an uninterrupted one.

    (With persistent DataLoader workers their augmentation RNG still continues across epochs, so
    exact repetition after a resume needs ``--workers 0``.)
    """
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(key)
            return
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(int(seed) * 1_000_003 + key)


class StageRunner:
    """Trains the stages of one run on one device, or data-parallel over the ranks of ``env``.

    Distributed: every rank trains on its shard and the gradients of the stage's trainable
    parameters are averaged over ranks as backward accumulates them (``GradientAverager``, DDP's
    arithmetic; the stage losses and the RL update call submodules directly, so there is no single
    forward for a DDP wrapper). Stage 2 included: each rank samples its own actions and rewards and
    normalises its returns over its own batch, then the policy gradients are averaged (the original
    code refused multi-GPU RL). Only rank 0 writes checkpoints, metrics and the log.
    """

    def __init__(self, net: AdaFocusNet, preset: Any, device: torch.device, run: RunDir,
                 train_loader: Iterable[Batch], *, rl_cfg: rl.RLConfig, reward: str, num_classes: int,
                 seed: int = 0,
                 evaluate_fn: Optional[EvalFn] = None, stage_end_fn: Optional[StageEndFn] = None,
                 log: Callable[[str], None] = print, env: Optional[DistEnv] = None) -> None:
        self.net, self.preset, self.device, self.run = net, preset, device, run
        self.loader, self.rl_cfg, self.reward, self.num_classes = train_loader, rl_cfg, reward, num_classes
        self.seed = seed
        self.evaluate_fn, self.stage_end_fn, self.log = evaluate_fn, stage_end_fn, log
        self.env = env or DistEnv(device=device)
        self.state = V1State()

    # ------------------------------------------------------------------ optimisers
    def _optimizers(self, spec: StageSpec):
        """(optimizer, scheduler or None) for a stage; built after ``apply_stage_modes``."""
        if spec.index == 2:
            opt = torch.optim.Adam(self.net.policy.parameters(), lr=spec.lrs["policy"])
            return opt, None
        # lrs are absolute per module path: express them as ratios of a base lr of 1
        opt = make_sgd(self.net, base_lr=1.0, weight_decay=self.preset.weight_decay, ratios=spec.lrs,
                       momentum=self.preset.momentum)
        return opt, cosine_schedule(opt, spec.epochs)

    def _checkpoint(self, path, spec: StageSpec, epoch: int, opt, sched, scaler) -> None:
        save_checkpoint(path, modules={"net": self.net}, optimizers={"opt": opt},
                        schedulers={"sched": sched} if sched is not None else {}, scaler=scaler,
                        stage=spec.name, epoch=epoch, extra=self.state.extra(), env=self.env)

    # ------------------------------------------------------------------ one stage
    def run_stage(self, spec: StageSpec, start_epoch: int = 0, resume_from: Optional[str] = None) -> None:
        """Train epochs ``start_epoch..`` of ``spec``; ``resume_from``: a ``last.pt`` of this stage
        whose optimiser/scheduler/scaler state continues."""
        apply_stage_modes(self.net, spec)
        opt, sched = self._optimizers(spec)
        scaler = make_grad_scaler(self.device, spec.amp)
        if resume_from is not None:
            load_checkpoint(resume_from, {"net": self.net}, {"opt": opt},
                            {"sched": sched} if sched is not None else {}, scaler, env=self.env)
        self.state.stage_done = False
        with GradientAverager(self.net.parameters(), self.env):
            self._run_epochs(spec, start_epoch, opt, sched, scaler)

    def _run_epochs(self, spec: StageSpec, start_epoch: int, opt: torch.optim.Optimizer, sched: Any,
                    scaler: Any) -> None:
        for epoch in range(start_epoch, spec.epochs):
            apply_stage_modes(self.net, spec)   # evaluation leaves the whole net in eval mode
            _set_epoch(self.loader, 1000 * spec.index + epoch, self.seed)
            lr = {g.get("name", str(i)): g["lr"] for i, g in enumerate(opt.param_groups)}
            sums, times = self._train_epoch(spec, opt, scaler, epoch)
            check_stage_modes(self.net, spec)
            if sched is not None:
                sched.step()
            check_finite(sums.get("loss", 0.0), f"{spec.name}, epoch {epoch + 1}")  # every step's loss, averaged
            check_finite_params(self.net, f"{spec.name}, epoch {epoch + 1}")  # never checkpoint a diverged net
            broadcast_module_state(self.net, self.env)  # rank 0's BatchNorm statistics for eval and checkpoint
            self.state.clock.add(spec.name, times)
            self.state.epoch_seconds.append(times.total_seconds)
            row: Dict[str, Any] = {"stage": spec.name, "epoch": epoch + 1,
                                   **{f"lr_{k}": v for k, v in lr.items()},
                                   **{f"train_{k}": v for k, v in sums.items()},
                                   "train_seconds": times.total_seconds, "data_seconds": times.data_seconds,
                                   "cumulative_train_seconds": self.state.clock.total}
            if self.evaluate_fn is not None:
                scores = self.evaluate_fn(spec, epoch)
                row.update({f"val_{k}": v for k, v in scores.items()})
                if scores.get("top1") is not None:
                    self.state.curve.append({"stage": spec.name, "epoch": epoch + 1,
                                             "train_seconds": self.state.clock.total, "top1": scores["top1"],
                                             "map": scores.get("map")})
            self.state.history.append(row)
            self.state.stage_done = epoch == spec.epochs - 1
            if self.state.stage_done and self.stage_end_fn is not None:
                result = self.stage_end_fn(spec)   # e.g. the full patch evaluation after stage 2
                if result is not None:
                    self.state.results[f"after_{spec.name}"] = result
            self._checkpoint(self.run.last_checkpoint, spec, epoch, opt, sched, scaler)
            if self.state.stage_done:
                self._checkpoint(self.run.stage_checkpoint(spec.name), spec, epoch, opt, sched, scaler)
            if not self.env.is_main:
                continue
            self.run.write_metrics(self.state.history)
            self.log(f"{spec.name} epoch {epoch + 1}/{spec.epochs} "
                     + " ".join(f"{k} {v:.4f}" for k, v in sums.items())
                     + f" {times.total_seconds:.1f}s"
                     + (f" val top1 {row['val_top1']:.4f}" if row.get("val_top1") is not None else ""))

    def _train_epoch(self, spec: StageSpec, opt: torch.optim.Optimizer, scaler: Any, epoch: int):
        timer = EpochTimer(self.device)
        sums: Dict[str, float] = {}
        steps = 0
        params = [p for g in opt.param_groups for p in g["params"]]
        for raw in timer.iterate(self.loader):
            batch = _to_device(raw, self.device)
            if spec.index == 2:
                stats = rl_step(self.net, batch, opt, self.rl_cfg, self.reward, self.num_classes)
                check_finite(stats["loss"], f"{spec.name}, epoch {epoch + 1}, step {steps + 1}")
            else:
                stats = self._sgd_step(spec, batch, opt, scaler, params)
                if steps % 10 == 0:
                    check_finite(stats["loss"], f"{spec.name}, epoch {epoch + 1}, step {steps + 1}")
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            steps += 1
        if steps == 0:
            raise UsageError("no training batches: each process has fewer training videos than one batch (the last "
                         "partial batch is dropped); lower it with --set v1_batch_size=N")
        return {k: float(all_reduce_mean(v / steps, self.env)) for k, v in sums.items()}, timer.result(self.env)

    def _sgd_step(self, spec: StageSpec, batch: Dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                  scaler: Any, params: List[nn.Parameter]) -> Dict[str, float]:
        with amp_context(self.device, spec.amp):
            if spec.index == 0:
                loss, parts = stage0_loss(self.net, batch)
            elif spec.index == 1:
                loss, parts = stage1_loss(self.net, batch)
            else:
                loss, parts = stage3_loss(self.net, batch, tune_focus="focus.backbone" in spec.trainable)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.preset.grad_clip is not None:
            scaler.unscale_(opt)
            clip_gradients(params, self.preset.grad_clip)
        scaler.step(opt)
        scaler.update()
        return {"loss": loss.detach(), **parts}
