"""Commands on finished runs: ``report`` (report.md, plots, tables, claims) and ``check`` (the regression
gate against a baseline)."""

from __future__ import annotations

import click


# --------------------------------------------------------------------------- report
def _finite(ctx, param, value: float) -> float:
    """NaN passes a FloatRange (every comparison with it is false): refuse it by name."""
    if value != value:
        raise click.BadParameter(f"{value} is not a number; expected accuracy points in 0..100")
    return value


@click.command("report")
@click.option(
    "--runs-dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of run directories (only runs with a complete summary.json are read).",
)
@click.option(
    "--out",
    "out_dir",
    default="report",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where report.md, its plots and results.csv/.parquet go.",
)
@click.option(
    "--exit-tol",
    type=click.FloatRange(min=0, max=100),
    default=1.0,
    show_default=True,
    callback=_finite,
    help="Accuracy points the V2+ early exit may lose and still match the full model.",
)
@click.option(
    "--throughput",
    "throughput_device",
    default=None,
    metavar="DEVICE",
    help="Also measure inference throughput per section on DEVICE (cpu, cuda).",
)
@click.option(
    "--projection",
    "projections",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="An `adabench project` file to add as projected claim-(b) rows (repeatable; those in "
    "RUNS_DIR/projections/ are read anyway).",
)
def report_cmd(
    runs_dir: str, out_dir: str, exit_tol: float, throughput_device: str | None, projections: tuple[str, ...]
) -> None:
    """Plots, tables and the claims table of every complete run, in OUT/report.md."""
    from reports.report import build_report

    path = build_report(
        runs_dir,
        out_dir,
        exit_tol=exit_tol,
        throughput=throughput_device,
        echo=click.echo,
        require_runs=True,
        projections=projections,
    )
    click.echo(f"report: {path}")


# --------------------------------------------------------------------------- check
@click.command("check")
@click.option(
    "--baseline",
    "baseline_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Baseline JSON (e.g. baselines/tiny.json).",
)
@click.option(
    "--runs-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Compare these runs; without it the baseline's runs (its methods and seeds) are re-trained "
    "first (into runs-check/<time>/).",
)
@click.option(
    "--acc-tol",
    type=float,
    default=None,
    help="Absolute accuracy tolerance, fraction (default: the baseline's, derived from its seed spread; "
    "with --update: the floor of the derived tolerance).",
)
@click.option(
    "--time-factor",
    type=float,
    default=None,
    help="Training-time ratios may differ by this factor either way (default: the baseline's; with "
    "--update: the floor).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="With --update: false-alarm probability per check the tolerances are derived for (default 0.01).",
)
@click.option(
    "--update", is_flag=True, help="Write the baseline from --runs-dir (>= 3 seeds) instead of comparing."
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Dataset root for re-training (default: the dataset's usual place; synthetic: the cache).",
)
@click.option("--device", default="auto", show_default=True, help="Device for re-training.")
@click.option(
    "--workers", type=click.IntRange(min=0), default=None, help="DataLoader workers for re-training."
)
def check_cmd(
    baseline_path: str,
    runs_dir: str | None,
    acc_tol: float | None,
    time_factor: float | None,
    alpha: float | None,
    update: bool,
    data_root: str | None,
    device: str,
    workers: int | None,
) -> None:
    """Regression gate: compare runs with a baseline; exit 0 within tolerance, 1 outside."""
    from bench.tools.gate import check

    tol = {k: v for k, v in (("accuracy_abs", acc_tol), ("time_ratio_factor", time_factor)) if v is not None}
    if not check(
        baseline_path,
        runs_dir=runs_dir,
        tolerances=tol,
        alpha=alpha,
        update=update,
        data_root=data_root,
        device=device,
        workers=workers,
        echo=click.echo,
    ):
        raise click.exceptions.Exit(1)
