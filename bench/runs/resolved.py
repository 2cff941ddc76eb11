"""``ResolvedRun``: one run's configuration resolved once (preset, precision, protocol, hash, method) and
passed
down, so nothing below the planner resolves it again or tests the protocol by name.

``Protocol`` holds what ``--protocol`` changes in shared code, as data: model selection, the learning curve's
cadence and split, the views' augmentation. A method reads ``protocol.name`` as a key of its own table
(e.g. V2's early-exit calibration), never in an if-test of shared code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Set

from bench.runs.config import RunConfig


@dataclass(frozen=True)
class Protocol:
    """What one ``--protocol`` means for every method (docs/design.md §Protocols)."""

    name: str
    select_best: bool  # the run's model is its best validation point, not its last epoch
    curve_on_full_split: bool  # learning-curve points score the whole validation split
    curve_every_epoch: tuple  # variants whose official scripts validate after every epoch
    independent_views: bool  # the glance view gets its own crop and flip


PROTOCOL_RULES: Dict[str, Protocol] = {
    "adabench": Protocol(
        "adabench",
        select_best=False,
        curve_on_full_split=False,
        curve_every_epoch=(),
        independent_views=False,
    ),
    # the official codes: best-validation checkpoint, selected on the whole validation split; the
    # Sth-Sth/Jester scripts validate every epoch and augment glance and focus views apart
    "official": Protocol(
        "official",
        select_best=True,
        curve_on_full_split=True,
        curve_every_epoch=("video",),
        independent_views=True,
    ),
}


@dataclass(frozen=True)
class ResolvedRun:
    """A planned run with everything resolved: built by ``ResolvedRun.of`` and never resolved again."""

    cfg: RunConfig  # precision resolved: config.yaml records what runs
    preset: Any  # bench.presets.Preset
    method: Any  # bench.methods.Method
    protocol: Protocol
    config_hash: str

    @classmethod
    def of(cls, cfg: RunConfig) -> "ResolvedRun":
        from bench.methods import get_method
        from bench.runs.config import computation_identity, identity_hash

        cfg = dataclasses.replace(cfg, precision=cfg.resolved_precision())
        preset = cfg.resolve_preset()
        digest = identity_hash(computation_identity(cfg.to_dict(), preset.to_dict()))
        return cls(cfg, preset, get_method(cfg.method), PROTOCOL_RULES[cfg.protocol], digest)

    @property
    def variant(self) -> str:
        return str(self.method.variant(self.preset.train))

    @property
    def label(self) -> str:
        """e.g. ``v2-no-aux p32 s0``."""
        v = self.variant
        return f"{self.cfg.method}{'' if v == 'full' else '-' + v} p{self.cfg.patch_size} s{self.cfg.seed}"

    def curve_epochs(self, n: int) -> Set[int]:
        """The 0-based epochs of an n-epoch stage that get a learning-curve point: every epoch on tiny presets
        (cheap) and where the protocol's official scripts validate every epoch; on paper presets every 5th and
        each of the last 10 (the V2 ActivityNet code's cadence)."""
        if self.preset.name == "tiny" or self.preset.variant in self.protocol.curve_every_epoch:
            return set(range(n))
        return {e for e in range(n) if (e + 1) % 5 == 0 or e >= n - 10}
