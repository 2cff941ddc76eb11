"""``adabench evaluate``: any checkpoint -> an evaluated-run directory beside the trained runs.

Reads an adabench model file (``adabench import-checkpoint``'s output, ``bench.models.save_model``) or a run's
own checkpoint (``checkpoints/last.pt``, ``<stage>.pt``, ``best.pt``: the network is rebuilt from the resolved
preset in the run's ``config.yaml`` next to ``checkpoints/``), evaluates it with the code path every trained
run ends with (``bench.runs.runner.evaluation_summary``: learned / random / centre patches on the whole
validation split, FLOPs, the method's own summary keys such as V2's early-exit curve) and writes::

    <runs_dir>/<dataset>/<method>/evaluated-<preset>-<arch>-p<P>-s<seed>-<hash>/
      config.yaml    the evaluation's options (run: kind evaluated, checkpoint, its SHA-256), preset, source
      manifest.json  code version and environment, as for a trained run
      summary.json   written last; ``kind: evaluated``, ``checkpoint``, ``checkpoint_sha256``, ``source``

The hash covers the checkpoint's SHA-256, the dataset and its root, the protocol and the seed, so
evaluating the same file again replaces its directory. ``adabench report`` lists evaluated checkpoints in
their own section and never pools them with trained runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from bench import io
from bench.errors import UsageError
from bench.runs.config import DEFAULT_PROTOCOL, RunConfig
from bench.runs.manifest import collect_manifest
from bench.runs.rundir import RunDir

KIND = "evaluated"


@dataclass
class LoadedCheckpoint:
    """A network rebuilt from a checkpoint, with what it is and where it came from."""

    net: torch.nn.Module
    preset: Any  # resolved Preset (no weight files)
    num_classes: int
    source: Dict[str, Any]  # file, sha256, format, and the import record / run directory


def _run_of(path: Path) -> Optional[RunDir]:
    """The run directory a checkpoint belongs to (``<run>/checkpoints/<name>.pt``), if it is one."""
    run = RunDir(path.parent.parent)
    return run if path.parent.name == "checkpoints" and run.config_path.is_file() else None


def load_run_checkpoint(path: Path, run: RunDir) -> LoadedCheckpoint:
    """A run's own checkpoint: the network of its config.yaml's preset with the checkpoint's weights."""
    from bench.models import build_network, without_weight_files
    from bench.models.importing import preset_from_dict
    from bench.training.checkpoint import load_checkpoint

    config = run.read_config()
    if not isinstance(config.get("preset"), dict):
        raise UsageError(f"{run.config_path}: no 'preset' section to rebuild the network of {path} from")
    preset = without_weight_files(preset_from_dict(config["preset"]))
    manifest = io.read_json(run.manifest_path) if run.manifest_path.is_file() else {}
    classes = int(manifest.get("num_classes") or preset.num_classes)
    net = build_network(preset, num_classes=classes)
    info = load_checkpoint(path, {"net": net}, restore_rng=False)
    source = {
        "format": "run checkpoint",
        "run_dir": str(run.path.resolve()),
        "stage": info["stage"],
        "epoch": int(info["epoch"]) + 1,
        "config_hash": config.get("config_hash"),
        "git_commit": manifest.get("git_commit"),
    }
    return LoadedCheckpoint(net.eval(), preset, classes, source)


def load_any_checkpoint(path: Any) -> LoadedCheckpoint:
    """An adabench model file or a run's checkpoint (see the module docstring); a one-line error otherwise."""
    from bench.models.importing import read_model
    from bench.models.weights import sha256_file

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--checkpoint {p}: no such file")
    run = _run_of(p)
    if run is not None:
        loaded = load_run_checkpoint(p, run)
    else:
        try:
            net, preset, imported = read_model(p)
        except UsageError as e:
            if "not an adabench model file" not in str(e):
                raise
            raise UsageError(
                f"--checkpoint {p} is not an adabench model file (import-checkpoint writes one) nor a "
                "run's checkpoint (checkpoints/<name>.pt beside the run's config.yaml)"
            ) from None
        loaded = LoadedCheckpoint(
            net,
            preset,
            preset.num_classes,
            {"format": "adabench model file", "imported_from": imported or None},
        )
    loaded.source = {"file": str(p.resolve()), "sha256": sha256_file(str(p)), **loaded.source}
    return loaded


def evaluated_dir(cfg: RunConfig, preset: Any, sha256: str) -> RunDir:
    """Where the evaluation of one checkpoint on one dataset root (protocol, seed) is written."""
    key = json.dumps(
        {
            "sha256": sha256,
            "dataset": cfg.dataset,
            "data_root": cfg.data_root,
            "protocol": cfg.protocol,
            "seed": cfg.seed,
        },
        sort_keys=True,
    )
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    name = f"{KIND}-{preset.name}-{preset.arch}-p{preset.patch_size}-s{cfg.seed}-{digest}"
    return RunDir(Path(cfg.runs_dir) / cfg.dataset / preset.method / name)


