"""The one training driver: every stage of every method runs through ``Driver``.

A method supplies its stages (``Stage``: what to train, its optimiser and its step function) and
nothing else; the driver owns everything a fair comparison must hold equal:

- the loop: data order and every item's augmentation a function of (seed, stage, epoch, item)
  (``bench.data.set_epoch``), the progress bar, one console and log.txt line per epoch;
- the update: ``update(loss)`` (zero_grad, backward, gradient averaging over ranks, clipping, step),
  which a step function calls once per optimiser step (V1's PPO calls it K times);
- the numeric precision: every step of every stage runs under the run's ``autocast``
(``bench.training.precision``;
  fp16 adds loss scaling), so the methods of a matched experiment always compute alike;
- host synchronisation: step functions return detached tensors, which are summed on the device and read
  every ``LOG_EVERY`` steps (NaN guard and progress) and once at the end of the epoch — the same points
  for every method (``tests/test_driver_syncs.py`` counts them);
- timing (``EpochTimer``: evaluation excluded, data wait separated, slowest rank), per-stage clocks;
- the learning curve: the same evaluation set and cadence for every method;
- checkpoints after every epoch (``last.pt``, and ``<stage>.pt`` when a stage ends) and resume after the
  last completed epoch (``bench.training.resume`` decides where a run starts);
- with ``select_best`` (``--protocol official``), model selection on the validation split as the official
  code does it: ``best.pt`` holds the weights of the stage's best learning-curve point so far, and a stage
  that ends below its best continues (and is checkpointed) from that point. The last stage's final epoch is
  scored by the runner on the whole split, which makes the same comparison (``TrainState.best``).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

import torch
from tqdm import tqdm

from bench.data import set_epoch
from bench.errors import UsageError
from bench.runs.rundir import RunDir
from bench.training.checkpoint import load_checkpoint, save_checkpoint
from bench.training.optim import check_finite, check_finite_params, clip_gradients, cosine_schedule
from bench.training.precision import autocast, grad_scaler
from bench.training.resume import find_start
from bench.training.runtime import DistEnv, all_reduce_mean, average_gradients, broadcast_module_state
from bench.training.stage import Batch, Stage, TrainState, Update, selection_score
from bench.training.timing import EpochTimer, EpochTimes

LOG_EVERY = 10  # steps between reads of the running loss (each read is a host synchronisation on CUDA)
BATCH_KEYS = ("frames", "glance", "label")


def make_update(opt: torch.optim.Optimizer, scaler: Any, grad_clip: Optional[float], env: DistEnv) -> Update:
    """The ``update(loss)`` every step function calls: zero_grad, backward (outside autocast, scaled for
    fp16), gradient averaging over ranks, clipping (on unscaled gradients), optimiser step."""
    params = [p for g in opt.param_groups for p in g["params"]]
    device_type = env.device.type

    def update(loss: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type, enabled=False):  # backward outside autocast
            scaler.scale(loss).backward()
        average_gradients(params, env)
        if grad_clip is not None:
            scaler.unscale_(opt)
            clip_gradients(params, grad_clip)
        scaler.step(opt)
        scaler.update()

    return update


def train_step(
    stage: Stage, batch: Batch, update: Update, device: torch.device, precision: str
) -> Dict[str, torch.Tensor]:
    """One training step of ``stage`` exactly as the driver runs it (``adabench bench --train-step`` times
    this): the stage's step under the run's autocast."""
    with autocast(device, precision):
        return stage.step(batch, update)


def _length(loader: Any) -> Optional[int]:
    try:
        return len(loader)
    except TypeError:
        return None


class Driver:
    """Trains ``stages`` of one run on ``loader``; see the module docstring for what it keeps equal.

    evaluate_curve(modes) -> {"top1", "map", "<mode>_top1"...} on the learning-curve set;
    evaluate_end() -> the full patch evaluation kept as ``results["after_<stage>"]``;
    curve_epochs(n) -> the 0-based epochs of an n-epoch stage that get a curve point;
    evaluate_final() -> {"top1", "map"} of the method's last epoch on the whole evaluation split: that epoch's
        metrics row and its learning-curve point (None: the last epoch gets neither).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        stages: List[Stage],
        run: RunDir,
        loader: Iterable[Batch],
        env: DistEnv,
        *,
        seed: int,
        label: str,
        evaluate_curve: Callable[[Tuple[str, ...]], Dict[str, Any]],
        evaluate_end: Callable[[], Dict[str, Any]],
        curve_epochs: Callable[[int], Set[int]],
        evaluate_final: Optional[Callable[[], Dict[str, Any]]] = None,
        progress: bool = False,
        quiet: bool = True,
        select_best: bool = False,
        precision: str = "fp32",
    ) -> None:
        self.net, self.stages, self.run, self.loader, self.env = net, stages, run, loader, env
        self.select_best = select_best
        self.precision = precision  # resolved (bench.training.precision.resolve_precision)
        self.seed, self.label = seed, label
        self.evaluate_curve, self.evaluate_end, self.curve_epochs = evaluate_curve, evaluate_end, curve_epochs
        self.evaluate_final = evaluate_final
        self.show_bar = bool(progress) and env.is_main and sys.stderr.isatty()
        self.echo = not quiet and env.is_main
        self.device = env.device
        self.state = TrainState()

    # ------------------------------------------------------------------ stages
    def fit(self, first: int = 0, last: Optional[int] = None) -> Optional[int]:
        """Train stages ``first..last`` (indices), resuming where ``run``'s checkpoints say.

        Returns the index of the first stage trained by this call, or None when every requested
        stage had already finished (the state is still loaded from the checkpoint)."""
        last = len(self.stages) - 1 if last is None else last
        names = [s.name for s in self.stages]
        start = find_start(self.run, names, {s.name: s.epochs for s in self.stages}, first, last)
        if start.weights is not None:  # network, RNG of every rank and the carried state
            info = load_checkpoint(start.weights, {"net": self.net}, env=self.env)
            self.state = TrainState.from_extra(info.get("extra") or {})
            self._repair_best(info["stage"], info["epoch"])
        if start.stage is None:
            return None
        if start.weights is not None:
            self._say_resuming(start)
        for k in range(start.stage, last + 1):
            mid = start.mid_stage and k == start.stage
            self.run_stage(
                k, start.epoch if k == start.stage else 0, resume_from=start.weights if mid else None
            )
        return start.stage

    def _say_resuming(self, start: Any) -> None:
        """One line (console, even with --quiet, and log.txt): where a run with checkpoints continues."""
        stage = self.stages[start.stage]
        line = (
            f"{self.label}: resuming at stage {stage.name} ({start.stage + 1} of {len(self.stages)}), epoch "
            f"{start.epoch + 1}/{stage.epochs}, from {start.weights}"
        )
        if self.env.is_main:
            self.run.log(line)
            tqdm.write(line, file=sys.stderr)

    def run_stage(self, index: int, start_epoch: int = 0, resume_from: Any = None) -> None:
        """Epochs ``start_epoch..`` of stage ``index``; ``resume_from``: this stage's ``last.pt`` whose
        optimiser, scheduler and scaler continue."""
        stage = self.stages[index]
        stage.prepare()
        opt = stage.optimizer()
        sched = cosine_schedule(opt, stage.epochs) if stage.cosine else None
        scaler = grad_scaler(self.device, self.precision)
        scheds = {"sched": sched} if sched is not None else {}
        if resume_from is not None:
            load_checkpoint(resume_from, {"net": self.net}, {"opt": opt}, scheds, scaler, env=self.env)
        update = make_update(opt, scaler, stage.grad_clip, self.env)
        for epoch in range(start_epoch, stage.epochs):
            stage.prepare()
            set_epoch(self.loader, 1000 * index + epoch)
            lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(opt.param_groups)}
            means, times = self._train_epoch(stage, update, epoch)
            stage.check()
            if sched is not None:
                sched.step()
            where = f"{stage.name}, epoch {epoch + 1}"
            check_finite(means["loss"], where)
            check_finite_params(self.net, where)  # never checkpoint a diverged network
            broadcast_module_state(
                self.net, self.env
            )  # rank 0's BatchNorm statistics for eval and checkpoint
            self._after_epoch(index, epoch, lrs, means, times)
            done = epoch == stage.epochs - 1
            if (
                done and index < len(self.stages) - 1
            ):  # the last stage's model is chosen by the run (select_best)
                self._continue_from_best(stage)
            save = dict(
                modules={"net": self.net},
                optimizers={"opt": opt},
                schedulers=scheds,
                scaler=scaler,
                stage=stage.name,
                epoch=epoch,
                env=self.env,
            )
            save_checkpoint(
                self.run.last_checkpoint, extra={**self.state.extra(), "stage_done": done}, **save
            )
            if done and len(self.stages) > 1:
                save_checkpoint(
                    self.run.stage_checkpoint(stage.name),
                    extra={**self.state.extra(), "stage_done": True},
                    **save,
                )
            if self._improved(stage.name, epoch):
                save_checkpoint(
                    self.run.best_checkpoint,
                    modules={"net": self.net},
                    stage=stage.name,
                    epoch=epoch,
                    env=self.env,
                )
            if self.env.is_main:
                self.run.write_metrics(self.state.history)

    # ------------------------------------------------------------------ model selection (select_best)
    def _note_best(self, stage: str, epoch: int, scores: Mapping[str, Any]) -> None:
        best = self.state.best.get(stage)
        if self.select_best and (best is None or selection_score(scores) > best["score"]):
            self.state.best[stage] = {
                "epoch": epoch,
                "score": selection_score(scores),
                "top1": scores.get("top1"),
                "map": scores.get("map"),
            }

    def _improved(self, stage: str, epoch: int) -> bool:
        """This epoch became the stage's best (written to best.pt after last.pt, so a kill in between is
        repaired on resume by ``_repair_best``)."""
        return self.select_best and self.state.best.get(stage, {}).get("epoch") == epoch

    def _repair_best(self, stage: str, epoch: int) -> None:
        """Resumed from the ``last.pt`` of ``stage``/``epoch``: if that epoch is the stage's best but best.pt
        does not hold it (killed between the two writes), write it from the weights just loaded."""
        if not self._improved(stage, epoch):
            return
        path = self.run.best_checkpoint
        tag = None
        if path.is_file():
            from bench.training.checkpoint import read_checkpoint

            blob = read_checkpoint(path)
            tag = (blob.get("stage"), blob.get("epoch"))
        if tag != (stage, epoch):
            save_checkpoint(path, modules={"net": self.net}, stage=stage, epoch=epoch, env=self.env)

    def _continue_from_best(self, stage: Stage) -> None:
        """End of a stage: go on from its best curve point when the last epoch scored lower (the official
        trainers save only improving epochs, so the next stage starts from the best one)."""
        best = self.state.best.get(stage.name)
        if (
            best is not None
            and best["epoch"] != stage.epochs - 1
            and any(p["stage"] == stage.name and p["epoch"] == stage.epochs for p in self.state.curve)
        ):
            load_checkpoint(self.run.best_checkpoint, {"net": self.net}, restore_rng=False, env=self.env)
            self.run.log(
                f"{stage.name}: continuing from its best epoch {best['epoch'] + 1} "
                f"(validation score {best['score']:.4f})"
            )

    def _after_epoch(
        self, index: int, epoch: int, lrs: Dict[str, float], means: Dict[str, float], times: EpochTimes
    ) -> None:
        """Clock, curve point, end-of-stage evaluation, metrics row and the epoch's line."""
        stage, state = self.stages[index], self.state
        state.clock.add(stage.name, times)
        state.epoch_seconds.append(times.total_seconds)
        row: Dict[str, Any] = {
            "stage": stage.name,
            "epoch": epoch + 1,
            **{f"lr_{k}": v for k, v in lrs.items()},
            **{f"train_{k}": v for k, v in means.items()},
            "train_seconds": times.total_seconds,
            "data_seconds": times.data_seconds,
            "cumulative_train_seconds": state.clock.total,
        }
        final = (
            index == len(self.stages) - 1 and epoch == stage.epochs - 1
        )  # scored on the whole split instead
        if stage.curve and not final and epoch in self.curve_epochs(stage.epochs):
            scores = self.evaluate_curve(stage.curve_modes)
            row.update({f"val_{k}": v for k, v in scores.items()})
            state.curve.append(
                {
                    "stage": stage.name,
                    "epoch": epoch + 1,
                    "train_seconds": state.clock.total,
                    "top1": scores.get("top1"),
                    "map": scores.get("map"),
                }
            )
            self._note_best(stage.name, epoch, scores)
        if final and self.evaluate_final is not None:
            scores = self.evaluate_final()
            row.update({"val_top1": scores.get("top1"), "val_map": scores.get("map")})
            state.curve.append(
                {
                    "stage": stage.name,
                    "epoch": epoch + 1,
                    "train_seconds": state.clock.total,
                    "top1": scores.get("top1"),
                    "map": scores.get("map"),
                }
            )
        if epoch == stage.epochs - 1 and stage.end_eval:
            state.results[f"after_{stage.name}"] = self.evaluate_end()
        state.history.append(row)
        if self.env.is_main:
            line = (
                f"{self.label} {stage.name} epoch {epoch + 1}/{stage.epochs}: loss {means['loss']:.4f}"
                + (f", val top-1 {100 * row['val_top1']:.1f}%" if row.get("val_top1") is not None else "")
                + f", {times.total_seconds:.1f} s (data {times.data_seconds:.1f} s)"
            )
            self.run.log(line + " " + " ".join(f"{k} {v:.4f}" for k, v in means.items() if k != "loss"))
            if self.echo:
                tqdm.write(line, file=sys.stderr)

    # ------------------------------------------------------------------ one epoch
    def _train_epoch(self, stage: Stage, update: Update, epoch: int) -> Tuple[Dict[str, float], EpochTimes]:
        timer = EpochTimer(self.device)
        sums: Dict[str, torch.Tensor] = {}
        steps = 0
        bar = tqdm(
            timer.iterate(self.loader),
            total=_length(self.loader),
            leave=False,
            dynamic_ncols=True,
            desc=f"{self.label} {stage.name} {epoch + 1}/{stage.epochs}",
            disable=not self.show_bar,
        )
        for raw in bar:
            batch = {
                k: raw[k].to(self.device, non_blocking=self.device.type == "cuda")
                for k in BATCH_KEYS
                if k in raw
            }
            parts = train_step(stage, batch, update, self.device, self.precision)
            for k, v in parts.items():
                v = v.detach().float()
                sums[k] = sums[k] + v if k in sums else v
            steps += 1
            if steps % LOG_EVERY == 0:  # the periodic host read: NaN guard and progress
                loss = float(sums["loss"]) / steps
                check_finite(loss, f"{stage.name}, epoch {epoch + 1}, step {steps}")
                bar.set_postfix(loss=f"{loss:.3f}")
        bar.close()
        if steps == 0:
            raise UsageError(
                "no training batches: each process has fewer training videos than one batch (the last "
                "partial batch is dropped); lower it with --set batch_size=N"
            )
        keys = sorted(sums)
        means = all_reduce_mean(torch.stack([sums[k] for k in keys]) / steps, self.env)
        return dict(zip(keys, means.tolist())), timer.result(self.env)
