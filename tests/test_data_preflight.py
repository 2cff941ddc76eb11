"""Issue 14: ``data check`` finds everything ``run`` would trip on, a preflight stops a broken run before
its first epoch, and decord's own messages never follow our one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures_data import make_sthv2_webm, make_synthetic, make_tsm_lists, write_video

import cli
from bench.data import ClipSpec, check_dataset, create_dataset, preflight
from bench.errors import DataError

SPEC = ClipSpec(frames=4, input_size=24, resize=28)
REPO = Path(__file__).resolve().parents[1]


def _break_frames(root: Path) -> dict:
    """Four-frame folders (a 4-frame clip reads every frame) with one broken frame each."""
    make_tsm_lists(root, counts=(4, 4, 4, 4), val_counts=(4,))
    frames = root / "20bn-jester-v1"
    jpg = (frames / "1" / "00002.jpg").read_bytes()
    (frames / "1" / "00002.jpg").write_bytes(jpg[: len(jpg) // 2])  # truncated JPEG
    (frames / "2" / "00003.jpg").write_bytes(b"")  # zero bytes
    (frames / "3" / "00001.jpg").write_text("not an image\n")  # text named .jpg
    return {"1": "00002.jpg", "2": "00003.jpg", "3": "00001.jpg"}


def test_full_decode_reports_every_frame_run_would_fail_on(tmp_path):
    broken = _break_frames(tmp_path)
    report = check_dataset("jester", tmp_path, full_decode=True)
    assert len(report.problems) == 3, report.problems
    for vid, frame in broken.items():
        assert sum(f"20bn-jester-v1/{vid}/{frame}: cannot decode image" in p for p in report.problems) == 1
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=False)
    for i in range(3):  # run trips on each of them...
        with pytest.raises(DataError, match="cannot decode image"):
            ds[i]
    ds[3]  # ...and not on the intact one
    # the quick check and the preflight look at headers (file names) only, as documented
    assert check_dataset("jester", tmp_path).ok
    assert preflight(ds) == []


def test_empty_or_missing_split_is_a_problem(tmp_path):
    make_tsm_lists(tmp_path)
    (tmp_path / "val_videofolder.txt").write_text("\n")
    report = check_dataset("jester", tmp_path)
    assert report.problems == [f"{tmp_path / 'val_videofolder.txt'}: split 'val' has no videos"]
    with pytest.raises(DataError, match="val_videofolder.txt: split 'val' of jester has no usable videos"):
        create_dataset("jester", tmp_path, "val", SPEC, train=False)
    result = CliRunner().invoke(
        cli.cli, ["data", "check", "--dataset", "jester", "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 1 and "has no videos" in result.output
    (tmp_path / "val_videofolder.txt").unlink()
    report = check_dataset("jester", tmp_path)
    assert [p for p in report.problems if "val_videofolder.txt" in p] == [
        f"{tmp_path / 'val_videofolder.txt'}: file not found"
    ]


def test_a_header_promising_more_frames_is_a_warning_with_exit_0(tmp_path):
    make_sthv2_webm(tmp_path, counts=(30, 10), val_counts=(6,))
    video = tmp_path / "20bn-something-something-v2" / "50.webm"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    result = CliRunner().invoke(
        cli.cli, ["data", "check", "--dataset", "sthv2", "--data-root", str(tmp_path), "--full-decode"]
    )
    assert result.exit_code == 0, result.output
    assert "warning  " in result.output and "50.webm: truncated video" in result.output
    assert "ok: no problems found" in result.output


# ------------------------------------------------------------------------------------------ preflight
def _broken_jester(root: Path) -> None:
    make_tsm_lists(root, counts=(12, 9, 20, 15), val_counts=(10,))
    frames = root / "20bn-jester-v1"
    (frames / "2" / "00005.jpg").unlink()  # a frame the list promises is missing
    for f in (frames / "4").iterdir():  # a folder with no frames at all
        f.unlink()


def test_preflight_stops_on_the_first_broken_item_with_one_line(tmp_path):
    _broken_jester(tmp_path)
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=True)
    with pytest.raises(DataError) as e:
        preflight(ds)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        f"{tmp_path / '20bn-jester-v1' / '2' / '00005.jpg'}: missing frame"
    )
    assert "(and 1 more of 4 items)" in msg and "adabench data check" in msg
    assert len(ds) == 4  # nothing removed without skip_bad


def test_preflight_with_skip_bad_removes_and_lists_the_broken_items(tmp_path):
    _broken_jester(tmp_path)
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=True, skip_bad=True)
    bad = preflight(ds, skip_bad=True)
    assert [Path(p).relative_to(tmp_path).as_posix() for p, _ in bad] == [
        "20bn-jester-v1/2/00005.jpg",
        "20bn-jester-v1/4",
    ]
    assert "missing frame" in bad[0][1] and "no frames matching" in bad[1][1]
    assert [Path(r.path).name for r in ds.records] == ["1", "3"] and len(ds) == 2
    assert set(bad) <= set(ds.bad_items)
    assert all(ds[i]["frames"].shape == (4, 3, 24, 24) for i in range(len(ds)))  # the rest reads
    assert preflight(ds, skip_bad=True) == []  # nothing left to find


def test_preflight_opens_video_headers(tmp_path):
    make_sthv2_webm(tmp_path, counts=(14, 9, 10), val_counts=(6,))
    videos = tmp_path / "20bn-something-something-v2"
    (videos / "51.webm").write_bytes(b"this is not a video" * 10)
    write_video(tmp_path / "x.mp4", 12)
    (videos / "52.webm").write_bytes((tmp_path / "x.mp4").read_bytes()[:300])  # cut before its index
    ds = create_dataset("sthv2", tmp_path, "train", SPEC, train=False, skip_bad=True)
    bad = preflight(ds, skip_bad=True)
    assert [Path(p).name for p, _ in bad] == ["51.webm", "52.webm"]
    assert all("cannot decode video" in reason for _, reason in bad)
    assert len(ds) == 1 and ds[0]["frames"].shape == (4, 3, 24, 24)
    with pytest.raises(DataError, match="no readable videos"):
        (videos / "50.webm").write_bytes(b"")
        preflight(create_dataset("sthv2", tmp_path, "train", SPEC, train=False), skip_bad=True)


def test_preflight_reads_names_not_pixels_so_thousands_of_items_take_seconds(tmp_path):
    n = 2000
    (tmp_path / "category.txt").write_text("a\nb\n")
    (tmp_path / "train_videofolder.txt").write_text("".join(f"{i} 3 {i % 2}\n" for i in range(n)))
    (tmp_path / "val_videofolder.txt").write_text("0 3 0\n")
    for i in range(n):
        d = tmp_path / "20bn-jester-v1" / str(i)
        d.mkdir(parents=True)
        for k in (1, 2, 3):
            (d / f"{k:05d}.jpg").touch()  # empty files: a preflight that decoded would report all of them
    (tmp_path / "20bn-jester-v1" / "77" / "00003.jpg").unlink()
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=False, skip_bad=True)
    t0 = time.perf_counter()
    bad = preflight(ds, skip_bad=True)
    seconds = time.perf_counter() - t0
    assert [Path(p).parent.name for p, _ in bad] == ["77"] and len(ds) == n - 1
    print(
        f"preflight of {n} frame folders: {seconds:.2f} s"
    )  # measured ~0.3 s; not asserted (shared machine)


def test_synthetic_needs_no_preflight(tmp_path):
    root = make_synthetic(tmp_path / "syn")
    ds = create_dataset("synthetic", root, "train", SPEC, train=False)
    assert ds.needs_preflight is False and preflight(ds) == []


# ------------------------------------------------------------------------------------------ decord
SCRIPT = textwrap.dedent("""
    import sys
    from bench.data import ClipSpec, create_dataset, make_loader, set_epoch
    from bench.errors import AdabenchError
    ds = create_dataset("sthv2", sys.argv[1], "train", ClipSpec(frames=4, input_size=24, resize=28),
                        train=False, backend="decord")
    loader = make_loader(ds, 1, train=False, num_workers=int(sys.argv[2]), seed=0)
    try:
        set_epoch(loader, 0)
        for _ in loader:
            pass
    except AdabenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
""")


@pytest.mark.parametrize("workers", [0, 2])
def test_our_error_is_the_only_line_decord_prints_nothing(tmp_path, workers):
    pytest.importorskip("decord")
    make_sthv2_webm(tmp_path, counts=(6, 6), val_counts=(6,))
    (tmp_path / "20bn-something-something-v2" / "51.webm").write_bytes(b"this is not a video" * 10)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(workers)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1, proc.stderr
    assert (
        len(lines) == 1 and lines[0].startswith("error: ") and "51.webm: cannot decode video" in lines[0]
    ), proc.stderr