def _check_fits(loaded: LoadedCheckpoint, dataset: str) -> None:
    from bench.data import dataset_info

    info = dataset_info(dataset)
    if info.variant != loaded.preset.variant:
        raise UsageError(
            f"--dataset {dataset} needs the {info.variant} variant of the network; the checkpoint "
            f"holds the {loaded.preset.variant} variant (made for {loaded.preset.dataset})"
        )


def evaluate_checkpoint(
    path: Any,
    dataset: str,
    data_root: Optional[str] = None,
    *,
    runs_dir: str = "runs",
    seed: int = 0,
    protocol: str = DEFAULT_PROTOCOL,
    device: str = "auto",
    num_workers: Optional[int] = None,
    batch_size: Optional[int] = None,
    skip_bad: bool = False,
    preflight: bool = True,
    precision: str = "auto",
    channels_last: str = "auto",
) -> Tuple[Dict[str, Any], RunDir]:
    """Evaluate the checkpoint at ``path`` on ``dataset``'s validation split; -> (summary, its directory)."""
    from bench.data import resolve_data_root
    from bench.methods import get_method
    from bench.runs.resolved import PROTOCOL_RULES, ResolvedRun
    from bench.runs.rundata import build_data
    from bench.runs.runner import RunContext, evaluation_summary
    from bench.training.precision import prepare_network, resolve_channels_last
    from bench.training.runtime import cpu_threads, local_world_size, start_process

    loaded = load_any_checkpoint(path)
    _check_fits(loaded, dataset)
    preset = loaded.preset
    if batch_size is not None:
        preset = dataclasses.replace(
            preset, train=dataclasses.replace(preset.train, batch_size=int(batch_size))
        )
    cfg = RunConfig(
        method=preset.method,
        dataset=dataset,
        data_root=str(resolve_data_root(dataset, data_root)),
        preset=preset.name,
        arch=preset.arch,
        patch_size=preset.patch_size,
        seed=seed,
        device=device,
        runs_dir=runs_dir,
        skip_bad=skip_bad,
        preflight=preflight,
        num_workers=num_workers,
        protocol=protocol,
        progress=False,
        quiet=True,
        precision=precision,
        channels_last=channels_last,
    )
    cfg = dataclasses.replace(cfg, precision=cfg.resolved_precision())  # as a run's config: what was computed
    env = start_process(device, seed, deterministic=False)
    rules = PROTOCOL_RULES[protocol]
    data = build_data(
        cfg,
        preset,
        env,
        train=False,
        independent_views=rules.independent_views,
        curve_on_full_split=rules.curve_on_full_split,
    )
    if env.device.type == "cpu":  # as a run's final evaluation: this rank's free cores
        torch.set_num_threads(cpu_threads(data.num_workers, local_world_size()))
    if data.num_classes != loaded.num_classes:
        raise UsageError(
            f"--dataset {dataset} at {data.root} has {data.num_classes} classes; the checkpoint's "
            f"classifier has {loaded.num_classes}"
        )
    run = evaluated_dir(cfg, preset, loaded.source["sha256"]).create()
    net = prepare_network(
        loaded.net.to(env.device), channels_last=resolve_channels_last(channels_last, env.device)
    )
    resolved = ResolvedRun(cfg, preset, get_method(preset.method), rules, run.path.name.rsplit("-", 1)[-1])
    ctx = RunContext(resolved, net, data, env, run)
    checkpoint = {"checkpoint": loaded.source["file"], "checkpoint_sha256": loaded.source["sha256"]}
    with run.locked():
        io.atomic_write_yaml(
            run.config_path,
            {
                "config_hash": resolved.config_hash,
                "run": {**cfg.to_dict(), "kind": KIND, **checkpoint},
                "preset": preset.to_dict(),
                "source": loaded.source,
            },
        )
        run.write_manifest(
            collect_manifest(
                cfg,
                env.device,
                env.world_size,
                resolved.config_hash,
                extra={
                    "dataset_root": str(data.root.resolve()),
                    "num_classes": data.num_classes,
                    "kind": KIND,
                    "protocol": protocol,
                    "source": loaded.source,
                },
            )
        )
        summary = evaluation_summary(ctx, extra={**checkpoint, "source": loaded.source})
        run.add_bad_items([tuple(item) for ds in data.datasets for item in getattr(ds, "bad_items", [])])
        run.write_summary(summary)
    return summary, run


def evaluated_line(summary: Dict[str, Any]) -> str:
    """One line for an evaluated checkpoint: what was evaluated and how well."""
    metric = f"mAP {100 * summary['map']:.1f}%  " if summary.get("map") is not None else ""
    pe = summary["patch_eval"]
    return (
        f"{summary['method']} p{summary['patch_size']} on {summary['dataset']}: top-1 "
        f"{100 * summary['top1']:.1f}%  "
        f"{metric}{summary['gflops_per_video']:.3g} GFLOPs/video  patches learned/random/centre "
        + "/".join(f"{100 * pe[k]:.1f}" for k in ("learned", "random", "centre"))
        + f"  ({summary['checkpoint']}, sha256 {summary['checkpoint_sha256'][:12]}…)"
    )
