"""``adabench selfcheck``: every device code path of a run, checked in one command, the numbers left in files
(``bench.tools.selfcheck``; ``make gpu-check`` runs it on CUDA)."""

from __future__ import annotations

import click


@click.command("selfcheck")
@click.option(
    "--device",
    type=click.Choice(["cuda", "cpu"]),
    default="cuda",
    show_default=True,
    help="cuda: refuses with one line (exit 2) when no CUDA device is visible; cpu: the dry run.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="gpu-check",
    show_default=True,
    help="Where gpu-check.json and gpu-check.md go (and the scratch runs, under work/).",
)
@click.option(
    "--budget",
    "budget_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds for the whole command (default: 480 on cuda, 120 on cpu); what does not fit is "
    "skipped, saying so.",
)
@click.option(
    "--shapes",
    type=click.Choice(["paper", "tiny"]),
    default=None,
    help="Shapes of the timings (default: paper on cuda, tiny on cpu).",
)
@click.option("--check", "only", multiple=True, metavar="NAME", help="Only these checks (repeatable).")
@click.option("--no-timings", is_flag=True, help="Only the checks.")
@click.option("--probe", is_flag=True, help="Only check that the device is usable (one line; exit 2 if not).")
def selfcheck_cmd(
    device: str,
    out_dir: str,
    budget_s: float | None,
    shapes: str | None,
    only: tuple[str, ...],
    no_timings: bool,
    probe: bool,
) -> None:
    """Check every device code path (fp32 vs CPU, AMP and loss scaling, runs, DDP, resume, --compile) and time
    the papers' shapes; writes OUT/gpu-check.json and OUT/gpu-check.md. Exit 1 if a check fails."""
    import shutil
    from pathlib import Path

    import torch

    from bench.errors import UsageError
    from bench.io import atomic_write_json, atomic_write_text, check_writable_dir
    from bench.tools.selfcheck import CHECKS, check_device, environment
    from bench.tools.selfcheck_command import run_selfcheck
    from reports.selfcheck import selfcheck_markdown, summary_lines

    dev = torch.device(device)
    check_device(dev)
    if probe:
        env = environment(dev)
        click.echo(f"{dev}: " + ", ".join(f"{k} {v}" for k, v in env.items() if v is not None))
        return
    unknown = [n for n in only if n not in {c.name for c in CHECKS}]
    if unknown:
        raise UsageError(
            f"--check {unknown[0]}: no such check; the checks are {', '.join(c.name for c in CHECKS)}"
        )
    check_writable_dir(out_dir)
    out, work = Path(out_dir), Path(out_dir) / "work"
    shutil.rmtree(work, ignore_errors=True)  # scratch of an earlier check: every run starts fresh

    def save(record: dict) -> None:  # after every check: a session cut short keeps what was measured
        atomic_write_json(out / "gpu-check.json", record)
        atomic_write_text(out / "gpu-check.md", selfcheck_markdown(record))

    record = run_selfcheck(
        dev,
        work,
        budget_s=budget_s,
        shapes=shapes,
        only=list(only) or None,
        timings=not no_timings,
        echo=click.echo,
        save=save,
    )
    shutil.rmtree(work, ignore_errors=True)
    click.echo("\n".join(summary_lines(record)))
    click.echo(f"wrote {out / 'gpu-check.json'} and {out / 'gpu-check.md'}")
    if not record["passed"]:
        raise SystemExit(1)
