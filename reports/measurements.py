"""Markdown renderings of the measurements the tools make: throughput, training steps, the paper-schedule
projection, and the scale model's regime table (the records come from bench/)."""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Sequence

from bench.regime import FLAG_OFF, off_fraction, regime_rows
from bench.tools.projection import OFFICIAL


def throughput_markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The ``benchmark_preset`` rows as a Markdown table."""
    head = (
        "| Network | GFLOPs/video | Params (M) | videos/s | ms/batch (median) | IQR (ms) | "
        "GFLOPs ratio vs full-frame | measured speed-up (median) | measured speed-up (best call) |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['network']} | {r['gflops_per_video']:.4g} | {r['params_m']:.2f} | {r['videos_per_s']:.1f} | "
        f"{r['ms_per_batch']:.1f} | {r['ms_per_batch_iqr']:.1f} | {r['gflops_ratio']:.2f}× | "
        f"{r['measured_speedup']:.2f}× | {r['measured_speedup_best']:.2f}× |\n"
        for r in rows
    )
    r0 = rows[0]
    return (
        head + body + f"\nbatch {r0['batch']}, {r0['warmup']} warm-up + {r0['repeats']} timed calls "
        f"(median), device {r0['device']}, {r0.get('precision', 'fp32')}, eval mode, no_grad.\n"
    )


def train_step_markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The ``benchmark_train_steps`` rows as a Markdown table."""
    head = (
        "| method | step | precision | channels_last | median s/step | CPU s/step | GFLOP/step | "
        "achieved GFLOP/s | matmul peak GFLOP/s | utilisation |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['method']} | {r['step']} | {r['precision']} | {'on' if r['channels_last'] else 'off'} | "
        f"{r['median_s']:.4g} | {r['cpu_median_s']:.4g} | {r['gflop_per_step']:.4g} | "
        f"{r['achieved_gflops']:.1f} | "
        f"{r['peak_gflops']:.1f} | {100 * r['utilisation']:.0f} % |\n"
        for r in rows
    )
    r0 = rows[0]
    return (
        head + body + f"\n{r0['dataset']} {r0['preset']} preset ({r0['arch']}), patch {r0['patch_size']}, "
        f"batch {r0['batch']} x {r0['frames']} frames at {r0['input_size']}², {r0['warmup']} warm-up + "
        f"{r0['repeats']} timed steps each (round-robin, median), device {r0['device']}, "
        f"{r0['threads']} threads. CPU s: process CPU time over all threads. FLOPs: forward + backward, 2 "
        f"per "
        "multiply-add.\n"
    )


def projection_markdown(proj: Dict[str, Any]) -> str:
    """The projection as Markdown: stages, then the ratios next to the published one, then the assumptions."""
    t = proj["timing"]
    out = [
        f"## {proj['dataset']} · {proj['preset']} preset · {_devices_text(proj)}\n",
        f"{proj['train_videos']:,} training videos ({proj['train_videos_source']}); step times measured at "
        f"batch {t['batch']} ({t['warmup']} warm-up + {t['repeats']} timed steps each, round-robin, median), "
        f"device {t['device']}, {t['threads']} threads, {t['seconds'] / 60:.1f} min of measuring.\n",
        "| P | precision | method | stage | measured s/step (min–max) | s/step at preset batch | "
        "steps/epoch | "
        "epochs | devices | hours | device-hours |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in proj["stages"]:  # ordered by project()
        shared = f" (timed at {s['timed_at_patch']})" if s.get("timed_at_patch") else ""
        out.append(
            f"| {s['patch_size']} | {s['precision']} | {s['method']} | {s['stage']}{shared} | "
            f"{s['measured_s_per_step']:.3g} ({_spread(s)}) | {_h(s['s_per_step'])} (batch "
            f"{s['preset_batch']}) | {s['steps_per_epoch']} | {s['epochs']} | {s['devices']} | "
            f"{_h(s['hours'])} | {_h(s['device_hours'])} |"
        )
    out += [
        "",
        "| P | precision | ratio | wall-clock | wall-clock without pre-training | device-hours | "
        "device-hours without pre-training | wall-clock from fastest steps | paper |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in proj["ratios"]:
        out.append(
            f"| {r['patch_size']} | {r['precision']} | {r['label']} | {_x(r['wall'])} | "
            f"{_x(r['wall_without_pretraining'])} | {_x(r['device'])} | "
            f"{_x(r['device_without_pretraining'])} | {_x(r['wall_from_min'])} | {r['published']} |"
        )
    pre = sorted({s for r in proj["ratios"] for s in r["pretraining_stages"]})
    out += ["", f"Pre-training stages (left out in the 'without' columns): {', '.join(pre) or 'none'}."]
    if proj["devices"] == OFFICIAL:
        out.append(
            "Devices per stage: "
            + "; ".join(
                sorted(
                    {
                        f"{s['method']} {s['stage']}: {s['devices']} ({s['devices_source']})"
                        for s in proj["stages"]
                    }
                )
            )
            + "."
        )
    out.append("Assumptions: " + "; ".join(proj["assumptions"]) + ".")
    if proj.get("weights"):
        out.append(f"Backbone {proj['weights']}.")
    return "\n".join(out) + "\n"


def regime_markdown(records: Mapping[str, Mapping[str, Any]]) -> str:
    """The regime table: quantity | here | paper | off | flag."""
    lines = ["| quantity | here | paper | off | |", "|---|---|---|---|---|"]
    for name, v, pv, flagged in regime_rows(records):
        off = off_fraction(v, pv)
        lines.append(
            f"| {name} | {v:.4g} | {pv:.4g} | {'∞' if math.isinf(off) else f'{100 * off:.0f} %'} | "
            f"{'⚠ more than 10 % off' if flagged else ''} |"
        )
    n_flagged = sum(r[3] for r in regime_rows(records))
    lines.append("")
    lines.append(
        f"{n_flagged} quantit{'y' if n_flagged == 1 else 'ies'} more than {FLAG_OFF:.0%} off the paper's."
        if n_flagged
        else "Every kept quantity is within 10 % of the paper's."
    )
    return "\n".join(lines) + "\n"


def _x(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _h(v: float) -> str:
    return f"{v:.0f}" if v >= 100 else f"{v:.3g}"


def _spread(s: Dict[str, Any]) -> str:
    lo, hi = s["measured_min_s"], s["measured_max_s"]
    return f"{lo:.3g}–{hi:.3g}" if hi > lo else "–"


def _devices_text(proj: Dict[str, Any]) -> str:
    if proj["devices"] == OFFICIAL:
        return "the official scripts' device count per stage"
    n = proj["devices"]
    return f"{n} device{'s' if n > 1 else ''} for every stage (ideal data-parallel scaling, an assumption)"
