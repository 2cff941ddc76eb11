"""Import checkpoints saved by other code into an ``AdaFocusNet``, with every tensor accounted for.

A method package describes an official layout as ``Rule``s (which official key becomes which of our
keys, or is dropped and why); this module applies them:

- each official tensor matches the first rule whose pattern matches its whole key; a tensor no rule
  matches, a rule target our network lacks, a disagreeing shape, or one of our tensors nothing fills
  is a one-line ``UsageError`` naming the key;
- a rule may fill several of our tensors from one official tensor, or one slot ``KEY[i]`` of a
  stacked tensor (``PerStepHeads`` keeps one head per step in a ``[T, D, K]`` weight);
- the layout may declare parts of our network that the official model does not have (``absent``):
  they keep their initialisation and are listed.

``save_model`` writes the network with its resolved preset; ``load_model(path)`` rebuilds it with no
other argument. The file holds tensors and plain values only (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from bench.errors import UsageError
from bench.io import PathLike, atomic_torch_save
from bench.models.build import build_network, without_weight_files
from bench.models.layouts import sequential_resnet_key, strip_shift_wrappers, tonylins_mbv2_key
from bench.models.network import AdaFocusNet
from bench.models.weights import safe_load, sha256_file

FORMAT = "adabench-model"
FORMAT_VERSION = 1
Target = Union[None, str, Tuple[str, ...], Callable[[re.Match], str]]
_SLOT = re.compile(r"^(.*)\[(\d+)\]$")


@dataclass(frozen=True)
class Rule:
    """``pattern`` (regex, whole key) -> ``to``: a ``re`` template, several, a function of the match,
    or None (dropped because ``why``). ``transform`` reshapes the tensor (e.g. ``torch.t``)."""

    pattern: str
    to: Target
    why: str = ""
    transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None


@dataclass(frozen=True)
class OfficialLayout:
    """How one official variant's state dict maps onto our network.

    ``split``: top-level checkpoint entries that hold sub-module state dicts (used when the checkpoint
    has no whole-model state dict), entry -> key prefix. ``absent``: our key prefix -> why the
    official model has no counterpart (kept at initialisation).
    """

    name: str
    rules: Sequence[Rule]
    split: Mapping[str, str] = field(default_factory=dict)
    absent: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ImportReport:
    """What an import did: counts, the dropped official tensors and our tensors left as initialised."""

    source: str
    sha256: str
    layout: str
    mapped: int = 0
    dropped: List[Tuple[str, str]] = field(default_factory=list)
    initialised: List[Tuple[str, str]] = field(default_factory=list)
    ignored_entries: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        """A human summary, one fact per line."""
        out = [
            f"{self.source} ({self.layout}): {self.mapped} tensors mapped, {len(self.dropped)} dropped, "
            f"{len(self.initialised)} left as initialised"
        ]
        out += [f"  dropped {k}: {why}" for k, why in _grouped(self.dropped)]
        out += [f"  initialised {k}: {why}" for k, why in _grouped(self.initialised)]
        if self.ignored_entries:
            out.append(f"  other top-level entries (not read): {', '.join(self.ignored_entries)}")
        return out

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def _grouped(items: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Collapse keys with one reason into ``prefix.* (n tensors)`` per module."""
    groups: Dict[Tuple[str, str], List[str]] = {}
    for key, why in items:
        groups.setdefault((key.rsplit(".", 1)[0], why), []).append(key)
    return [
        (f"{mod}.* ({len(keys)})" if len(keys) > 1 else keys[0], why) for (mod, why), keys in groups.items()
    ]


# ----------------------------------------------------------------------------- reading
def read_checkpoint(path: PathLike) -> Any:
    """``torch.load`` without executing pickled code (``bench.models.weights.safe_load``)."""
    return safe_load(path, "checkpoint")


