"""The ``adabench`` command line: data, flops, run, tune, demo, presets, import-checkpoint, evaluate,
bench, project, report, check, status, selfcheck.

This file is the console-script entry point: the command group, the registration of the commands (defined
in ``commands/``) and ``main`` with its error handling. Every command is a thin layer over functions in
``bench/`` and ``reports/`` (methods through the registry, ``bench.methods``). Expected failures print one
line (``error: ...``) and exit 2 for usage errors, 1 otherwise; never a traceback.
"""

from __future__ import annotations

import sys

import click

from bench.failures import quiet_startup_interrupts

quiet_startup_interrupts()  # before the commands' options import torch (seconds)

from commands import INVOCATION as _INVOCATION  # noqa: E402  (this invocation's arguments; --nproc relaunches them)
from commands.cluster import status_cmd  # noqa: E402
from commands.data import data  # noqa: E402
from commands.experiments import demo_cmd, run_cmd, tune_cmd  # noqa: E402
from commands.models import bench_cmd, evaluate_cmd, flops_cmd, import_checkpoint_cmd  # noqa: E402
from commands.presets import presets_cmd  # noqa: E402
from commands.project import project_cmd  # noqa: E402
from commands.results import check_cmd, report_cmd  # noqa: E402
from commands.selfcheck import selfcheck_cmd  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _, value: _version(ctx, value),
    help="Show the package version and the git commit, then exit.",
)
def cli() -> None:
    """adabench: matched AdaFocusV1 vs AdaFocusV2 experiments for efficient video recognition."""


def _version(ctx: click.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from bench.version import version_text

        click.echo(version_text())
        ctx.exit()


# `adabench --help` lists them alphabetically, whatever the order here
cli.add_command(data)
cli.add_command(flops_cmd)
cli.add_command(import_checkpoint_cmd)
cli.add_command(evaluate_cmd)
cli.add_command(bench_cmd)
cli.add_command(presets_cmd)
cli.add_command(project_cmd)
cli.add_command(run_cmd)
cli.add_command(tune_cmd)
cli.add_command(demo_cmd)
cli.add_command(report_cmd)
cli.add_command(check_cmd)
cli.add_command(status_cmd)
cli.add_command(selfcheck_cmd)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors (``bench.failures``), exit 2 for usage errors."""
    from bench.failures import describe_failure, watch_interrupts

    _INVOCATION[:] = list(sys.argv[1:] if argv is None else argv)
    with watch_interrupts():
        try:
            rv = cli.main(args=argv, prog_name="adabench", standalone_mode=False)
        except click.exceptions.Exit as e:  # --help, --version
            sys.exit(e.exit_code)
        except click.exceptions.NoArgsIsHelpError as e:  # bare `adabench` (or a bare group): its help
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.ClickException as e:  # usage errors: bad or missing option, unknown command
            click.echo(f"error: {e.format_message()}".replace("\n", " "), err=True)
            sys.exit(e.exit_code)
        except (Exception, KeyboardInterrupt, click.exceptions.Abort) as e:
            failure = describe_failure(KeyboardInterrupt() if isinstance(e, click.exceptions.Abort) else e)
            if failure is None:
                raise
            click.echo(f"error: {failure.message}", err=True)
            sys.exit(failure.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
