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


# --------------------------------------------------------------------------- flops
@cli.command("flops")
@click.option("--method", type=click.Choice(["v1", "v2"]), required=True, help="Which method's network.")
@click.option("--dataset", required=True, help="Dataset whose preset and class count to use (e.g. actnet, jester).")
@click.option("--patch-size", type=int, default=None, help="Patch side P (default: the preset's).")
@click.option("--glance-arch", type=click.Choice(["mbv2", "res50"]), default=None,
              help="Paper presets: MobileNetV2 on the frame or ResNet-50 on the frame resized to 96x96.")
@click.option("--preset", "preset_name", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True)
@click.option("--arch", type=click.Choice(["matched", "paper"]), default="matched", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def flops_cmd(method: str, dataset: str, patch_size: int | None, glance_arch: str | None, preset_name: str,
              arch: str, as_json: bool) -> None:
    """Inference GFLOPs per video (fvcore; multiply-adds, BatchNorm excluded, GRU counted by hand)."""
    import json

    from bench.flops import count_flops
    from bench.models import build_network
    from bench.presets import get_preset

    preset = get_preset(dataset, preset_name, method=method, arch=arch, glance_arch=glance_arch,
                        patch_size=patch_size)
    report = count_flops(build_network(preset), preset)
    info = {"method": method, "dataset": dataset, "preset": preset_name, "arch": arch,
            "glance_arch": preset.glance_arch, "patch_size": preset.patch_size, "num_classes": preset.num_classes,
            "frames": preset.frames, "glance_frames": preset.glance_frames or preset.frames}
    if as_json:
        click.echo(json.dumps({**info, **report.to_dict()}, indent=2))
        return
    click.echo(" ".join(f"{k}={v}" for k, v in info.items()))
    click.echo(f"GFLOPs per video: {report.gflops_per_video:.3f}   params: {report.params_m:.2f} M")
    for name, value in report.by_component.items():
        click.echo(f"  {name:<11} {value:9.4f}")
    if len(report.per_step) > 1:
        click.echo("cumulative GFLOPs per step: " + ", ".join(f"{v:.4g}" for v in report.per_step))
    if report.unsupported:
        click.echo("counted as zero (unsupported by fvcore): "
                   + ", ".join(f"{op} x{n}" for op, n in report.unsupported.items()))


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
