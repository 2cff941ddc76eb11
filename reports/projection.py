"""Claim (b) at the paper's full schedule, projected from measured steps (``adabench project``), as claims
rows of their own: never pooled with or tested like the trained runs' rows (one projection, no seeds, no
interval). Projection files are ``<runs_dir>/projections/*.json`` plus any given explicitly.

Verdict of a row: the projected baseline/proposed ratio against the measured claim's minimum effect
(``reports.claims.SPEEDUP_MIN``) in all four accountings (wall-clock and device-hours, with and without
the baseline's pre-training stages): above it in all, below it in all, or depending on the accounting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from bench.errors import UsageError
from bench.io import read_json
from bench.stats import FAILS, HOLDS
from reports.claims import SPEEDUP_MIN, Claim, claims_markdown

PROJECTIONS_DIR = "projections"
KIND = "adabench-projection"
CLAIM = "(b) at the paper's schedule, projected from measured steps"
ACCOUNTINGS = ("wall", "wall_without_pretraining", "device", "device_without_pretraining")


def find_projections(
    runs_dir: Any, given: Sequence[Any] = ()
) -> Tuple[List[Tuple[Path, Dict[str, Any]]], List[str]]:
    """(path, projection) of every projection file in ``runs_dir``/projections and ``given``, and the files
    found there that are not projections. A given file that cannot be read is a one-line UsageError."""
    found, bad = [], []
    for path in sorted((Path(runs_dir) / PROJECTIONS_DIR).glob("*.json")):
        try:
            obj = read_json(path)
        except Exception:  # noqa: BLE001 - a broken file in the runs dir is named, not fatal
            obj = None
        (
            found.append((path, obj))
            if isinstance(obj, dict) and obj.get("kind") == KIND
            else bad.append(str(path))
        )
    for p in map(Path, given):
        try:
            obj = read_json(p)
        except Exception as e:  # noqa: BLE001
            raise UsageError(f"--projection {p}: cannot read it ({type(e).__name__})") from None
        if not isinstance(obj, dict) or obj.get("kind") != KIND:
            raise UsageError(f"--projection {p}: not a projection written by `adabench project`")
        found.append((p, obj))
    return found, bad


def _verdict(row: Dict[str, Any]) -> str:
    above = [row[k] >= SPEEDUP_MIN for k in ACCOUNTINGS]
    word = HOLDS if all(above) else FAILS if not any(above) else "depends on the accounting"
    return f"{word} (projected)"


def projection_claims(proj: Dict[str, Any]) -> List[Claim]:
    """One claims row per (patch size, precision, compared pair) of a projection."""
    n = proj["devices"]
    devices = "official devices" if n == "official" else f"{n} device{'s' if int(n) > 1 else ''} per stage"
    out = []
    for r in proj["ratios"]:
        pre = ", ".join(r["pretraining_stages"]) or "none"
        m = (
            f"{r['label']} {r['baseline_hours']:.3g} h vs {r['proposed_hours']:.3g} h on this machine; "
            f"wall-clock "
            f"{r['wall']:.2f}× ({r['wall_without_pretraining']:.2f}× without {pre}); device-hours "
            f"{r['device']:.2f}× ({r['device_without_pretraining']:.2f}× without {pre}); from each stage's "
            f"fastest "
            f"step {r['wall_from_min']:.2f}×"
        )
        out.append(
            Claim(
                CLAIM,
                f"{proj['dataset']} {r['patch_size']}² · {r['precision']} · {devices}",
                r["published"],
                m,
                f"{r['wall']:.2f}× wall-clock",
                1,
                _verdict(r),
            )
        )
    return out


def projection_section(runs_dir: Any, given: Sequence[Any] = ()) -> str:
    """The report's section of projected claim-(b) rows ('' when there is no projection)."""
    found, bad = find_projections(runs_dir, given)
    if not found:
        return ""
    claims = [c for _, proj in found for c in projection_claims(proj)]
    files = "; ".join(
        f"`{p}` ({proj['timing']['repeats']} timed steps per stage at batch "
        f"{proj['timing']['batch']}, {proj['timing']['device']})"
        for p, proj in found
    )
    text = (
        f"## Claim {CLAIM}\n\nNot trained runs: each stage's step time measured here at the preset's "
        f"shapes, times the "
        "steps of the paper's full schedule, on the official scripts' devices or a given count (`adabench "
        "project`). One projection, no seeds, no interval; the verdict compares the projected ratio with the "
        f"measured claim's minimum of {SPEEDUP_MIN:g}× in wall-clock and device-hours, with and without the "
        f"baseline's pre-training. Files: {files}.\n\n" + claims_markdown(claims)
    )
    if bad:
        text += "\nNot read (not a projection): " + ", ".join(f"`{b}`" for b in bad) + ".\n"
    return text
