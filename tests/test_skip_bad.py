"""Issue 21 case 4: ``--skip-bad`` drops a bad item (never substitutes the next one), counts what was
evaluated, lists each skipped item once, and says so on the console and in the report; claims over runs
that skipped different validation items are marked."""

from __future__ import annotations

import json
from pathlib import Path

from reports.report import build_report
from tests.fixtures_data import write_frames
from tests.fixtures_results import matched_summaries, write_run
from tests.fixtures_runs import one_thread, run_in_process

__all__ = ["one_thread"]
ARGS = [
    "--method",
    "v2",
    "--dataset",
    "jester",
    "--device",
    "cpu",
    "--workers",
    "0",
    "--no-progress",
    "--quiet",
    "--set",
    "frames=4",
    "--set",
    "glance_frames=4",
    "--set",
    "input_size=32",
    "--set",
    "resize=32",
    "--set",
    "patch_size=16",
    "--set",
    "glance_size=16",
    "--set",
    "batch_size=2",
    "--set",
    "epochs=1",
]


def _set_with_a_corrupt_val_folder(root: Path) -> Path:
    """Jester TSM lists: 4 train and 4 val frame folders; every frame of val folder v2 is junk (its header,
    the file count, is fine, so only reading it finds it)."""
    root.mkdir(parents=True)
    (root / "category.txt").write_text("a\nb\n")
    for split in ("train", "val"):
        for k in range(4):
            write_frames(root / "f" / f"{split[0]}{k}", 8)
        (root / f"{split}_videofolder.txt").write_text(
            "".join(f"f/{split[0]}{k} 8 {k % 2}\n" for k in range(4))
        )
    for f in (root / "f" / "v2").iterdir():
        f.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def test_a_corrupt_val_folder_is_dropped_counted_once_and_reported(tmp_path, capsys, one_thread):
    root = _set_with_a_corrupt_val_folder(tmp_path / "jester")
    runs = tmp_path / "runs"
    assert (
        run_in_process(["run", *ARGS, "--data-root", str(root), "--runs-dir", str(runs), "--skip-bad"]) == 0
    )
    out = capsys.readouterr().out
    assert "--skip-bad: 1 val item skipped (listed in manifest.json)" in out and " train item" not in out
    run_dir = next(runs.rglob("summary.json")).parent
    summary = json.loads((run_dir / "summary.json").read_text())
    bad = str(root / "f" / "v2")
    assert summary["num_val_videos"] == 3  # what was evaluated, not the list's 4
    assert summary["skipped_items"] == {"train": [], "val": [bad]}
    listed = json.loads((run_dir / "manifest.json").read_text())["bad_items"]
    assert [p for p, _ in listed] == [bad] and "cannot decode image" in listed[0][1]
    md = build_report(runs, tmp_path / "report").read_text()
    assert "**Skipped items (`--skip-bad`" in md and "0 train / 1 val" in md
    assert "Marked: the claims above" not in md  # one run: nothing compared on different videos


def test_claims_over_runs_that_skipped_different_val_items_are_marked(tmp_path):
    runs = tmp_path / "runs"
    for s in matched_summaries(seeds=(0, 1, 2), patch_sizes=(32,)):
        skipped = ["/data/val/7"] if (s["method"], s["seed"]) == ("v2", 1) else []
        write_run(runs, {**s, "skipped_items": {"train": [], "val": skipped}})
    md = build_report(runs, tmp_path / "report").read_text()
    assert "AdaFocusV2 p32 s1: 0 train / 1 val" in md and "AdaFocusV1 p32 s1: 0 train / 0 val" in md
    assert "**Marked: the claims above compare runs that skipped different validation items**" in md
