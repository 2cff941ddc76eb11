"""Parameter-name layouts of backbones as other code bases save them, converted to ours.

Our backbones use torchvision's parameter names (``bench.models.backbones``). Weights found in the
wild use three other layouts of the same tensors:

- **tonylins MobileNetV2** (github.com/tonylins/pytorch-mobilenet-v2; the ImageNet file
  ``mobilenetv2_1.0-f2a8633.pth.tar`` and every TSM MobileNetV2 checkpoint): each inverted-residual
  block is one flat ``conv`` Sequential (conv, BN, ReLU6, ...), where torchvision nests conv+BN pairs.
  The first block (expansion 1) is ``conv.{0,1,3,4}`` -> ``conv.0.0, conv.0.1, conv.1, conv.2``; the
  others ``conv.{0,1,3,4,6,7}`` -> ``conv.0.0, conv.0.1, conv.1.0, conv.1.1, conv.2, conv.3``.
  The stem and the last 1x1 conv (``features.0`` / ``features.18``) are already named alike.
- **TSM wrappers**: the temporal shift wraps a conv in a module whose own child is ``net``
  (``layer1.0.conv1.net.weight``, ``features.2.conv.0.net.weight``); our shift is a hook, so the
  ``.net`` segment is dropped.
- **ResNet as a Sequential of its children** (the V1 Sth-Sth stage scripts cut the fc off that way):
  ``0.``/``1.``/``4.``..``7.`` stand for ``conv1``/``bn1``/``layer1``..``layer4``.

All functions work on backbone-relative keys (no ``module.``/wrapper prefixes).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

# torchvision MobileNetV2 never has an index above 3 inside a block's ``conv``; tonylins always does
_TONYLINS_HINT = re.compile(r"^features\.\d+\.conv\.[4-7]\.")
_BLOCK = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.*)$")
_FIRST_BLOCK = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_EXPAND_BLOCK = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
_SEQUENTIAL_RESNET = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}
_SHIFT_WRAPPER = re.compile(r"\.net(?=\.)")

# classifier keys of the layouts above (never part of a backbone): dropped when loading weights
HEAD_PREFIXES: Sequence[str] = ("fc.", "classifier.", "head.", "new_fc.", "new_new_fc.")


def strip_shift_wrappers(key: str) -> str:
    """``layer1.0.conv1.net.weight`` -> ``layer1.0.conv1.weight`` (TSM's wrapper module)."""
    return _SHIFT_WRAPPER.sub("", key)


def is_tonylins_mbv2(keys: Iterable[str]) -> bool:
    """True if these (backbone-relative, wrapper-free) keys use the tonylins MobileNetV2 layout."""
    return any(_TONYLINS_HINT.match(k) for k in keys)


def tonylins_mbv2_key(key: str) -> str:
    """One tonylins MobileNetV2 key -> torchvision's name (keys outside the blocks are unchanged)."""
    m = _BLOCK.match(key)
    if not m:
        return key
    block, index, rest = m.groups()
    table = _FIRST_BLOCK if block == "1" else _EXPAND_BLOCK
    if index not in table:
        raise KeyError(f"'{key}' is not a parameter of a tonylins MobileNetV2 block")
    return f"features.{block}.conv.{table[index]}.{rest}"


def sequential_resnet_key(key: str) -> str:
    """``4.0.conv1.weight`` (ResNet children as a Sequential) -> ``layer1.0.conv1.weight``."""
    head, _, rest = key.partition(".")
    return f"{_SEQUENTIAL_RESNET[head]}.{rest}" if head in _SEQUENTIAL_RESNET and rest else key


def to_torchvision(state: Mapping[str, object]) -> dict:
    """A backbone state dict in any layout above -> torchvision names (heads are left in)."""
    keys = {strip_shift_wrappers(k): v for k, v in state.items()}
    if is_tonylins_mbv2(keys):
        return {tonylins_mbv2_key(k): v for k, v in keys.items()}
    if any(re.match(r"^[4-7]\.\d+\.", k) for k in keys):
        return {sequential_resnet_key(k): v for k, v in keys.items()}
    return keys