def _tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def unpack_state(
    obj: Any, path: PathLike, split: Mapping[str, str] = {}
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A checkpoint object -> (flat state dict without ``module.`` prefixes, top-level entries not read).

    The whole-model state dict is the first of ``state_dict``, ``model_state_dict``, ``model`` (or the
    object itself when it is a bare state dict); the ``split`` entries (sub-module state dicts, e.g. a
    policy kept outside the model) add the keys it lacks, under their prefix.
    """
    if not isinstance(obj, Mapping):
        raise UsageError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a state dict")
    if _tensor_dict(obj):
        return {_unwrap_key(k): v for k, v in obj.items()}, []
    state: Dict[str, torch.Tensor] = {}
    used = []
    for key in ("state_dict", "model_state_dict", "model"):
        if _tensor_dict(obj.get(key)):
            state, used = {_unwrap_key(k): v for k, v in obj[key].items()}, [key]
            break
    for entry, prefix in split.items():
        if _tensor_dict(obj.get(entry)):
            used.append(entry)
            for k, v in obj[entry].items():
                state.setdefault(prefix + _unwrap_key(k), v)
    if not state:
        raise UsageError(
            f"checkpoint '{path}' holds no state dict (top-level entries: "
            f"{', '.join(map(str, list(obj)[:8]))})"
        )
    return state, [str(k) for k in obj if k not in used]


def _unwrap_key(key: str) -> str:
    while key.startswith("module."):  # DataParallel / DistributedDataParallel
        key = key[len("module.") :]
    return key


# ----------------------------------------------------------------------------- mapping
def _targets(rule: Rule, m: re.Match, source: str) -> Tuple[str, ...]:
    if callable(rule.to):
        try:
            return (rule.to(m),)
        except KeyError as e:  # a layout converter met a key it does not know
            raise UsageError(f"{source}: {e.args[0]}") from None
    assert rule.to is not None  # the caller drops the keys of a rule to None
    return tuple(m.expand(t) for t in ((rule.to,) if isinstance(rule.to, str) else rule.to))


def resnet_rules(src: str, dst: str) -> List[Rule]:
    """A ResNet body under ``src`` (torchvision names, TSM wrappers, or its children as a Sequential)
    -> our ``dst`` backbone."""
    return [
        Rule(
            re.escape(src) + r"((?:conv1|bn1|layer[1-4])\..*)",
            lambda m: dst + strip_shift_wrappers(m.group(1)),
        ),
        Rule(
            re.escape(src) + r"([014-7]\..*)",
            lambda m: dst + strip_shift_wrappers(sequential_resnet_key(m.group(1))),
        ),
    ]


def mbv2_rules(src: str, dst: str, *, tonylins: bool) -> List[Rule]:
    """A MobileNetV2 ``features`` stack under ``src`` (torchvision or tonylins names, TSM wrappers) ->
    ``dst``."""
    if tonylins:
        return [
            Rule(
                re.escape(src) + r"(features\..*)",
                lambda m: dst + tonylins_mbv2_key(strip_shift_wrappers(m.group(1))),
            )
        ]
    return [Rule(re.escape(src) + r"(features\..*)", lambda m: dst + strip_shift_wrappers(m.group(1)))]


def head_rule(src: str, name: str, why: str) -> Rule:
    """Drop the ``name`` (e.g. ``fc``) weight and bias under ``src``."""
    return Rule(re.escape(src) + re.escape(name) + r"\.(?:weight|bias)", None, why)


def _check_shape(source: str, src: str, dst: str, got: torch.Size, want: torch.Size) -> None:
    if got != want:
        raise UsageError(
            f"{source}: tensor '{src}' has shape {tuple(got)} but the network's '{dst}' is {tuple(want)}"
        )


def convert_state(
    official: Mapping[str, torch.Tensor],
    layout: OfficialLayout,
    target: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
) -> Tuple[Dict[str, torch.Tensor], ImportReport]:
    """Map ``official`` onto the keys and shapes of ``target`` (our network's state dict)."""
    compiled = [(re.compile(r.pattern), r) for r in layout.rules]
    report = ImportReport(source, "", layout.name)
    out: Dict[str, torch.Tensor] = {}
    origin: Dict[str, str] = {}
    slots: Dict[str, Dict[int, Tuple[str, torch.Tensor]]] = {}
    for key, value in official.items():
        match = next(((m, r) for rx, r in compiled for m in [rx.fullmatch(key)] if m), None)
        if match is None:
            raise UsageError(
                f"{source}: tensor '{key}' {tuple(value.shape)} maps to nothing in the {layout.name} layout"
            )
        m, rule = match
        if rule.to is None:
            report.dropped.append((key, rule.why))
            continue
        report.mapped += 1
        tensor = rule.transform(value) if rule.transform else value
        for dst in _targets(rule, m, source):
            slot = _SLOT.match(dst)
            base = slot.group(1) if slot else dst
            if base not in target:
                raise UsageError(
                    f"{source}: tensor '{key}' maps to '{base}', which the network does not have"
                )
            if slot:
                slots.setdefault(base, {})[int(slot.group(2))] = (key, tensor)
                continue
            if dst in out:
                raise UsageError(f"{source}: '{key}' and '{origin[dst]}' both map to '{dst}'")
            _check_shape(source, key, dst, tensor.shape, target[dst].shape)
            out[dst], origin[dst] = tensor.to(target[dst].dtype), key
    for base, parts in slots.items():
        want = target[base].shape
        missing = [i for i in range(want[0]) if i not in parts]
        if missing or len(parts) != want[0]:
            raise UsageError(
                f"{source}: '{base}' needs {want[0]} per-step tensors, the checkpoint has "
                f"{len(parts)} (indices {sorted(parts)})"
            )
        for key, tensor in parts.values():
            _check_shape(source, key, f"{base}[i]", tensor.shape, want[1:])
        out[base] = torch.stack([parts[i][1] for i in range(want[0])]).to(target[base].dtype)
    unfilled = [k for k in target if k not in out]
    for key in unfilled:
        why = next((w for prefix, w in layout.absent.items() if key.startswith(prefix)), None)
        if why is None:
            more = len([k for k in unfilled if not any(k.startswith(p) for p in layout.absent)]) - 1
            raise UsageError(
                f"{source}: the checkpoint has no tensor for the network's '{key}'"
                + (f" (and {more} more)" if more > 0 else "")
                + f" in the {layout.name} layout"
            )
        report.initialised.append((key, why))
    return out, report


# ----------------------------------------------------------------------------- files
def official_paper_preset(
    method: str,
    dataset: str,
    *,
    patch_size: Optional[int] = None,
    glance_arch: Optional[str] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> Any:
    """``method``'s ``paper`` preset with ``--arch paper`` that its official checkpoints of ``dataset`` fit
    (official checkpoints do not record the patch size: ``patch_size`` is the one they were trained with)."""
    from bench.presets import get_preset

    extra = dict(overrides or {})
    if patch_size is not None:
        extra["patch_size"] = patch_size
    return get_preset(dataset, "paper", method=method, arch="paper", glance_arch=glance_arch, **extra)


def import_official(src: PathLike, preset: Any, layout: OfficialLayout, out: PathLike) -> ImportReport:
    """Read an official checkpoint, map it onto ``build_network(preset)`` and write ``out``."""
    obj = read_checkpoint(src)
    official, ignored = unpack_state(obj, src, layout.split)
    preset = without_weight_files(preset)
    net = build_network(preset)
    state, report = convert_state(official, layout, net.state_dict(), str(src))
    net.load_state_dict({**net.state_dict(), **state}, strict=True)
    report.sha256, report.ignored_entries = sha256_file(str(src)), ignored
    save_model(out, net, preset, source=report.as_dict())
    return report


def save_model(
    path: PathLike, net: AdaFocusNet, preset: Any, source: Optional[Mapping[str, Any]] = None
) -> Path:
    """Write ``net``'s weights with ``preset`` (resolved) so that ``load_model(path)`` rebuilds it."""
    return atomic_torch_save(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "preset": preset.to_dict(),
            "state_dict": net.state_dict(),
            "source": dict(source or {}),
        },
        path,
    )


def preset_from_dict(d: Mapping[str, Any]) -> Any:
    """A ``Preset`` from its ``to_dict()`` form; a one-line UsageError if the fields changed since."""
    from bench.presets import Preset

    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(d) - fields)
    if unknown:
        raise UsageError(f"saved preset has fields this version does not know: {', '.join(unknown)}")
    values: Dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
    if isinstance(values.get("train"), Mapping):
        values["train"] = _train_params(values)
    try:
        return Preset(**values)
    except TypeError as e:
        raise UsageError(f"saved preset does not fit this version's Preset ({e})") from None


def _train_params(values: Mapping[str, Any]) -> Any:
    """The method's own hyper-parameters (its registry entry's dataclass) from their saved mapping."""
    from bench.methods import get_method

    try:
        method = get_method(str(values.get("method")))
        default = method.params(values["name"], values["variant"], values["dataset"])
        return dataclasses.replace(default, **values["train"])
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(
            f"saved preset: the {values.get('method')} parameters do not fit this version ({e})"
        ) from None


def read_model(path: PathLike) -> Tuple[AdaFocusNet, Any, Dict[str, Any]]:
    """(network in eval mode, its resolved ``Preset``, its source record) of a file ``save_model`` wrote."""
    obj = read_checkpoint(path)
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not an adabench model file (write one with import-checkpoint)")
    preset = without_weight_files(preset_from_dict(obj["preset"]))
    net = build_network(preset)
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as e:
        raise UsageError(
            f"'{path}': weights do not fit the saved preset ({str(e).splitlines()[0]})"
        ) from None
    return net.eval(), preset, dict(obj.get("source") or {})


def load_model(path: PathLike) -> AdaFocusNet:
    """The network saved by ``save_model`` / ``import_official``, with its weights, in eval mode."""
    return read_model(path)[0]


def model_info(path: PathLike) -> Dict[str, Any]:
    """The preset and source record of a model file, without building the network."""
    obj = read_checkpoint(path)
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise UsageError(f"'{path}' is not an adabench model file (write one with import-checkpoint)")
    return {"preset": dict(obj["preset"]), "source": dict(obj.get("source", {}))}
