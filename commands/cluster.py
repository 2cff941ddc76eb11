"""Running an experiment's runs as cluster jobs: ``run``'s launcher options (``bench.tools.fanout``: one
submitit job
per planned run) and ``adabench status`` (each planned run: done / running / failed / not started)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import click

LAUNCH_KEYS = ("launcher", "slurm_partition", "gpus_per_run", "slurm_time", "slurm_account", "plan_index")


def launcher_options(fn):
    """--launcher, --slurm-partition, --gpus-per-run, --slurm-time, --slurm-account (and the jobs' hidden
    --plan-index); ``pop_launch`` takes their values out of the command's keyword arguments."""
    from bench.tools.fanout import LAUNCHERS

    for decorator in reversed(
        [
            click.option(
                "--launcher",
                type=click.Choice(list(LAUNCHERS)),
                default="none",
                show_default=True,
                help="none: run here, one run after another; local / slurm: one submitit job per run (local "
                "processes, or sbatch), print the job ids and return (`adabench status` follows them).",
            ),
            click.option("--slurm-partition", default=None, help="--launcher slurm: the partition."),
            click.option(
                "--gpus-per-run",
                type=click.IntRange(min=0),
                default=0,
                show_default=True,
                help="GPUs of each job; a run uses them with --nproc N inside its job.",
            ),
            click.option(
                "--slurm-time",
                type=click.FloatRange(min=0, min_open=True),
                default=None,
                metavar="HOURS",
                help="Time limit of each job in hours (default 72).",
            ),
            click.option("--slurm-account", default=None, help="--launcher slurm: the account to charge."),
            click.option(
                "--plan-index",
                type=click.IntRange(min=0),
                default=None,
                hidden=True,
                help="Only the K-th planned run (what each job runs).",
            ),
        ]
    ):
        fn = decorator(fn)
    return fn


def pop_launch(kwargs: Dict[str, Any], nproc: int) -> Tuple[Optional[Any], Optional[int]]:
    """(LaunchSpec or None for --launcher none, --plan-index), removed from ``kwargs``."""
    from bench.tools.fanout import LaunchSpec

    values = {k: kwargs.pop(k, None) for k in LAUNCH_KEYS}
    if values["launcher"] in (None, "none"):
        return None, values["plan_index"]
    gpus = int(values["gpus_per_run"] or 0)
    spec = LaunchSpec(
        values["launcher"],
        nproc=gpus if gpus > 1 else nproc,
        gpus_per_run=gpus,
        partition=values["slurm_partition"],
        hours=values["slurm_time"],
        account=values["slurm_account"],
    )
    spec.check()
    return spec, values["plan_index"]


@click.command("status")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True)
def status_cmd(runs_dir: str) -> None:
    """Each planned run of the experiments in RUNS_DIR: done / running / failed (its last log line) / not
    started, with its job id when it was submitted (`adabench run --launcher ...`)."""
    from bench.tools.fanout import status_lines

    click.echo("\n".join(status_lines(runs_dir)))
