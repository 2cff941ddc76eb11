"""``gpu-check.md``: the record of ``adabench selfcheck`` (``bench.tools.selfcheck_command.run_selfcheck``) as
Markdown: the environment, one table of checks, then the timings (training steps with the achieved fraction of
the measured matmul peak, inference against the full-frame baseline, the official code side by side) and what
was
skipped."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def checks_table(checks: List[Mapping[str, Any]]) -> str:
    head = "| check | result | tolerance | measured / reason | s |\n|---|---|---|---|---|\n"
    return head + "".join(
        f"| {_cell(c['name'])} | **{c['status']}** | {_cell(c['tolerance'])} | "
        f"{_cell(c['detail'])} | {c['seconds']:.1f} |\n"
        for c in checks
    )


def train_step_table(rows: List[Mapping[str, Any]]) -> str:
    head = (
        "| method | stage | precision | s/step (median) | videos/s | GFLOP/step | achieved GFLOP/s | "
        "matmul peak GFLOP/s | fraction of peak |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r['method']} | {r['step']} | {r['precision']} | {r['median_s']:.4g} | {r['videos_per_s']:.1f} | "
        f"{r['gflop_per_step']:.4g} | {r['achieved_gflops']:.1f} | {r['peak_gflops']:.1f} | "
        f"{100 * r['utilisation']:.0f} % |\n"
        for r in rows
    )


def inference_table(rows: List[Mapping[str, Any]]) -> str:
    head = (
        "| network | GFLOPs/video | videos/s | ms/batch | GFLOPs ratio vs full-frame | measured speed-up |\n"
        "|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r['network']} | {r['gflops_per_video']:.4g} | {r['videos_per_s']:.1f} | "
        f"{r['ms_per_batch']:.1f} | "
        f"{r['gflops_ratio']:.2f}x | {r['measured_speedup']:.2f}x |\n"
        for r in rows
    )


def official_table(rows: List[Mapping[str, Any]]) -> str:
    precisions = sorted(
        {k[:-2] for r in rows for k in r if k.endswith("_s") and k != "official_s"},
        key=lambda p: (p != "fp32", p),
    )
    head = (
        "| step | shapes | official s | "
        + " | ".join(f"ours {p} s | {p} / official" for p in precisions)
        + " |\n|---|---|---|"
        + "---|---|" * len(precisions)
        + "\n"
    )
    return head + "".join(
        f"| {r['label']} | {r['dataset']} {r['arch']}, batch {r['batch']} x {r['frames']} frames, "
        f"p{r['patch_size']} "
        f"| {r['official_s']:.4g} | "
        + " | ".join(f"{r[p + '_s']:.4g} | {r[p + '_ratio']:.2f}x" for p in precisions)
        + " |\n"
        for r in rows
    )


def selfcheck_markdown(record: Mapping[str, Any]) -> str:
    env = record["environment"]
    checks = record["checks"]
    counts = {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "skipped")}
    parts = [
        f"# adabench selfcheck on {env['device']}\n",
        ", ".join(f"{k} {v}" for k, v in env.items() if v is not None) + "\n",
        f"**{'PASSED' if record['passed'] else 'FAILED'}**: {counts['pass']} passed, {counts['fail']} "
        f"failed, "
        f"{counts['skipped']} skipped; {record['elapsed_s']:.0f} s of a {record['budget_s']:.0f} s budget"
        + ("" if record.get("complete", True) else " (INCOMPLETE: the command did not finish)")
        + ".\n",
        "## Checks\n",
        checks_table(checks),
    ]
    t: Dict[str, Any] = record.get("timings") or {}
    if t:
        shapes = t["shapes"]
        parts.append(f"## Timings ({shapes['name']} shapes, random weights)\n")
        peaks = ", ".join(f"{p['precision']} {p['gflops']:.0f} GFLOP/s" for p in t.get("matmul", []))
        if peaks:
            parts.append(f"Measured matmul peak: {peaks}.\n")
        if t.get("train_steps"):
            r0 = t["train_steps"][0]
            parts += [
                f"### Training steps ({r0['dataset']} {r0['preset']}, batch {r0['batch']})\n",
                train_step_table(t["train_steps"]),
            ]
        if t.get("inference"):
            r0 = t["inference"][0]
            parts += [
                f"### Inference ({r0['dataset']} {r0['preset']}, batch {r0['batch']}, {r0['precision']})\n",
                inference_table(t["inference"]),
            ]
        if t.get("official"):
            parts += [
                "### Beside the official code (same process, round-robin, synchronised)\n",
                official_table(t["official"]),
            ]
        for title, key in (("Skipped", "skipped"), ("Errors", "errors")):
            if t.get(key):
                parts += [f"### {title}\n", "".join(f"- {_cell(line)}\n" for line in t[key])]
    return "\n".join(parts)


def summary_lines(record: Mapping[str, Any]) -> List[str]:
    """What the command prints at the end: one line per check, then the verdict."""
    lines = [f"{c['status']:7s} {c['name']}" for c in record["checks"]]
    errors = (record.get("timings") or {}).get("errors") or []
    lines += [f"error   timing {e}" for e in errors]
    lines.append(f"selfcheck {'passed' if record['passed'] else 'FAILED'} in {record['elapsed_s']:.0f} s")
    return lines
