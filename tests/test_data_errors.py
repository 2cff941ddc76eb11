"""Every kind of bad input gives a one-line error naming the file; ``check_dataset`` lists them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures_data import make_20bn_csv, make_arnet, make_sthv2_webm, make_tsm_lists, write_video

import cli
from bench.data import ClipSpec, check_dataset, create_dataset, make_loader
from bench.errors import DataError, DatasetNotFoundError, UsageError

SPEC = ClipSpec(frames=4, input_size=24, resize=28)
REPO = Path(__file__).resolve().parents[1]


def one_line(msg: str) -> bool:
    return "\n" not in str(msg).strip()


def test_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data root not found") as e:
        create_dataset("jester", tmp_path / "nope", "train", SPEC, train=True)
    assert str(tmp_path / "nope") in str(e.value) and one_line(e.value)


def test_wrong_layout_names_what_was_expected(tmp_path):
    make_arnet(tmp_path, "actnet")
    with pytest.raises(
        DatasetNotFoundError, match="no jester layout found.*jester-v1-labels.csv or category.txt"
    ):
        check_dataset("jester", tmp_path)


def test_missing_split_list_is_a_layout_error(tmp_path):
    make_20bn_csv(tmp_path)
    (tmp_path / "jester-v1-validation.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="jester-v1-validation.csv: file not found"):
        create_dataset("jester", tmp_path, "val", SPEC, train=False)
    assert create_dataset("jester", tmp_path, "train", SPEC, train=False)  # the other split still works
    report = check_dataset("jester", tmp_path)
    assert any("jester-v1-validation.csv: file not found" in p for p in report.problems)


@pytest.mark.parametrize(
    "maker,name,listfile,line,expect",
    [
        (
            make_20bn_csv,
            "jester",
            "jester-v1-train.csv",
            "12345 Swiping Left",
            r"jester-v1-train.csv:5: expected 'id;label'",
        ),
        (
            make_tsm_lists,
            "jester",
            "train_videofolder.txt",
            "7 12",
            r"train_videofolder.txt:4: expected 'path num_frames label'",
        ),
        (
            make_arnet,
            "actnet",
            "actnet_train_split.txt",
            "v_x,many,1",
            r"actnet_train_split.txt:5: frame count 'many'",
        ),
    ],
)
def test_malformed_list_line_names_file_and_line(tmp_path, maker, name, listfile, line, expect):
    maker(tmp_path)
    with open(tmp_path / listfile, "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataError, match=expect) as e:
        create_dataset(name, tmp_path, "train", SPEC, train=True)
    assert one_line(e.value)


@pytest.mark.parametrize(
    "maker,name,edit,expect",
    [
        (
            make_20bn_csv,
            "jester",
            ("jester-v1-train.csv", "999;Waving Hello"),
            r"jester-v1-train.csv:5: label 'Waving Hello' is not in .*jester-v1-labels.csv",
        ),
        (
            make_tsm_lists,
            "jester",
            ("train_videofolder.txt", "1 12 7"),
            r"train_videofolder.txt:4: label 7 is not in .*category.txt \(3 classes\)",
        ),
        (
            make_arnet,
            "fcvid",
            ("fcvid_train_split.txt", "v_aaa,12,1,9"),
            r"fcvid_train_split.txt:5: label 9 is not in .*classInd.txt \(5 classes\)",
        ),
    ],
)
def test_unknown_label(tmp_path, maker, name, edit, expect):
    maker(tmp_path) if maker is not make_arnet else maker(tmp_path, name)
    with open(tmp_path / edit[0], "a") as f:
        f.write(edit[1] + "\n")
    with pytest.raises(DataError, match=expect):
        create_dataset(name, tmp_path, "train", SPEC, train=True)


def test_unknown_sthv2_template(tmp_path):
    make_sthv2_webm(tmp_path, counts=(6,), val_counts=(6,))
    p = tmp_path / "something-something-v2-train.json"
    p.write_text(p.read_text().replace("Putting [something] on a surface", "Juggling [something]"))
    with pytest.raises(DataError, match=r"-train.json:entry 0: template 'Juggling something' is not in"):
        create_dataset("sthv2", tmp_path, "train", SPEC, train=True)


def test_missing_frame_and_missing_folder(tmp_path):
    fx = make_20bn_csv(tmp_path)
    (tmp_path / "20bn-jester-v1" / "1000" / "00005.jpg").unlink()
    make_tsm = tmp_path / "tsm"
    make_tsm.mkdir()
    make_tsm_lists(make_tsm)
    shutil.rmtree(make_tsm / "20bn-jester-v1" / "2")
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=False)
    with pytest.raises(
        DataError, match=r"1000/00005.jpg: missing frame"
    ) as e:  # the 20BN count skips the gap
        ds[0]
    assert one_line(e.value)
    ds = create_dataset("jester", make_tsm, "train", SPEC, train=False)
    with pytest.raises(DataError, match=r"20bn-jester-v1/2: frame folder not found"):
        ds[1]
    assert fx.frames["1000"] == 12


def test_undecodable_and_truncated_videos(tmp_path):
    make_sthv2_webm(tmp_path, counts=(30, 10, 10), val_counts=(6,))
    videos = tmp_path / "20bn-something-something-v2"
    (videos / "51.webm").write_bytes(b"this is not a video" * 10)
    data = (videos / "50.webm").read_bytes()
    (videos / "50.webm").write_bytes(data[: len(data) // 2])  # truncated: fewer frames than the header says
    write_video(tmp_path / "x.mp4", 12)  # an mp4 cut before its index cannot be opened
    (videos / "52.webm").write_bytes((tmp_path / "x.mp4").read_bytes()[:300])
    for backend in ("decord", "pyav"):
        ds = create_dataset("sthv2", tmp_path, "train", SPEC, train=False, backend=backend)
        for i, vid in ((1, "51"), (2, "52")):
            with pytest.raises(DataError, match=rf"{vid}.webm: cannot decode video") as e:
                ds[i]
            assert one_line(e.value)
        item = ds[0]  # the truncated video still decodes: indices are clamped to what decodes
        assert item["frames"].shape == (4, 3, 24, 24)
    report = check_dataset("sthv2", tmp_path, full_decode=True)
    joined = "\n".join(report.problems)
    assert "51.webm: cannot decode video" in joined and "52.webm: cannot decode video" in joined
    # run copes with the truncated one (above), so the check warns about it instead of failing
    assert "50.webm" not in joined and len(report.problems) == 2
    assert len(report.warnings) == 1 and "50.webm: truncated video" in report.warnings[0]


def test_check_lists_every_problem_of_a_broken_dataset(tmp_path):
    make_20bn_csv(tmp_path)
    with open(tmp_path / "jester-v1-train.csv", "a") as f:
        f.write("oops\n999;Waving Hello\n4242;Swiping Left\n")  # malformed, unknown label, no folder
    (tmp_path / "20bn-jester-v1" / "1001" / "00003.jpg").unlink()  # missing frame
    with open(tmp_path / "jester-v1-validation.csv", "a") as f:
        f.write("2000\n")  # malformed in the other split
    report = check_dataset("jester", tmp_path)
    assert report.splits == {"train": 5, "val": 2}
    expected = [
        "jester-v1-train.csv:5: expected 'id;label'",
        "jester-v1-train.csv:6: label 'Waving Hello'",
        "4242: frame folder not found",
        "1001/00003.jpg: missing frame",
        "jester-v1-validation.csv:3: expected 'id;label'",
    ]
    assert len(report.problems) == len(expected)
    for e in expected:
        assert sum(e in p for p in report.problems) == 1, (e, report.problems)
    assert all(one_line(p) for p in report.problems)

    result = CliRunner().invoke(
        cli.cli, ["data", "check", "--dataset", "jester", "--data-root", str(tmp_path)]
    )
    assert result.exit_code == 1
    for e in expected:
        assert e in result.output
    assert "problems 5" in result.output


def test_skip_bad_drops_broken_items_and_records_them_once(tmp_path):
    make_tsm_lists(tmp_path, counts=(12, 9, 20, 8))
    shutil.rmtree(tmp_path / "20bn-jester-v1" / "2")
    with open(tmp_path / "train_videofolder.txt", "a") as f:
        f.write("bad line\n")
    ds = create_dataset("jester", tmp_path, "train", SPEC, train=False, skip_bad=True)
    assert len(ds) == 4
    assert ds[1] is None and ds[1] is None  # dropped, never replaced by the next item (issue 21)
    paths = [p for p, _ in ds.bad_items]
    assert any(p.endswith("train_videofolder.txt:5") for p in paths)
    assert any(p.endswith("20bn-jester-v1/2") for p in paths)

    fresh = create_dataset("jester", tmp_path, "train", SPEC, train=False, skip_bad=True)
    batches = list(make_loader(fresh, 2, train=False, num_workers=1, seed=0))  # bad item met inside a worker
    assert sorted(int(i) for b in batches for i in b["index"]) == [0, 2, 3]  # each readable item once
    assert [p for p, _ in fresh.bad_items if p.endswith("20bn-jester-v1/2")] == [
        str(tmp_path / "20bn-jester-v1/2")
    ]


# ------------------------------------------------------------------------------------------- CLI
def test_cli_data_list_shows_every_dataset_and_its_layouts():
    result = CliRunner().invoke(cli.cli, ["data", "list"])
    assert result.exit_code == 0
    for name in ("jester", "sthv1", "sthv2", "actnet", "fcvid", "minik", "synthetic"):
        assert f"{name}:" in result.output
    assert "jester-v1-labels.csv" in result.output and "something-something-v2-labels.json" in result.output
    assert "image_%05d.jpg" in result.output and "img_%05d.jpg" in result.output


def test_cli_synth_then_check(tmp_path):
    out = tmp_path / "syn"
    args = [
        "data",
        "synth",
        "--out",
        str(out),
        "--classes",
        "2",
        "--videos-per-class",
        "3,1",
        "--frames",
        "6",
        "--size",
        "32",
        "--object-size",
        "8",
        "--clutter",
        "1",
        "--workers",
        "1",
    ]
    result = CliRunner().invoke(cli.cli, args)
    assert result.exit_code == 0, result.output
    assert "6 train + 2 val videos" in result.output
    result = CliRunner().invoke(cli.cli, ["data", "check", "--dataset", "synthetic", "--data-root", str(out)])
    assert result.exit_code == 0 and "train    6 videos" in result.output and "classes  2" in result.output
    again = CliRunner().invoke(cli.cli, args)  # main() turns this exception into exit 2 (tested below)
    assert isinstance(again.exception, UsageError) and "already exists" in str(again.exception)


def test_cli_check_missing_root_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(
        cli.cli, ["data", "check", "--dataset", "minik", "--data-root", str(tmp_path / "x")]
    )
    assert isinstance(result.exception, UsageError) and "data root not found" in str(result.exception)


def _main(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def test_main_usage_error_is_one_line_with_exit_code_2(tmp_path):
    """One subprocess (starting the CLI is slow): a missing data root through the real entry point."""
    missing = _main("data", "check", "--dataset", "jester", "--data-root", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and missing.stderr.startswith("error: ")
    assert "data root not found" in missing.stderr and "Traceback" not in missing.stderr
