"""The method registry: everything the rest of adabench needs to know about a training method.

A method is one package that calls ``register_method(Method(...))`` when imported. The shipped
ones are found through the ``adabench.methods`` entry-point group (pyproject.toml); more can be
named in ``$ADABENCH_METHODS`` (comma-separated module names, e.g. an out-of-tree method or a test's
toy method). Nothing outside a method's package knows its name: the CLI's choices and options, the
presets, FLOPs, throughput, the regression gate and the report all read the entries here.
docs/design.md §Adding a method lists what an entry must provide.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import torch

from bench.errors import UsageError
from bench.registry import Registry

ENTRY_POINT_GROUP = "adabench.methods"
PLUGINS_ENV = "ADABENCH_METHODS"

METHODS: Registry[Method] = Registry("method")


@dataclass(frozen=True)
class PlanContext:
    """Everything a method's ``plan`` and ``summary_extras`` see of a run (and nothing else).

    ``train_eval_loader(max_videos, augmented=False, seed=None)``: the training videos in evaluation order,
    for a method that needs training-set predictions (V2's early-exit thresholds); None where there is no data
    (a timed training step).
    """

    net: torch.nn.Module
    preset: Any  # bench.presets.Preset (the method's ``train`` params in ``preset.train``)
    num_classes: int
    multilabel: bool
    env: Any  # bench.training.runtime.DistEnv: the device and the ranks
    precision: str  # resolved: the run computes in it
    seed: int
    dataset: str
    protocol: str  # the --protocol name (bench.runs.resolved.PROTOCOL_RULES)
    train_eval_loader: Optional[Callable[..., Any]] = None

    @property
    def device(self) -> torch.device:
        return self.env.device

    @classmethod
    def for_step(
        cls, net: torch.nn.Module, preset: Any, device: torch.device, precision: str
    ) -> "PlanContext":
        """The context of one process on ``device`` with no data (the class count comes from the preset): what
        a
        timed training step or the self-check plans with."""
        from bench.training.runtime import DistEnv

        return cls(
            net,
            preset,
            preset.num_classes,
            False,
            DistEnv(device=device),
            precision,
            0,
            preset.dataset,
            "adabench",
        )


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced, for a method's ``summary_extras``."""

    results: Mapping[
        str, Any
    ]  # {"learned", "random", "centre"} -> bench.training.evaluation.EvalResult, whole val split
    flops: Any  # bench.models.flops.FlopsReport
    stages_run: Tuple[str, ...]  # every stage this run has trained (over all its invocations)
    stage_results: Mapping[str, Any]  # end-of-stage evaluations (Stage.end_eval), e.g. "after_stage2"


@dataclass(frozen=True)
class Option:
    """A method's own ``adabench run`` option: shorthand for ``--set <field>=<value>``.

    A flag (``choices`` empty) sets ``field`` to ``value`` when given; a choice option takes one
    of ``choices``. It applies only to the runs of the method that declares it.
    """

    flag: str  # e.g. "--no-aux", "--rl"
    field: str  # the method parameter it sets
    help: str
    value: Any = None  # flags: the value set
    choices: Tuple[str, ...] = ()  # choice options: the allowed values


@dataclass(frozen=True)
class Ablation:
    """A switch of the method that an ablation turns off (``field`` set to False)."""

    field: str  # method parameter, a boolean switch of its params
    short: str  # variant name of a run with it off, e.g. "no-aux"
    label: str  # what it is, for the report: "auxiliary supervision"
    option: str  # the run option that turns it off, e.g. "--no-aux"


@dataclass(frozen=True)
class Column:
    """A results-table column of the method's: one field of its ``train`` parameters (config.yaml), shown
    in results.csv and used to tell configurations apart in the report."""

    field: str  # the method parameter, a field of its params
    kind: str  # results.csv type: str, int, float or bool
    meaning: str  # for docs/results-schema.md
    name: str = ""  # the column's name when it differs from ``field``

    @property
    def column(self) -> str:
        return self.name or self.field


@dataclass(frozen=True)
class OfficialStep:
    """One training step of the method's official code, timed beside ours by ``adabench selfcheck``
    (``bench.tools.official_code`` loads the code from a local snapshot; nothing of it is in this
    repository)."""

    env: str  # environment variable naming a checkout (or git directory) of the official code
    folder: str  # the folder of that checkout whose code the step runs
    stage: str  # our stage whose step it corresponds to
    dataset: str  # the shapes: this dataset's paper preset ...
    arch: str  # ... with this --arch (the architecture the official code builds)
    build: Callable[
        ..., Callable[[], Any]
    ]  # build(preset, device, batch) -> one official step (inside official_modules)
    label: str = ""  # what the step is, for the timings table


@dataclass(frozen=True)
class Method:
    """One registered training method.

    params(preset_name, variant, dataset) -> the method's hyper-parameter dataclass (frozen, with a
        ``batch_size`` field; ``--set`` overrides its fields by name).
    with_epochs(params, epochs) -> params for ``--epochs`` (the method decides how it applies).
    arch(preset_fields, preset_name, variant, arch) -> the shared preset fields the method sets
        (its policy head, crop operator, value head; with ``arch="paper"`` its own architecture).
    plan(ctx: PlanContext) -> the training stages (``bench.training.driver.Stage``) of a run.
    summary_extras(ctx: PlanContext, outcome: RunOutcome) -> the method's own summary keys.
    import_checkpoint(src, dataset, out, *, patch_size, glance_arch, overrides) -> an ``ImportReport``
        (``bench.models.importing``): converts a checkpoint of the method's official code into an adabench
        model file (``adabench import-checkpoint``); None for a method without official checkpoints.
    """

    name: str
    title: str  # report label, e.g. "AdaFocusV2"
    description: str  # one line for `--help` and `adabench methods`
    params: Callable[[str, str, str], Any]
    with_epochs: Callable[[Any, int], Any]
    arch: Callable[[Mapping[str, Any], str, str, str], Dict[str, Any]]
    plan: Callable[[PlanContext], List[Any]]
    summary_extras: Callable[[PlanContext, RunOutcome], Dict[str, Any]] = lambda ctx, outcome: {}
    options: Tuple[Option, ...] = ()
    ablations: Tuple[Ablation, ...] = ()
    columns: Tuple[Column, ...] = ()  # its switches as results.csv columns (ablation fields among them)
    flops_aux_heads: bool = False  # FLOPs rule: the published inference cost counts the auxiliary heads
    baseline: Optional[str] = None  # the method its paper's claims are measured against
    claims: Any = None  # published figures for those claims (reports.claims reads them)
    stage_names: Tuple[str, ...] = field(default=())  # for `--stages` help and validation
    import_checkpoint: Optional[Callable[..., Any]] = None  # official checkpoints -> model file
    # fields of ``params`` that `adabench tune` sweeps (bench.tools.tune); every tuned method declares as many
    tunable: Tuple[str, ...] = ()
    # regime(preset) -> {"kept": {name: value}, "epochs": {stage: n}, "sgd_lr": {name: lr / batch},
    #   "tuned": {name: value}}: the method's part of the scale model's table (bench.regime)
    regime: Callable[[Any], Dict[str, Dict[str, float]]] = lambda preset: {}
    # stages that pre-train backbones on whole frames before the method proper: claim (b) is also given
    # without them (the papers do not say whether V1's time includes them), and `adabench project` shows both
    pretraining_stages: Tuple[str, ...] = ()
    official_step: Optional[OfficialStep] = None  # the official code's step at the paper's shapes (selfcheck)
    # official_devices(variant) -> {stage: (devices, source)}: the official scripts' device count per stage
    # (`adabench project --devices official`); None: not known
    official_devices: Optional[Callable[[str], Mapping[str, Tuple[int, str]]]] = None
    # (preset, classes) -> its own network, if any
    network: Optional[Callable[[Any, Optional[int]], Any]] = None
    demo: bool = True  # in `adabench demo` (`make demo`) when no --method is given

    def variant(self, params: Any) -> str:
        """'full', or the ablated switches of ``params`` (e.g. 'no-aux', 'no-div+no-sg')."""
        off = [a.short for a in self.ablations if getattr(params, a.field, True) is False]
        return "+".join(off) if off else "full"


def register_method(method: Method) -> Method:
    """Add ``method`` to the registry (called by the method's package on import)."""
    METHODS.register(method.name)(method)
    return method


_loaded = False


def load_methods() -> None:
    """Import every method package: the ``adabench.methods`` entry points, then ``$ADABENCH_METHODS``."""
    global _loaded
    if _loaded:
        return
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()
    for name in filter(None, (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UsageError(f"{PLUGINS_ENV}: cannot import method module {name!r} ({e})") from None
    _loaded = True


def get_method(name: str) -> Method:
    load_methods()
    return METHODS.get(name)


def method_names() -> List[str]:
    load_methods()
    return METHODS.names()


def all_methods() -> List[Method]:
    return [get_method(n) for n in method_names()]


def comparison_pairs(names: Sequence[str]) -> List[Tuple[Method, Method]]:
    """(baseline, method) for every method among ``names`` whose baseline is also among them."""
    present = set(names)
    out = []
    for n in sorted(present):
        m = get_method(n)
        if m.baseline in present:
            out.append((get_method(m.baseline), m))
    return out


def title(name: str) -> str:
    """A method's report label (its registered title; the bare name for a method not installed here)."""
    load_methods()
    return METHODS.get(name).title if name in METHODS else str(name)


def all_ablations() -> List[Tuple[Method, Ablation]]:
    """Every registered method's ablations, with their method."""
    return [(m, a) for m in all_methods() for a in m.ablations]


def all_columns() -> List[Column]:
    """Every registered method's result columns, first declaration of a column name first."""
    seen: Dict[str, Column] = {}
    for m in all_methods():
        for c in m.columns:
            seen.setdefault(c.column, c)
    return list(seen.values())


def own_names() -> Tuple[str, ...]:
    """Every name that belongs to one method (its options' fields and flags, ablation fields, result columns):
    shared code must not spell any of them (tests/test_dependencies.py)."""
    names: Set[str] = set()
    for m in all_methods():
        names.update(o.field for o in m.options)
        names.update(o.flag.lstrip("-") for o in m.options)
        names.update(a.field for a in m.ablations)
        names.update(n for c in m.columns for n in (c.field, c.column))
    return tuple(sorted(names))


def method_preset_fields() -> Tuple[str, ...]:
    """Preset fields that belong to a method rather than to the shared architecture: ``method``, ``train``,
    ``patch_size`` (swept inside one experiment) and every field some method's ``arch`` hook sets. Runs that
    differ only in these belong to one matched experiment."""
    fields = {"method", "train", "patch_size"}
    for m in all_methods():
        for name in ("paper", "tiny"):
            for variant in ("frame", "video"):
                for arch in ("matched", "paper"):
                    fields.update(m.arch({}, name, variant, arch))
    return tuple(sorted(fields))
