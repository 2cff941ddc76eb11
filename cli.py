"""The ``adabench`` command line: data, flops, run, bench, report, check.

Every command is a thin layer over functions in ``bench/``, ``adafocus_v1/``,
``adafocus_v2/`` and ``reports/``. Expected failures print one line
(``error: ...``) and exit 2 for usage errors, 1 otherwise; never a traceback.
"""
from __future__ import annotations

import sys

import click

from bench.errors import AdabenchError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="adabench")
def cli() -> None:
    """adabench: matched AdaFocusV1 vs AdaFocusV2 experiments for efficient video recognition."""


# --------------------------------------------------------------------------- data
@cli.group()
def data() -> None:
    """List, generate and check datasets."""


@data.command("list")
def data_list() -> None:
    """Registered datasets and the on-disk layouts they read."""
    raise AdabenchError("not implemented yet")


@data.command("synth")
def data_synth() -> None:
    """Generate the synthetic focus benchmark."""
    raise AdabenchError("not implemented yet")


@data.command("check")
def data_check() -> None:
    """Validate a dataset layout."""
    raise AdabenchError("not implemented yet")


# --------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one-line errors, exit 2 for usage errors."""
    try:
        rv = cli.main(args=argv, prog_name="adabench", standalone_mode=False)
    except click.exceptions.Exit as e:  # --help, --version
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # usage errors: bad or missing option, unknown command
        click.echo(f"error: {e.format_message()}".replace("\n", " "), err=True)
        sys.exit(e.exit_code)
    except AdabenchError as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; re-run the same command to resume", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
