"""The scale model: every tiny preset is derived from the paper preset of its variant by one rule
(bench/scale.py) and keeps the papers' dimensionless quantities (bench/regime.py) within 2 %."""

import dataclasses

import pytest

from bench.data import dataset_info, list_datasets
from bench.methods import method_names
from bench.presets import get_preset
from bench.regime import experiment_records, quantities_off
from bench.scale import TINY, conv_macs, demo_patch_sizes, derive_fields
from reports.measurements import regime_markdown

TOL = 0.02


# Documented (docs/scale-model.md): at P = 36 and 44 the tiny CNN's stride-8 map rounds 4.5 and 5.5 cells up,
# so its cost grows faster with P there than ResNet-50's; the FLOPs ratio is 10-12 % off (flagged in the
# report).
KNOWN = {"frame": (), "video": ("glance FLOPs / focus FLOPs (P=36)", "glance FLOPs / focus FLOPs (P=44)")}


@pytest.mark.parametrize("dataset", list_datasets())
def test_every_tiny_preset_keeps_the_paper_regime(dataset):
    variant = dataset_info(dataset).variant
    records = experiment_records(dataset, "tiny", method_names(), (None,) + demo_patch_sizes(variant))
    off = quantities_off(records, TOL)
    assert [line.split(":")[0] for line in off] == list(KNOWN[variant])
    assert all(
        abs(float(line.split(": ")[1].split()[0]) / float(line.split()[-1]) - 1) < 0.15 for line in off
    )
    if variant == "frame":
        assert "⚠" not in regime_markdown(records)


@pytest.mark.parametrize(
    "change, quantity",
    [
        ({"grid_n": 5}, "action-grid step / P"),
        ({"stage2_epochs": 6}, "stage 2 epochs"),
        ({"lr": 0.02}, "AdaFocusV2 f_L SGD lr"),
        ({"glance_size": 28}, "glance input side / S"),
        ({"gamma": 0.7}, "discount over a video"),
    ],
)
def test_a_tiny_preset_with_one_quantity_changed_is_named(change, quantity):
    records = experiment_records("synthetic", "tiny", ("v1", "v2"), (32,), **change)  # lr: V2's alone
    off = quantities_off(records, TOL)
    assert any(quantity in line for line in off), off
    assert "⚠ more than 10 % off" in regime_markdown(records)


def test_tiny_numbers_come_from_factors_not_typed_values():
    """Changing one factor of the rule moves the derived preset by exactly that factor."""
    paper = get_preset("actnet", "paper", method="v2")
    tiny = get_preset("synthetic", "tiny", method="v2")
    assert tiny.input_size == paper.input_size * TINY.side and tiny.patch_size == paper.patch_size * TINY.side
    assert tiny.frames == paper.frames * TINY.frames
    assert tiny.train.epochs == paper.train.epochs * TINY.epochs
    assert tiny.train.lr == pytest.approx(paper.train.lr * TINY.lr * TINY.batch)


def test_glance_width_is_solved_for_the_papers_flops_ratio():
    from bench.presets import paper_fields

    paper = paper_fields("frame", "v2", "matched")
    small = derive_fields(paper)
    assert small["glance_width"] < 1  # MobileNetV2 vs ResNet-50: a narrower glance
    half = derive_fields(paper, dataclasses.replace(TINY, side=0.5))
    assert half["input_size"] == 112 and half["patch_size"] == 64


def test_conv_macs_match_the_facts_sheet():
    """fvcore's convolution counts of the paper backbones (adafocus-facts.md §4.1)."""
    assert conv_macs("mbv2", 224) / 1e9 == pytest.approx(0.299494, rel=1e-5)
    assert conv_macs("res50", 128) / 1e9 == pytest.approx(1.334575, rel=1e-5)


def test_presets_command_prints_the_regime_and_the_geometry():
    from click.testing import CliRunner

    from cli import cli

    out = CliRunner().invoke(
        cli, ["presets", "--dataset", "synthetic", "--patch-size", "24", "--patch-size", "40"]
    )
    assert out.exit_code == 0, out.output
    assert "P/S (P=24)" in out.output and "P/S (P=40)" in out.output
    assert "Every kept quantity is within 10 %" in out.output
    assert "a random P×P patch holds the region" in out.output
    bad = CliRunner().invoke(cli, ["presets", "--dataset", "synthetic", "--set", "grid_n=5"])
    assert bad.exit_code == 0 and "⚠ more than 10 % off" in bad.output
